"""The facesym graph, declared once: every node with its executable, parameters, topics and remappings.

The console scripts (setup.py), the `ros2 run` executables (CMakeLists.txt),
the parameter file (config/facesym.yaml), the launch file, `facesym bringup`
and the demo all read this list. Nodes use relative topic names; the
remappings wire them up (image_pipeline style: a node that takes the camera's
frames subscribes to `image`; only face_detector does: the landmark and flow
nodes take face_detector's `face_patch`, and the annotator's `image` is
face_detector's scaled-down `image_preview`). Besides its
`publishes`, every node reports its health on the absolute `/diagnostics`
(DIAGNOSTICS_TOPIC), as ROS nodes do. OPTIONAL_NODES (the clinic console)
start only when asked for (launch `console:=true`, `facesym bringup --console`
or `--nodes`); NODES is the graph that scores.

Standard library only: setup.py and CMake read it before anything is
installed (`python3 facesym_ros/config/registry.py` prints the executables).
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass

PACKAGE = 'facesym_ros'
COMMAND = 'facesym'
"""The command-line tool, installed beside the nodes."""
COMMAND_MODULE = f'{PACKAGE}.cli'


@dataclass(frozen=True)
class NodeSpec:
    """A node of the graph; its name is also its executable's and its module's under facesym_ros.nodes."""

    name: str
    class_name: str
    settings: tuple[str, ...]
    """'module:Class' of the settings dataclasses whose fields are the node's parameters."""
    subscribes: tuple[str, ...] = ()
    publishes: tuple[str, ...] = ()
    remappings: tuple[tuple[str, str], ...] = ()
    viewer_only: bool = False
    """Draws for people and feeds no score; the demo and benchmarks can leave it out."""

    @property
    def module(self) -> str:
        return f'{PACKAGE}.nodes.{self.name}'

    def node_class(self) -> type:
        return getattr(importlib.import_module(self.module), self.class_name)

    def settings_classes(self) -> tuple[type, ...]:
        return tuple(_load(reference) for reference in self.settings)

    def topic(self, name: str) -> str:
        """The topic a relative name of this node is connected to, after the graph's remappings."""
        return dict(self.remappings).get(name, name)


def _load(reference: str) -> type:
    module, _, attribute = reference.partition(':')
    return getattr(importlib.import_module(module), attribute)


PREVIEW_TOPIC = 'image_preview'
"""face_detector's camera frame scaled down for people: the annotator draws on it, so that only face_detector
takes the whole frame (a 1080p bgr8 frame is 6 MB; the preview at 960 px a quarter of it)."""
_QUEUE = f'{PACKAGE}.config.node_settings:NodeQueueSettings'
_DIAGNOSTICS = f'{PACKAGE}.config.node_settings:DiagnosticsSettings'
_EXECUTOR = f'{PACKAGE}.config.node_settings:ExecutorSettings'

