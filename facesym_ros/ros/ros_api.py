"""docs/ros-api.md, generated from the nodes themselves, the registry and the settings classes.

    python -m facesym_ros.ros.ros_api > docs/ros-api.md

Each node of the registry is constructed in a private rclpy context (nothing
is spun, so no frame is read or published), and its publishers,
subscriptions and services are read back with their types and QoS. The
parameters are the fields of the node's settings classes, as in
config/facesym.yaml (facesym_ros.config.params). A test checks that the
checked-in file equals this output.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

from facesym_ros.config.files import package_share_path
from facesym_ros.config.params import parameter_fields
from facesym_ros.config.registry import ALL_NODES, COMMAND, DIAGNOSTICS_TOPIC, IMAGE_TOPIC, SOURCE_NODE, NodeSpec

GENERATE_COMMAND = 'python -m facesym_ros.ros.ros_api > docs/ros-api.md'
SOURCE_OVERRIDES = {'source': 'sample'}
"""The source node is built on the bundled clip, whatever its default, so that no camera is opened."""
_ROS_INTERNAL_TOPICS = {'/parameter_events', '/rosout'}
_PARAMETER_SERVICES = ('describe_parameters', 'get_parameters', 'get_parameter_types', 'list_parameters',
                       'set_parameters', 'set_parameters_atomically', 'get_type_description')
ROLES = {
    'ImageSourceNode': 'Publishes the frames of a video file, a folder of images, a V4L2 camera or the bundled '
                       'sample. A camera driver can take its place.',
    'FaceDetectorNode': 'Finds the patient\'s face at a trial\'s first frame and keeps its box while the face '
                        'stays in it. Publishes the box and the face patch, the frame cut around the face.',
    'LandmarkDetectorNode': 'Predicts the 68 facial landmarks (iBUG 300-W layout) on the face patch.',
    'OpticalFlowNode': 'Lays out the six regions from the landmarks and measures the thresholded Farneback '
                       'flow in each region side, frame pair by frame pair.',
    'SymmetryScorerNode': 'Runs the trials: sums the motion of each trial\'s frames and publishes VS and SS per '
                          'region, running while the trial lasts and final after its stop.',
    'AnnotatorNode': 'Draws the face box, landmarks, regions, heat map, scores and the session prompt over the '
                     'camera image, for people to watch. It feeds no score.',
}
"""What each node does, in a sentence or two, by node class."""
_ROS_TYPES = {bool: 'bool', int: 'integer', float: 'double', str: 'string', tuple: 'integer array'}


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """A topic or service of a node: its name as the node writes it, its type and its QoS in words."""

    name: str
    type_name: str
    qos: str = ''


def _type_name(cls: type) -> str:
    package = cls.__module__.split('.')[0]
    kind = cls.__module__.split('.')[1]
    return f'{package}/{kind}/{cls.__name__}'


def _qos_words(profile: Any) -> str:
    words = ['best effort' if profile.reliability == ReliabilityPolicy.BEST_EFFORT else 'reliable']
    if profile.durability == DurabilityPolicy.TRANSIENT_LOCAL:
        words.append('transient local')
    words.append(f'depth {profile.depth}')
    return ', '.join(words)


def _relative(topic: str) -> str:
    return topic if topic == DIAGNOSTICS_TOPIC else topic.lstrip('/')


@dataclasses.dataclass(frozen=True)
class NodeInterface:
    spec: NodeSpec
    subscribes: tuple[Endpoint, ...]
    publishes: tuple[Endpoint, ...]
    services: tuple[Endpoint, ...]


def node_interfaces() -> list[NodeInterface]:
    """Every registered node's topics and services, read from the node object itself."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    interfaces = []
    try:
        for spec in ALL_NODES:
            overrides = [Parameter(name, value=value) for name, value in SOURCE_OVERRIDES.items()] \
                if spec.name == SOURCE_NODE else []
            node = spec.node_class()(context=context, parameter_overrides=overrides)
            try:
                interfaces.append(NodeInterface(
                    spec,
                    tuple(Endpoint(_relative(s.topic_name), _type_name(s.msg_type), _qos_words(s.qos_profile))
                          for s in node.subscriptions if s.topic_name not in _ROS_INTERNAL_TOPICS),
                    tuple(Endpoint(_relative(p.topic_name), _type_name(p.msg_type), _qos_words(p.qos_profile))
                          for p in node.publishers if p.topic_name not in _ROS_INTERNAL_TOPICS),
                    tuple(Endpoint(_relative(s.srv_name), _type_name(s.srv_type)) for s in node.services
                          if not s.srv_name.endswith(_PARAMETER_SERVICES))))
            finally:
                node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
    return interfaces


