"""Launch the facesym graph on a ROS 2 install (Jazzy, Kilted).

    ros2 launch facesym_ros facesym.launch.py [source:=sample|<video>|<folder>|camera:0|none]
        [image_topic:=<topic>] [params_file:=<yaml>] [namespace:=<ns>] [use_sim_time:=true|false]
        [rviz:=true|false] [console:=true|false]

Starts the same nodes, with the same parameter file and remappings, as
`facesym bringup` (both read facesym_ros.config.registry). With a camera
driver, `source:=none image_topic:=/camera/image_raw` leaves image_source out
and the nodes take images from the driver's topic (camera_info is not needed).
`console:=true` also starts the clinic console (operator and patient pages on
http://127.0.0.1:8080/, parameters clinic_console in the parameter file).
`use_sim_time:=true` makes every node (and RViz) follow /clock, e.g. of
`facesym play --clock`. RViz starts in the graph's namespace; its topics are
relative. A node that dies is started again after respawn_delay
(config.node_settings.RespawnSettings; ROS launch waits the same delay every
time, without bringup's backoff and limit). Trials are started and stopped
with the symmetry_scorer services:

    ros2 service call start_trial std_srvs/srv/Trigger
    ros2 service call stop_trial std_srvs/srv/Trigger
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition, LaunchConfigurationNotEquals
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from facesym_ros.config.files import FASTDDS_PROFILE_VARIABLE
from facesym_ros.config.node_settings import RespawnSettings
from facesym_ros.config.registry import ALL_NODES, IMAGE_TOPIC, NO_SOURCE, OPTIONAL_NODES, SOURCE_NODE


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare('facesym_ros')
    params_file = LaunchConfiguration('params_file')
    namespace = LaunchConfiguration('namespace')
    image_topic = LaunchConfiguration('image_topic')
    use_sim_time = {'use_sim_time': ParameterValue(LaunchConfiguration('use_sim_time'), value_type=bool)}
    arguments = [
        DeclareLaunchArgument('source', default_value='sample',
                              description='What image_source publishes: sample, a video file, a folder of '
                                          f'frames or camera:<index>; {NO_SOURCE}: no image_source (a camera '
                                          'driver publishes image_topic)'),
        DeclareLaunchArgument('image_topic', default_value=IMAGE_TOPIC,
                              description='The camera topic the nodes take images from, e.g. /camera/image_raw '
                                          '(relative names are in the namespace)'),
        DeclareLaunchArgument('params_file', default_value=PathJoinSubstitution([share, 'config', 'facesym.yaml']),
                              description='Parameter file of every node'),
        DeclareLaunchArgument('namespace', default_value='', description='Namespace of every node and topic'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='Every node follows /clock (a bag played with --clock)'),
        DeclareLaunchArgument('rviz', default_value='false', description='Start RViz with config/facesym.rviz'),
        DeclareLaunchArgument('console', default_value='false',
                              description='Start the clinic console (operator and patient pages; facesym console)'),
        # Whole camera frames need large UDP receive buffers and readers that take frames over UDP (see the
        # file); an explicitly set profile is kept.
        SetEnvironmentVariable(FASTDDS_PROFILE_VARIABLE, EnvironmentVariable(
            FASTDDS_PROFILE_VARIABLE, default_value=PathJoinSubstitution([share, 'config', 'fastdds.xml']))),
    ]
    nodes = []
    respawn = RespawnSettings()
    for spec in ALL_NODES:
        parameters = [params_file, use_sim_time]
        remappings = [(source, image_topic if target == IMAGE_TOPIC else target) for source, target in spec.remappings]
        condition = None
        if spec.name == SOURCE_NODE:
            parameters.append({'source': LaunchConfiguration('source')})
            remappings.append((IMAGE_TOPIC, image_topic))
            condition = LaunchConfigurationNotEquals('source', NO_SOURCE)
        if spec in OPTIONAL_NODES:
            condition = IfCondition(LaunchConfiguration('console'))
        nodes.append(Node(package='facesym_ros', executable=spec.name, name=spec.name, namespace=namespace,
                          parameters=parameters, remappings=remappings, output='screen', condition=condition,
                          respawn=True, respawn_delay=respawn.respawn_delay))
    rviz = Node(package='rviz2', executable='rviz2', name='rviz2', namespace=namespace, parameters=[use_sim_time],
                arguments=['-d', PathJoinSubstitution([share, 'config', 'facesym.rviz'])],
                condition=IfCondition(LaunchConfiguration('rviz')))
    return LaunchDescription([*arguments, *nodes, rviz])
