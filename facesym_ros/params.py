"""The YAML parameter file shared by the ROS nodes and the `facesym` command.

config/facesym.yaml is an ordinary ROS 2 parameter file (node name, then
`ros__parameters`). The nodes receive it through ROS; the offline tools read
it here, so a video, a bag and the live graph are scored with the same
settings. Unknown parameter names are an error rather than silently ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from facesym_ros.core.detection import DetectorConfig
from facesym_ros.core.flow import FlowConfig
from facesym_ros.core.landmarks.factory import LandmarkConfig
from facesym_ros.core.pipeline import PipelineConfig
from facesym_ros.core.scoring import ScoringConfig
from facesym_ros.core.settings import from_mapping
from facesym_ros.node_settings import (
    ImageSourceSettings,
    NodeQueueSettings,
    OpticalFlowNodeSettings,
    ScorerNodeSettings,
)

# Each node's parameters are the fields of these settings classes.
NODE_SETTINGS: dict[str, tuple[type, ...]] = {
    'image_source': (ImageSourceSettings,),
    'face_detector': (DetectorConfig, NodeQueueSettings),
    'landmark_detector': (LandmarkConfig, NodeQueueSettings),
    'optical_flow': (FlowConfig, OpticalFlowNodeSettings, NodeQueueSettings),
    'symmetry_scorer': (ScoringConfig, ScorerNodeSettings),
    'annotator': (NodeQueueSettings,),
}


def parameter_names(node: str) -> list[str]:
    return [field.name for cls in NODE_SETTINGS[node] for field in dataclasses.fields(cls)]


def package_share_file(folder: str, name: str) -> Path:
    """A file of the package's config/ or msg/: in this checkout, or in the installed share directory."""
    source_tree = Path(__file__).resolve().parents[1] / folder / name
    if source_tree.is_file():
        return source_tree
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory('facesym_ros')) / folder / name
    except (ImportError, LookupError, OSError) as error:
        raise FileNotFoundError(f'facesym_ros: cannot find {folder}/{name}') from error
    if not installed.is_file():
        raise FileNotFoundError(f'facesym_ros: {installed} is missing')
    return installed


def package_config_file(name: str) -> Path:
    """A file of config/ (see package_share_file)."""
    return package_share_file('config', name)


def default_params_file() -> Path:
    return package_config_file('facesym.yaml')


def load_params_file(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Parameters per node name from a ROS 2 parameter file; `/**` entries apply to every node."""
    path = Path(path) if path else default_params_file()
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f'{path}: cannot read the parameter file: {error}') from None
    if not isinstance(document, Mapping):
        raise ValueError(f'{path}: expected a mapping of node names to ros__parameters')
    shared: dict[str, Any] = {}
    params: dict[str, dict[str, Any]] = {node: {} for node in NODE_SETTINGS}
    for key, entry in document.items():
        if not isinstance(entry, Mapping) or not isinstance(entry.get('ros__parameters'), Mapping):
            raise ValueError(f'{path}: entry {key!r} has no ros__parameters mapping')
        node = str(key).rstrip('/').split('/')[-1]
        values = dict(entry['ros__parameters'])
        if node == '**':
            shared.update(values)
            continue
        if node not in NODE_SETTINGS:
            raise ValueError(f'{path}: unknown node {node!r} (known: {", ".join(NODE_SETTINGS)})')
        unknown = sorted(set(values) - set(parameter_names(node)))
        if unknown:
            raise ValueError(f'{path}: unknown parameters for {node}: {", ".join(unknown)}')
        params[node].update(values)
    for node, values in params.items():
        names = set(parameter_names(node))
        params[node] = {**{k: v for k, v in shared.items() if k in names}, **values}
    return params


def pipeline_config(params: Mapping[str, Mapping[str, Any]]) -> PipelineConfig:
    """The core settings in a parameter set, validated."""
    return PipelineConfig(
        detector=from_mapping(DetectorConfig, params.get('face_detector', {}), source='face_detector'),
        landmarks=from_mapping(LandmarkConfig, params.get('landmark_detector', {}), source='landmark_detector'),
        flow=from_mapping(FlowConfig, params.get('optical_flow', {}), source='optical_flow'),
        scoring=from_mapping(ScoringConfig, params.get('symmetry_scorer', {}), source='symmetry_scorer'),
    )


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()


def render_params_yaml() -> str:
    """config/facesym.yaml as generated from the settings classes: every parameter, its default and meaning."""
    lines = [
        '# Parameters of every facesym_ros node, with their defaults.',
        '# Generated from the settings classes: python -m facesym_ros.params > config/facesym.yaml',
        '# Used by launch/facesym.launch.py, `facesym bringup` and the offline tools (`facesym score`,',
        '# `facesym score-bag`), so that live and offline scores use the same settings. Copy it to change it.',
    ]
    for node, classes in NODE_SETTINGS.items():
        lines += ['', f'{node}:', '  ros__parameters:']
        for cls in classes:
            for field in dataclasses.fields(cls):
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
