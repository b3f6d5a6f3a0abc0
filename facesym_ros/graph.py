"""The facesym ROS graph: which nodes run and how their topics connect.

Shared by launch/facesym.launch.py and `facesym bringup`, so both start the
same graph. Nodes use relative topic names; the remappings below wire them up
(image_pipeline style: each node subscribes to `image`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from facesym_ros.params import package_config_file

FASTDDS_PROFILE_VARIABLE = 'FASTDDS_DEFAULT_PROFILES_FILE'


@dataclass(frozen=True)
class NodeSpec:
    """A node of the graph: its name (also its executable's), module, class and remappings."""

    name: str
    class_name: str
    remappings: tuple[tuple[str, str], ...] = ()

    @property
    def module(self) -> str:
        return f'facesym_ros.nodes.{self.name}'

    def node_class(self) -> type:
        import importlib

        return getattr(importlib.import_module(self.module), self.class_name)


GRAPH: tuple[NodeSpec, ...] = (
    NodeSpec('image_source', 'ImageSourceNode'),
    NodeSpec('face_detector', 'FaceDetectorNode', (('image', 'image_raw'),)),
    NodeSpec('landmark_detector', 'LandmarkDetectorNode', (('image', 'image_raw'),)),
    NodeSpec('optical_flow', 'OpticalFlowNode', (('image', 'image_raw'),)),
    NodeSpec('symmetry_scorer', 'SymmetryScorerNode'),
    NodeSpec('annotator', 'AnnotatorNode', (('image', 'flow_heatmap'),)),
)


def dds_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment with the large-frame Fast DDS profile, unless one is already chosen."""
    env = dict(os.environ if environ is None else environ)
    env.setdefault(FASTDDS_PROFILE_VARIABLE, str(package_config_file('fastdds.xml')))
    return env
