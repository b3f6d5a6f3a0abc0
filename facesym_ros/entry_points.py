"""Executables by name, for `ros2 run facesym_ros <name>` (see ros2_run/node_executable)."""

from __future__ import annotations

import importlib
import sys

EXECUTABLES = {
    'image_source': 'facesym_ros.nodes.image_source',
    'face_detector': 'facesym_ros.nodes.face_detector',
    'landmark_detector': 'facesym_ros.nodes.landmark_detector',
    'optical_flow': 'facesym_ros.nodes.optical_flow',
    'symmetry_scorer': 'facesym_ros.nodes.symmetry_scorer',
    'annotator': 'facesym_ros.nodes.annotator',
    'facesym': 'facesym_ros.cli',
}


def run(name: str) -> int:
    if name not in EXECUTABLES:
        print(f'facesym_ros has no executable {name!r}; known: {", ".join(EXECUTABLES)}', file=sys.stderr)
        return 2
    return int(importlib.import_module(EXECUTABLES[name]).main() or 0)
