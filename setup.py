"""pip installation of the facesym_ros Python package.

Used by scripts/setup.sh (editable install into .venv). On a ROS 2 install the
package is built with colcon from CMakeLists.txt instead, which also builds
the messages; see README.md.
"""

import importlib.util
import sys
from pathlib import Path

from setuptools import find_packages, setup


def _registry():
    """facesym_ros/config/registry.py, loaded on its own: the executables come from the one list of nodes."""
    path = Path(__file__).resolve().parent / 'facesym_ros' / 'config' / 'registry.py'
    spec = importlib.util.spec_from_file_location('facesym_registry', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


setup(
    name='facesym_ros',
    version='0.1.0',
    description='Objective facial-asymmetry scores for one-sided facial paralysis, for ROS 2',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(include=['facesym_ros', 'facesym_ros.*']),
    package_data={'facesym_ros': ['data/*', 'models/*/*', 'facesym_ros_s__*.so', 'console/static/*']},
    install_requires=[
        'numpy',
        'opencv-python-headless>=4.5,<5',
        'ai-edge-litert',
        'dlib-bin',
        'face-recognition-models',
        'PyYAML',
        'tqdm',
        'rosbags>=0.11',
        'rosbags-image>=0.10',
        'mcap>=1.6',  # Writer.flush
        'apsw',
        'matplotlib',
    ],
    extras_require={'san': ['torch>=2.0']},
    entry_points={
        'console_scripts': _registry().console_scripts(),
    },
)
