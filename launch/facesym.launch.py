"""Launch the facesym graph on a ROS 2 install (Jazzy, Kilted).

    ros2 launch facesym_ros facesym.launch.py [source:=sample|<video>|<folder>|camera:0]
        [params_file:=<yaml>] [namespace:=<ns>] [rviz:=true|false]

Starts the same nodes, with the same parameter file and remappings, as
`facesym bringup` (both read facesym_ros.config.registry). A node that dies is
started again after respawn_delay (config.node_settings.RespawnSettings; ROS
launch waits the same delay every time, without bringup's backoff and limit). Trials are started and
stopped with the symmetry_scorer services:

    ros2 service call start_trial std_srvs/srv/Trigger
    ros2 service call stop_trial std_srvs/srv/Trigger
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from facesym_ros.config.files import FASTDDS_PROFILE_VARIABLE
from facesym_ros.config.node_settings import RespawnSettings
from facesym_ros.config.registry import NODES, SOURCE_NODE


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare('facesym_ros')
    params_file = LaunchConfiguration('params_file')
    namespace = LaunchConfiguration('namespace')
    arguments = [
        DeclareLaunchArgument('source', default_value='sample',
                              description='What image_source publishes: sample, a video file, a folder of '
                                          'frames or camera:<index>'),
        DeclareLaunchArgument('params_file', default_value=PathJoinSubstitution([share, 'config', 'facesym.yaml']),
                              description='Parameter file of every node'),
        DeclareLaunchArgument('namespace', default_value='', description='Namespace of every node and topic'),
        DeclareLaunchArgument('rviz', default_value='false', description='Start RViz with config/facesym.rviz'),
        # Whole camera frames need Fast DDS shared-memory segments larger than the default (see the file);
        # an explicitly set profile is kept.
        SetEnvironmentVariable(FASTDDS_PROFILE_VARIABLE, EnvironmentVariable(
            FASTDDS_PROFILE_VARIABLE, default_value=PathJoinSubstitution([share, 'config', 'fastdds.xml']))),
    ]
    nodes = []
    respawn = RespawnSettings()
    for spec in NODES:
        parameters = [params_file]
        if spec.name == SOURCE_NODE:
            parameters.append({'source': LaunchConfiguration('source')})
        nodes.append(Node(package='facesym_ros', executable=spec.name, name=spec.name, namespace=namespace,
                          parameters=parameters, remappings=list(spec.remappings), output='screen',
                          respawn=True, respawn_delay=respawn.respawn_delay))
    rviz = Node(package='rviz2', executable='rviz2', name='rviz2',
                arguments=['-d', PathJoinSubstitution([share, 'config', 'facesym.rviz'])],
                condition=IfCondition(LaunchConfiguration('rviz')))
    return LaunchDescription([*arguments, *nodes, rviz])
