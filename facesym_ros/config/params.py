"""The YAML parameter file shared by the ROS nodes and the `facesym` command.

config/facesym.yaml is an ordinary ROS 2 parameter file (node key, then
`ros__parameters`). Its node keys are `/**/<node>`, which rclpy applies to
the node of that name in any namespace (a bare `<node>` key applies only to
`/<node>`, so under a namespace it would be silently ignored). The nodes
receive it through ROS; the offline tools read it here, so a video, a bag and
the live graph are scored with the same settings. This loader accepts both
forms. Unknown parameter names are an error rather than silently ignored,
except the parameters every ROS node has (ROS_PARAMETERS, e.g. use_sim_time).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from facesym_ros.config.files import default_params_file
from facesym_ros.config.registry import ALL_NODES, node
from facesym_ros.core.detection import DetectorSettings
from facesym_ros.core.flow import FlowSettings
from facesym_ros.core.landmarks.factory import LandmarkSettings
from facesym_ros.core.pipeline import PipelineSettings
from facesym_ros.core.scoring import ScoringSettings
from facesym_ros.core.settings import from_mapping

S = TypeVar('S')
ROS_PARAMETERS = frozenset({'use_sim_time'})
"""Parameters every ROS node declares itself; allowed in the file, under a node or `/**`, and not settings."""
NODE_KEY_PREFIX = '/**/'
"""Node keys of the generated file: `/**/<node>` matches the node in every namespace."""


def parameter_fields(node_name: str) -> list[dataclasses.Field]:
    """The parameters of a node: the fields of its settings classes, in declaration order."""
    return [field for cls in node(node_name).settings_classes() for field in dataclasses.fields(cls)]


def parameter_names(node_name: str) -> list[str]:
    return [field.name for field in parameter_fields(node_name)]


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (rclpy would merge both, PyYAML keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f'{key!r} is given twice', key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def node_key(key: object) -> str:
    """The node a parameter-file key applies to: `/**/optical_flow`, `/rig1/optical_flow` -> optical_flow."""
    return str(key).rstrip('/').split('/')[-1]


def load_params_file(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Parameters per node name from a ROS 2 parameter file; `/**` entries apply to every node.

    Node keys may be bare (`optical_flow`) or carry a namespace (`/**/optical_flow`, `/rig1/optical_flow`).
    ROS_PARAMETERS (use_sim_time) are accepted and left out of the result. A key given twice, an unknown node,
    an unknown parameter name (also under `/**`) and a value its setting refuses are errors: every node's
    settings are checked here, so an offline command refuses the file a node would refuse at its start.
    """
    path = Path(path) if path else default_params_file()
    try:
        document = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}  # a SafeLoader
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f'{path}: cannot read the parameter file: {" ".join(str(error).split())}') from None
    if not isinstance(document, Mapping):
        raise ValueError(f'{path}: expected a mapping of node names to ros__parameters')
    shared: dict[str, Any] = {}
    params: dict[str, dict[str, Any]] = {spec.name: {} for spec in ALL_NODES}
    every_name = {name for spec in ALL_NODES for name in parameter_names(spec.name)}
    seen_nodes: set[str] = set()
    for key, entry in document.items():
        if not isinstance(entry, Mapping) or not isinstance(entry.get('ros__parameters'), Mapping):
            raise ValueError(f'{path}: entry {key!r} has no ros__parameters mapping')
        name = node_key(key)
        values = {k: v for k, v in entry['ros__parameters'].items() if k not in ROS_PARAMETERS}
        if name == '**':
            unknown = sorted(set(values) - every_name)
            if unknown:
                raise ValueError(f'{path}: unknown parameters under {key}: {", ".join(unknown)}')
            shared.update(values)
            continue
        if name not in params:
            raise ValueError(f'{path}: unknown node {name!r} (known: {", ".join(params)})')
        if name in seen_nodes:
            raise ValueError(f'{path}: the parameters of {name} are given twice (as {key!r} and before)')
        seen_nodes.add(name)
        unknown = sorted(set(values) - set(parameter_names(name)))
        if unknown:
            raise ValueError(f'{path}: unknown parameters for {name}: {", ".join(unknown)}')
        params[name].update(values)
    for name, values in params.items():
        names = set(parameter_names(name))
        params[name] = {**{k: v for k, v in shared.items() if k in names}, **values}
        for cls in node(name).settings_classes():
            try:
                from_mapping(cls, params[name])
            except ValueError as error:
                raise ValueError(f'{path}: {name}: {error}') from None
    return params


def owner_of(cls: type) -> str:
    """The node whose parameters include the fields of this settings class."""
    for spec in ALL_NODES:
        if cls in spec.settings_classes():
            return spec.name
    raise ValueError(f'no node has the settings {cls.__name__}')


def settings_from(params: Mapping[str, Mapping[str, Any]], cls: type[S]) -> S:
    """One settings class, validated, from the parameters of the node that has it."""
    name = owner_of(cls)
    return from_mapping(cls, params.get(name, {}), source=name)


def pipeline_config(params: Mapping[str, Mapping[str, Any]]) -> PipelineSettings:
    """The core settings in a parameter set, validated."""
    return PipelineSettings(detector=settings_from(params, DetectorSettings),
                            landmarks=settings_from(params, LandmarkSettings),
                            flow=settings_from(params, FlowSettings),
                            scoring=settings_from(params, ScoringSettings))


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, tuple):
        return '[' + ', '.join(map(_yaml_scalar, value)) + ']'
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()


def render_params_yaml() -> str:
    """config/facesym.yaml as generated from the settings classes: every parameter, its default and meaning."""
    lines = [
        '# Parameters of every facesym_ros node, with their defaults.',
        '# Generated from the settings classes: python -m facesym_ros.config.params > config/facesym.yaml',
        '# Used by launch/facesym.launch.py, `facesym bringup` and the offline tools (`facesym score`,',
        '# `facesym score-bag`), so that live and offline scores use the same settings. Copy it to change it.',
        '# Keys are /**/<node>: they apply to the node in any namespace (`facesym bringup --namespace rig1`,',
        '# the launch file\'s namespace:=rig1); a bare <node> key would apply only to /<node>.',
    ]
    for spec in ALL_NODES:
        lines += ['', f'{NODE_KEY_PREFIX}{spec.name}:', '  ros__parameters:']
        for field in parameter_fields(spec.name):
            meta = field.metadata
            notes = []
            if meta.get('choices'):
                notes.append(' | '.join(meta['choices']))
            elif meta.get('min') is not None:
                notes.append(f'range {meta["min"]} .. {meta["max"]}')
            if meta.get('read_only'):
                notes.append('read-only while running')
            lines.append(f'    # {meta["description"]}' + ''.join(f' ({note})' for note in notes))
            lines.append(f'    {field.name}: {_yaml_scalar(field.default)}')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    print(render_params_yaml(), end='')
