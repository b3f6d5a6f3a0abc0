"""A Python environment with ROS 2's real `launch`, `launch_ros`, `ros2launch` and `ros2` command, for the tests.

Either this interpreter already has launch_ros (a ROS 2 install), or the
wheels in ../shared/ros-launch (built from the public sources; see its README)
are installed into a venv cached under build/launch-venv: the wheels without
their dependencies, osrf-pycommon and psutil from PyPI at the versions in
constraints.txt, and composition_interfaces built with rosidl and CMake (as
scripts/build_interfaces.py builds this package's messages) straight into
that venv. The venv sees the project venv's packages (rclpy, the messages,
facesym_ros) through a .pth file; it is built again only when the wheels, the
message source, the pins or this file change (about a minute), else reused.

`python -m helpers.launch_env` builds it and prints its interpreter.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WHEELS_FOLDER = REPO.parent / 'shared' / 'ros-launch'
VENV = REPO / 'build' / 'launch-venv'
PYPI_PACKAGES = ('osrf-pycommon', 'psutil')
MESSAGE_PACKAGE = 'composition_interfaces'
STAMP_NAME = '.facesym-launch-env.sha256'


@dataclass(frozen=True)
class LaunchEnv:
    """How to run launch and `ros2` here: an interpreter, the folder of its commands and the environment."""

    python: Path
    bin: Path
    env: dict[str, str]

    def command(self, name: str) -> list[str]:
        """A console script of the environment (`ros2`), run by its interpreter."""
        return [str(self.python), str(self.bin / name)]


class LaunchUnavailableError(RuntimeError):
    """Neither launch_ros nor the wheels to install it are here: the reason, for a skip."""


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / 'constraints.txt').read_text().splitlines():
        name, _, version = line.partition('==')
        if version and not line.startswith('#'):
            pins[name.strip().lower()] = version.strip()
    return pins


def _inputs_hash(wheels: list[Path], source: Path) -> str:
    digest = hashlib.sha256(f'{sys.prefix}\n{sys.version}\n'.encode())
    digest.update(Path(__file__).read_bytes())
    for path in [*wheels, *sorted(p for p in source.rglob('*') if p.is_file())]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    pins = _pins()
    digest.update(' '.join(f'{name}=={pins.get(name)}' for name in PYPI_PACKAGES).encode())
    return digest.hexdigest()


def _run(command: list[str], log: Path, env: dict[str, str] | None = None) -> None:
    with log.open('a') as out:
        out.write(f'$ {" ".join(command)}\n')
        out.flush()
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, check=False, timeout=900)
    if result.returncode != 0:
        tail = '\n'.join(log.read_text().splitlines()[-30:])
        raise RuntimeError(f'building the launch environment failed at `{" ".join(command[:4])}`:\n{tail}')


def _site_packages(prefix: Path) -> Path:
    return prefix / 'lib' / f'python{sys.version_info.major}.{sys.version_info.minor}' / 'site-packages'


def _build(venv: Path, wheels: list[Path], source: Path) -> None:
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    log = venv.parent / 'launch-venv.log'
    log.write_text('')
    base = getattr(sys, '_base_executable', sys.executable)
    _run([base, '-m', 'venv', '--without-pip', str(venv)], log)
    # The project venv's packages (rclpy, messages, facesym_ros) are visible to the launch venv, its own .pth
    # files (the editable facesym_ros) included.
    project_site = sysconfig.get_paths()['purelib']
    (_site_packages(venv) / '_facesym_project_venv.pth').write_text(
        f'import site; site.addsitedir({project_site!r})\n')
    python = venv / 'bin' / 'python'
    pip = [str(python), '-m', 'pip', 'install', '--disable-pip-version-check', '-q', '--no-index',
           '--no-deps', '--prefix', str(venv)]
    _run([*pip, *map(str, wheels)], log)
    pins = _pins()
    _run([str(python), '-m', 'pip', 'install', '--disable-pip-version-check', '-q', '--prefix', str(venv),
          *(f'{name}=={pins[name]}' for name in PYPI_PACKAGES)], log)
    build = venv / 'cmake-build'
    env = {**os.environ, 'AMENT_PREFIX_PATH': sys.prefix, 'CMAKE_PREFIX_PATH': sys.prefix,
           'PATH': f'{Path(sys.prefix) / "bin"}{os.pathsep}{os.environ.get("PATH", "")}'}
    _run(['cmake', '-S', str(source), '-B', str(build), f'-DCMAKE_INSTALL_PREFIX={venv}',
          f'-DPython3_EXECUTABLE={sys.executable}', '-DBUILD_TESTING=OFF'], log, env)
    _run(['cmake', '--build', str(build), '-j', str(os.cpu_count() or 1)], log, env)
    _run(['cmake', '--install', str(build)], log, env)
    shutil.rmtree(build)


def _environment(prefixes: list[str]) -> dict[str, str]:
    env = dict(os.environ)
    known = [p for p in env.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    env['AMENT_PREFIX_PATH'] = os.pathsep.join(dict.fromkeys([*prefixes, *known]))
    libraries = [str(Path(p) / 'lib') for p in prefixes]
    env['LD_LIBRARY_PATH'] = os.pathsep.join([*libraries, *filter(None, [env.get('LD_LIBRARY_PATH')])])
    env['PYTHONUNBUFFERED'] = '1'
    return env


def launch_env(venv: Path = VENV) -> LaunchEnv:
    """The launch environment: this interpreter if it has launch_ros, else the cached venv (built if needed).

    Raises LaunchUnavailableError, with the reason, when neither launch_ros nor ../shared/ros-launch is here.
    """
    if importlib.util.find_spec('launch_ros') is not None and shutil.which('ros2'):
        return LaunchEnv(Path(sys.executable), Path(shutil.which('ros2')).parent, _environment([sys.prefix]))
    wheels = sorted((WHEELS_FOLDER / 'wheels').glob('*.whl'))
    source = WHEELS_FOLDER / 'src' / MESSAGE_PACKAGE
    if not wheels or not source.is_dir():
        raise LaunchUnavailableError(f'no launch_ros in this Python and no launch wheels in {WHEELS_FOLDER} '
                          '(a ROS 2 install, or the ros-launch wheels of ../shared, is needed)')
    if shutil.which('cmake') is None:
        raise LaunchUnavailableError('cmake is missing: composition_interfaces cannot be built for the launch wheels')
    stamp = venv / STAMP_NAME
    inputs = _inputs_hash(wheels, source)
    if not (stamp.is_file() and stamp.read_text() == inputs):
        _build(venv, wheels, source)
        stamp.write_text(inputs)
    return LaunchEnv(venv / 'bin' / 'python', venv / 'bin', _environment([str(venv), sys.prefix]))


if __name__ == '__main__':
    print(launch_env().python)