NODES: tuple[NodeSpec, ...] = (
    NodeSpec('image_source', 'ImageSourceNode',
             (f'{PACKAGE}.config.node_settings:ImageSourceSettings', _QUEUE, _DIAGNOSTICS, _EXECUTOR),
             publishes=('image_raw', 'camera_info')),
    NodeSpec('face_detector', 'FaceDetectorNode',
             (f'{PACKAGE}.core.detection:DetectorSettings', f'{PACKAGE}.config.node_settings:PreviewSettings',
              _QUEUE, _DIAGNOSTICS, _EXECUTOR),
             subscribes=('image', 'trial_events'), publishes=('faces', 'face_patch', PREVIEW_TOPIC),
             remappings=(('image', 'image_raw'),)),
    NodeSpec('landmark_detector', 'LandmarkDetectorNode',
             (f'{PACKAGE}.core.landmarks.factory:LandmarkSettings', _QUEUE, _DIAGNOSTICS, _EXECUTOR),
             subscribes=('face_patch', 'faces'), publishes=('landmarks',)),
    NodeSpec('optical_flow', 'OpticalFlowNode',
             (f'{PACKAGE}.core.flow:FlowSettings', f'{PACKAGE}.config.node_settings:OpticalFlowNodeSettings',
              _QUEUE, _DIAGNOSTICS, _EXECUTOR),
             subscribes=('face_patch', 'landmarks', 'trial_events'),
             publishes=('region_motion', 'flow_heatmap', 'image_markers')),
    NodeSpec('symmetry_scorer', 'SymmetryScorerNode',
             (f'{PACKAGE}.core.scoring:ScoringSettings', f'{PACKAGE}.config.node_settings:ScorerNodeSettings',
              _DIAGNOSTICS, _EXECUTOR),
             subscribes=('region_motion', 'faces', 'camera_info', 'trial_control'),
             publishes=('score', 'score_running', 'trial_events')),
    NodeSpec('annotator', 'AnnotatorNode',
             (f'{PACKAGE}.config.node_settings:AnnotatorNodeSettings', _QUEUE, _DIAGNOSTICS, _EXECUTOR),
             subscribes=('image', 'flow_heatmap', 'landmarks', 'region_motion', 'score', 'score_running', 'prompt'),
             publishes=('annotated', 'annotated/compressed'), remappings=(('image', PREVIEW_TOPIC),),
             viewer_only=True),
)
OPTIONAL_NODES: tuple[NodeSpec, ...] = (
    NodeSpec('clinic_console', 'ClinicConsoleNode', (f'{PACKAGE}.config.node_settings:ConsoleSettings',),
             subscribes=('faces', 'region_motion', 'face_patch', 'prompt', 'score', 'score_running',
                         'annotated/compressed', 'image', 'trial_events'),
             publishes=('trial_control', 'prompt', 'session_info'), remappings=(('image', PREVIEW_TOPIC),),
             viewer_only=True),
)
"""Nodes started only when asked for: the clinic console (operator and patient pages; runs sessions)."""
ALL_NODES: tuple[NodeSpec, ...] = NODES + OPTIONAL_NODES
NODE_NAMES: tuple[str, ...] = tuple(spec.name for spec in NODES)
ALL_NODE_NAMES: tuple[str, ...] = tuple(spec.name for spec in ALL_NODES)
CONSOLE_NODE = OPTIONAL_NODES[0].name
SOURCE_NODE = 'image_source'
"""The node that feeds the graph; drivers replace it on a rig, and trials start before it."""
DIAGNOSTICS_TOPIC = '/diagnostics'
"""Where every node publishes its diagnostic_msgs/DiagnosticArray (absolute, the ROS convention)."""
IMAGE_TOPIC = 'image_raw'
"""The camera topic the graph is wired to; a driver's topic replaces it (bringup --image-topic, image_topic:=)."""
NO_SOURCE = 'none'
"""The source argument that leaves image_source out, for a camera driver that publishes the images."""


def node(name: str) -> NodeSpec:
    for spec in ALL_NODES:
        if spec.name == name:
            return spec
    raise ValueError(f'unknown node {name!r} (known: {", ".join(ALL_NODE_NAMES)})')


def select(names: str | None) -> list[NodeSpec]:
    """The nodes named in a comma-separated list, in graph order (the graph, NODES, for None or '')."""
    if not names:
        return list(NODES)
    wanted = [name.strip() for name in names.split(',') if name.strip()]
    for name in wanted:
        node(name)  # an unknown name is an error
    return [spec for spec in ALL_NODES if spec.name in wanted]


def internal_subscriptions(specs: list[NodeSpec] | tuple[NodeSpec, ...]) -> dict[str, int]:
    """Subscriptions per topic that these nodes make to topics the graph itself publishes.

    A client waits for these before it starts a trial, so that no node misses the first frames.
    """
    published = {topic for spec in NODES for topic in spec.publishes}
    counts: dict[str, int] = {}
    for spec in specs:
        for name in spec.subscribes:
            topic = spec.topic(name)
            if topic in published:
                counts[topic] = counts.get(topic, 0) + 1
    return counts


def camera_subscribers(specs: list[NodeSpec] | tuple[NodeSpec, ...]) -> int:
    """How many of these nodes take the camera's frames (image_source's wait_for_subscribers for them)."""
    return internal_subscriptions(specs).get(IMAGE_TOPIC, 0)


def executables() -> dict[str, str]:
    """Executable name -> module with a main(), for console scripts and `ros2 run facesym_ros <name>`."""
    return {**{spec.name: spec.module for spec in ALL_NODES}, COMMAND: COMMAND_MODULE}


def console_scripts() -> list[str]:
    """setup.py's console_scripts: `facesym` and `facesym_<node>`."""
    return [f'{COMMAND} = {COMMAND_MODULE}:main',
            *(f'{COMMAND}_{spec.name} = {spec.module}:main' for spec in ALL_NODES)]


def run_executable(name: str) -> int:
    """Run the executable `name` (the ros2_run/node_executable launcher dispatches here)."""
    modules = executables()
    if name not in modules:
        print(f'{PACKAGE} has no executable {name!r}; known: {", ".join(modules)}', file=sys.stderr)
        return 2
    return int(importlib.import_module(modules[name]).main() or 0)


if __name__ == '__main__':
    print(';'.join(executables()))
