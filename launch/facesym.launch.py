"""Launch the facesym graph on a ROS 2 install (Jazzy, Kilted).

    ros2 launch facesym_ros facesym.launch.py [source:=camera|sample|<video>|<folder>|camera:<index>|none]
        [camera_device:=<index>] [image_topic:=<topic>] [params_file:=<yaml>] [namespace:=<ns>]
        [use_sim_time:=true|false] [rviz:=true|false] [console:=true|false]

Starts the same nodes, with the same parameter file and remappings, as
`facesym bringup` (both read facesym_ros.config.registry). By default
image_source reads the rig's camera (V4L2 device `camera_device`, 0); the
bundled sample clip plays only with `source:=sample` (or `facesym demo`).
With a camera driver, `source:=none image_topic:=/camera/image_raw` leaves
image_source out and the nodes take images from the driver's topic
(camera_info is not needed). `use_sim_time:=true` makes every node (and RViz)
follow /clock, e.g. of `facesym play --clock`. RViz starts in the graph's
namespace; its topics are relative. `console:=true` also starts the clinic
console (operator and patient pages on http://127.0.0.1:8080/; parameters
clinic_console in the parameter file).

Before any node starts, the parameter file is read and checked as
`facesym bringup` checks it, and `rviz:=true` needs rviz2 installed: a missing
or invalid file, an unknown argument value or a missing rviz2 stops the launch
with one error line and nothing started. A node that dies is started again
after respawn_delay, at most respawn_limit times over the launch's life
(config.node_settings.RespawnSettings; ROS launch counts every restart, with
no backoff); when it dies once more, the whole launch shuts down, as
`facesym bringup` stops the graph, so that a supervisor (the systemd unit of
`facesym systemd-unit`) starts it again or says it failed. Every node dies
with the launch process however it ends (SIGINT, SIGTERM, SIGKILL, an
error): each asks the kernel for SIGTERM when its parent dies
(facesym_ros.ros.bringup.die_with_parent). Trials are started and stopped
with the symmetry_scorer services:

    ros2 service call start_trial std_srvs/srv/Trigger
    ros2 service call stop_trial std_srvs/srv/Trigger
"""

from __future__ import annotations

import os

from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction, SetEnvironmentVariable, Shutdown
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from facesym_ros.config.files import FASTDDS_PROFILE_VARIABLE
from facesym_ros.config.node_settings import RespawnSettings
from facesym_ros.config.registry import IMAGE_TOPIC, NO_SOURCE
from facesym_ros.ros.bringup import PARENT_VARIABLE
from facesym_ros.ros.launch_plan import CAMERA_SOURCE, LaunchArgumentError, graph_plan

ARGUMENTS = ('source', 'camera_device', 'image_topic', 'params_file', 'namespace', 'use_sim_time', 'rviz',
             'console')


def _graph(context: LaunchContext) -> list[Node]:
    """The nodes, once the arguments are known and checked; raises (and nothing starts) when they are wrong."""
    values = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    try:
        plan = graph_plan(**values)
    except LaunchArgumentError as error:
        raise RuntimeError(f'facesym.launch.py: {error}; nothing was started') from None
    respawn = RespawnSettings()
    exits: dict[str, int] = {}

    def exited(name: str) -> OpaqueFunction:
        def count(context: LaunchContext) -> list:
            exits[name] = exits.get(name, 0) + 1
            if exits[name] <= respawn.respawn_limit:
                return []  # launch restarts it
            reason = f'{name} died {exits[name]} times; not restarting it again: stopping the graph'
            return [LogInfo(msg=f'facesym.launch.py: {reason}'), Shutdown(reason=reason)]
        return OpaqueFunction(function=count)

    # The launch process itself: every node gets SIGTERM from the kernel when it ends (die_with_parent).
    guard = {PARENT_VARIABLE: str(os.getpid())}
    use_sim_time = {'use_sim_time': plan.use_sim_time}
    nodes = [Node(package='facesym_ros', executable=node.name, name=node.name, namespace=plan.namespace,
                  parameters=[str(plan.params_file), use_sim_time, *([node.parameters] if node.parameters else [])],
                  remappings=node.remappings, output='screen', additional_env=guard,
                  respawn=True, respawn_delay=respawn.respawn_delay, respawn_max_retries=respawn.respawn_limit,
                  on_exit=[exited(node.name)])
             for node in plan.nodes]
    if plan.rviz_config is not None:
        nodes.append(Node(package='rviz2', executable='rviz2', name='rviz2', namespace=plan.namespace,
                          parameters=[use_sim_time], arguments=['-d', str(plan.rviz_config)]))
    return nodes


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare('facesym_ros')
    return LaunchDescription([
        DeclareLaunchArgument('source', default_value=CAMERA_SOURCE,
                              description=f'What image_source publishes: {CAMERA_SOURCE} (the V4L2 camera '
                                          'camera_device), camera:<index>, sample (the bundled clip, for a '
                                          f'demonstration), a video file or a folder of frames; {NO_SOURCE}: no '
                                          'image_source (a camera driver publishes image_topic)'),
        DeclareLaunchArgument('camera_device', default_value='0',
                              description=f'Index of the V4L2 camera (/dev/video<index>) of source:={CAMERA_SOURCE}'),
        DeclareLaunchArgument('image_topic', default_value=IMAGE_TOPIC,
                              description='The camera topic the nodes take images from, e.g. /camera/image_raw '
                                          '(relative names are in the namespace)'),
        DeclareLaunchArgument('params_file', default_value=PathJoinSubstitution([share, 'config', 'facesym.yaml']),
                              description='Parameter file of every node; it must exist and be valid'),
        DeclareLaunchArgument('namespace', default_value='', description='Namespace of every node and topic'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='Every node follows /clock (a bag played with --clock)'),
        DeclareLaunchArgument('rviz', default_value='false',
                              description='Start RViz with config/facesym.rviz (needs rviz2 installed)'),
        DeclareLaunchArgument('console', default_value='false',
                              description='Start the clinic console (operator and patient pages; facesym console)'),
        # Whole camera frames need large UDP receive buffers and readers that take frames over UDP (see the
        # file); an explicitly set profile is kept.
        SetEnvironmentVariable(FASTDDS_PROFILE_VARIABLE, EnvironmentVariable(
            FASTDDS_PROFILE_VARIABLE, default_value=PathJoinSubstitution([share, 'config', 'fastdds.xml']))),
        OpaqueFunction(function=_graph),
    ])