def _cell(text: str) -> str:
    return text.replace('|', '\\|').replace('\n', ' ')


def _value(value: Any) -> str:
    if isinstance(value, tuple):
        return '[' + ', '.join(map(str, value)) + ']'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f"'{value}'"
    return repr(value)


def _range(field: dataclasses.Field) -> str:
    meta = field.metadata
    if meta.get('choices'):
        return ' | '.join(meta['choices'])
    if meta.get('min') is not None:
        return f'{meta["min"]} .. {meta["max"]}'
    return ''


def _topic_rows(endpoints: tuple[Endpoint, ...], spec: NodeSpec) -> list[str]:
    rows = []
    for endpoint in endpoints:
        name = f'`{endpoint.name}`'
        wired = spec.topic(endpoint.name)
        if wired != endpoint.name:
            name += f' (remapped to `{wired}`)'
        rows.append(f'| {name} | `{endpoint.type_name}` | {endpoint.qos} |')
    return rows


def message_summaries() -> list[tuple[str, str]]:
    """(name, first sentence of its header comment) of every message in msg/."""
    summaries = []
    for path in sorted(package_share_path('msg').glob('*.msg')):
        lines = []
        for line in path.read_text().splitlines():
            if not line.startswith('#') or line.strip() == '#':
                break
            lines.append(line.lstrip('# ').strip())
        text = ' '.join(lines)
        summaries.append((path.stem, text.split('. ')[0].rstrip('.') + '.'))
    return summaries


def render_ros_api_md() -> str:
    """docs/ros-api.md: per node, its topics (with types and QoS), services and parameters."""
    lines = [
        '# ROS 2 interface',
        '',
        f'<!-- Generated from the nodes, facesym_ros/config/registry.py and the settings classes: '
        f'{GENERATE_COMMAND} -->',
        '',
        'Every topic name is relative, so a namespace or a remapping moves it.',
        f'The launch file and `{COMMAND} bringup` remap `image` to `{IMAGE_TOPIC}` (or to the `image_topic` given).',
        'Images use sensor-data QoS (best effort).',
        'Scores and trial events are transient local, so a late subscriber gets the latest.',
        f'Every node also publishes `diagnostic_msgs/msg/DiagnosticArray` on `{DIAGNOSTICS_TOPIC}`.',
        'The parameters are the same names and defaults as in `config/facesym.yaml`.',
        'A read-only parameter can be set at start only; every other one can be changed while the node runs.',
        'A value out of range is refused, and the node keeps its old value.',
        '',
        'Nodes: ' + ', '.join(f'[`{spec.name}`](#{spec.name})' for spec in ALL_NODES) + '.',
    ]
    for interface in node_interfaces():
        spec = interface.spec
        lines += ['', f'## {spec.name}', '', ROLES.get(spec.class_name, ''), '']
        lines.append(f'Run alone: `ros2 run facesym_ros {spec.name}`.')
        for title, endpoints in (('Subscribed topics', interface.subscribes),
                                 ('Published topics', interface.publishes)):
            if endpoints:
                lines += ['', f'### {title}', '', '| topic | type | QoS |', '|---|---|---|',
                          *_topic_rows(endpoints, spec)]
        if interface.services:
            lines += ['', '### Services', '', '| service | type |', '|---|---|',
                      *(f'| `{s.name}` | `{s.type_name}` |' for s in interface.services)]
        lines += ['', '### Parameters', '', '| parameter | type | default | range | description |',
                  '|---|---|---|---|---|']
        for field in parameter_fields(spec.name):
            meta = field.metadata
            description = meta['description'].rstrip('.') + '.' + (' Read-only.' if meta.get('read_only') else '')
            lines.append(f'| `{field.name}` | {_ROS_TYPES[type(field.default)]} | `{_value(field.default)}` '
                         f'| {_cell(_range(field))} | {_cell(description)} |')
    lines += ['', '## Messages', '', 'Every field is documented in its `.msg` file under `msg/`.', '',
              '| message | what it holds |', '|---|---|',
              *(f'| `facesym_ros/msg/{name}` | {_cell(text)} |' for name, text in message_summaries())]
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    print(render_ros_api_md(), end='')
