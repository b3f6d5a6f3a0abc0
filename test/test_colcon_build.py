"""The repository builds and tests with colcon against a ROS 2 install (here: the pip ROS 2 in the venv as underlay).

`colcon test` runs pytest through ament_add_pytest_test; here only on QUICK_TESTS, to keep CI short.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
QUICK_TESTS = ['test/test_structure.py', 'test/test_scoring.py']
EXECUTABLES = ['image_source', 'face_detector', 'landmark_detector', 'optical_flow', 'symmetry_scorer',
               'annotator', 'facesym']


@pytest.fixture(scope='module')
def install_space(tmp_path_factory, colcon_path) -> Path:
    root = tmp_path_factory.mktemp('colcon')
    result = colcon(colcon_path, root, 'build', '--cmake-args', f'-DPython3_EXECUTABLE={sys.executable}',
                    '-DBUILD_TESTING=ON', f'-DFACESYM_PYTEST_PATHS={";".join(QUICK_TESTS)}')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert '1 package finished' in result.stdout
    return root / 'install'


def colcon(executable: str, root: Path, verb: str, *args: str) -> subprocess.CompletedProcess:
    """colcon VERB on this checkout, with the workspace's build, install and log folders under root."""
    env = dict(os.environ)
    env['AMENT_PREFIX_PATH'] = sys.prefix
    env['CMAKE_PREFIX_PATH'] = sys.prefix
    return subprocess.run(
        [executable, '--log-base', str(root / 'log'), verb, '--base-paths', str(REPO),
         '--build-base', str(root / 'build'), '--install-base', str(root / 'install'), *args],
        cwd=root, env=env, capture_output=True, text=True, timeout=900, check=False)


@pytest.fixture(scope='module')
def colcon_path() -> str:
    executable = shutil.which('colcon', path=str(Path(sys.executable).parent))
    assert executable, 'colcon is not installed in the venv (scripts/setup.sh installs it)'
    return executable


def test_colcon_installs_package_executables_launch_and_config(install_space):
    package = install_space / 'facesym_ros'
    for name in EXECUTABLES:
        executable = package / 'lib' / 'facesym_ros' / name
        assert executable.is_file() and os.access(executable, os.X_OK), name
    share = package / 'share' / 'facesym_ros'
    for relative in ['launch/facesym.launch.py', 'config/facesym.yaml', 'config/facesym.rviz',
                     'config/fastdds.xml', 'msg/SymmetryScore.msg', 'package.xml']:
        assert (share / relative).is_file(), relative
    assert (install_space / 'share' / 'ament_index' / 'resource_index' / 'packages' / 'facesym_ros').exists() or \
        (package / 'share' / 'ament_index' / 'resource_index' / 'packages' / 'facesym_ros').exists()


def test_messages_and_code_import_from_the_install_space(install_space, tmp_path):
    probe = (
        'import facesym_ros, facesym_ros.msg as m, facesym_ros.core.scoring as s\n'
        'from rclpy.serialization import serialize_message, deserialize_message\n'
        'score = m.SymmetryScore(trial_id="t-1", frame_count=72)\n'
        'back = deserialize_message(serialize_message(score), m.SymmetryScore)\n'
        'print(facesym_ros.__file__); print(m.__file__); print(back.trial_id, back.frame_count)\n'
        'print(s.symmetry_score(0.3, 0.25, 3.8))\n')
    # A shell that sources the install space, as a ROS user does; run outside the checkout.
    script = f'source {install_space / "setup.bash"} && {sys.executable} -c \'{probe}\''
    result = subprocess.run(['bash', '-c', script], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    package_file, msg_file, roundtrip, score = result.stdout.split('\n')[:4]
    assert package_file.startswith(str(install_space)), package_file
    assert msg_file.startswith(str(install_space)), msg_file
    assert roundtrip == 't-1 72'
    assert float(score) == pytest.approx(0.81)


def test_ros2_run_executable_starts_a_node_from_the_install_space(install_space, tmp_path):
    script = (f'source {install_space / "setup.bash"} && '
              f'{sys.executable} {install_space / "facesym_ros" / "lib" / "facesym_ros" / "facesym"} --help')
    result = subprocess.run(['bash', '-c', script], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert 'bringup' in result.stdout and 'score' in result.stdout


def test_colcon_test_runs_the_pytest_suite_on_the_installed_package(install_space, colcon_path):
    root = install_space.parent
    result = colcon(colcon_path, root, 'test', '--event-handlers', 'console_direct+')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = subprocess.run([colcon_path, 'test-result', '--test-result-base', str(root / 'build'), '--all'],
                             capture_output=True, text=True, timeout=60, check=False)
    results = {Path(line.split(':')[0]).name: line for line in summary.stdout.splitlines() if 'tests' in line}
    for path in QUICK_TESTS:
        line = results.get(f'pytest_{Path(path).stem}.xunit.xml')
        assert line, summary.stdout
        counts = dict((name, int(number)) for number, name in re.findall(r'(\d+) (tests|errors|failure)', line))
        assert counts['tests'] > 0 and counts['errors'] == counts['failure'] == 0, line
