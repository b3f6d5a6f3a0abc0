"""pip installation of the facesym_ros Python package.

Used by scripts/setup.sh (editable install into .venv). On a ROS 2 install the
package is built with colcon from CMakeLists.txt instead, which also builds
the messages; see README.md.
"""

from setuptools import find_packages, setup

NODES = ['image_source', 'face_detector', 'landmark_detector', 'optical_flow',
         'symmetry_scorer', 'annotator']

setup(
    name='facesym_ros',
    version='0.1.0',
    description='Objective facial-asymmetry scores for one-sided facial paralysis, for ROS 2',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(include=['facesym_ros', 'facesym_ros.*']),
    package_data={'facesym_ros': ['data/*', 'facesym_ros_s__*.so']},
    install_requires=[
        'numpy',
        'opencv-python-headless>=4.5,<5',
        'dlib-bin',
        'face-recognition-models',
        'PyYAML',
        'tqdm',
        'rosbags>=0.11',
        'rosbags-image>=0.10',
        'mcap>=1.6',  # Writer.flush
        'apsw',
    ],
    extras_require={'san': ['torch>=2.0']},
    entry_points={
        'console_scripts': [
            'facesym = facesym_ros.cli:main',
            *[f'facesym_{node} = facesym_ros.nodes.{node}:main' for node in NODES],
        ],
    },
)
