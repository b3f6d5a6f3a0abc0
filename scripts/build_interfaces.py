#!/usr/bin/env python3
"""Build facesym_ros's ROS 2 messages with rosidl into the pip-installed ROS 2 venv.

Called by scripts/setup.sh with the venv's interpreter. It

1. rewrites the CMake exports of the ROS 2 wheels, which name Python and numpy
   include directories of the machine the wheels were built on
   (/opt/python/cp311-cp311/...), to this interpreter's directories;
2. configures, builds and installs the package with CMake into a staging
   prefix (build/venv-interfaces/install), with FACESYM_INSTALL_PYTHON_CODE=OFF;
3. copies the shared libraries and share/ (message definitions, ament index)
   into the venv, and the generated Python message modules into the source
   tree (facesym_ros/msg and the typesupport extensions, both git-ignored), so
   that the editable install imports them as `facesym_ros.msg`;
4. adds AMENT_PREFIX_PATH and CMAKE_PREFIX_PATH to the venv's activate script,
   so an activated venv works as a ROS 2 underlay for `colcon build`;
5. makes the venv a ROS 2 prefix of this package for `ros2 run` and
   `ros2 launch` (where the ros2 command is installed): one launcher per
   executable of the registry in lib/facesym_ros/ (as CMake installs them),
   and the files of share/facesym_ros/launch and config linked to the
   checkout's, so edits apply without a rebuild.

Every step is idempotent; the CMake build is skipped when the interface
definitions have not changed since the last successful build.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy

REPO = Path(__file__).resolve().parents[1]
PACKAGE = 'facesym_ros'
BUILD_ROOT = REPO / 'build' / 'venv-interfaces'
STAGING = BUILD_ROOT / 'install'
STAMP = BUILD_ROOT / 'inputs.sha256'
BUILD_INPUTS = ['CMakeLists.txt', 'package.xml', 'msg']
LINKED_SHARE = ('launch', 'config')
LAUNCHER = REPO / 'ros2_run' / 'node_executable'
WHEEL_BUILD_PYTHON = '/opt/python/cp311-cp311'
ACTIVATE_MARKER = '# facesym_ros: ROS 2 underlay paths'


def venv_prefix() -> Path:
    if sys.prefix == sys.base_prefix:
        sys.exit('build_interfaces: run this with the interpreter of the venv (scripts/setup.sh does)')
    return Path(sys.prefix)


def fix_wheel_cmake_exports(prefix: Path) -> int:
    """Point the wheels' exported include directories at this interpreter's; return files changed."""
    python_include = sysconfig.get_paths()['include']
    replacements = {
        f'{WHEEL_BUILD_PYTHON}/include/python3.11': python_include,
        f'{WHEEL_BUILD_PYTHON}/lib/python3.11/site-packages/numpy/_core/include': numpy.get_include(),
    }
    changed = 0
    for cmake_file in (prefix / 'share').rglob('*.cmake'):
        text = cmake_file.read_text()
        if WHEEL_BUILD_PYTHON not in text:
            continue
        for old, new in replacements.items():
            text = text.replace(old, new)
        if WHEEL_BUILD_PYTHON in text:
            sys.exit(f'build_interfaces: unknown {WHEEL_BUILD_PYTHON} path left in {cmake_file}')
        cmake_file.write_text(text)
        changed += 1
    return changed


def interface_inputs_hash(prefix: Path) -> str:
    digest = hashlib.sha256(str(prefix).encode())
    for name in BUILD_INPUTS:
        root = REPO / name
        for path in sorted([root] if root.is_file() else (p for p in root.rglob('*') if p.is_file())):
            digest.update(str(path.relative_to(REPO)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def generated_site_packages() -> Path:
    return STAGING / 'lib' / f'python{sys.version_info.major}.{sys.version_info.minor}' / 'site-packages' / PACKAGE


def outputs_present(prefix: Path) -> bool:
    return (
        (REPO / PACKAGE / 'msg' / '__init__.py').is_file()
        and (prefix / 'lib' / f'lib{PACKAGE}__rosidl_typesupport_c.so').is_file()
        and any((REPO / PACKAGE).glob(f'{PACKAGE}_s__rosidl_typesupport_c*.so'))
    )


def ros_env(prefix: Path) -> dict[str, str]:
    env = dict(os.environ)
    env['AMENT_PREFIX_PATH'] = str(prefix)
    env['CMAKE_PREFIX_PATH'] = str(prefix)
    env['PATH'] = f'{prefix / "bin"}{os.pathsep}{env.get("PATH", "")}'
    return env


def cmake_build(prefix: Path) -> None:
    build_dir = BUILD_ROOT / 'cmake'
    for stale in (build_dir, STAGING):
        if stale.exists():
            shutil.rmtree(stale)
    env = ros_env(prefix)
    configure = [
        'cmake', '-S', str(REPO), '-B', str(build_dir),
        f'-DCMAKE_INSTALL_PREFIX={STAGING}',
        f'-DPython3_EXECUTABLE={sys.executable}',
        '-DFACESYM_INSTALL_PYTHON_CODE=OFF',
        '-DBUILD_TESTING=OFF',
    ]
    jobs = str(os.cpu_count() or 1)
    log = BUILD_ROOT / 'build.log'
    with log.open('w') as out:
        for command in (configure, ['cmake', '--build', str(build_dir), '-j', jobs],
                        ['cmake', '--install', str(build_dir)]):
            result = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
            if result.returncode != 0:
                tail = log.read_text().splitlines()[-40:]
                sys.exit('build_interfaces: {} failed:\n{}\n(full log: {})'.format(
                    ' '.join(command[:2]), '\n'.join(tail), log))


def deploy(prefix: Path) -> None:
    """Copy the staged build into the venv (libraries, share) and the source tree (Python)."""
    for library in (STAGING / 'lib').glob(f'lib{PACKAGE}__*.so*'):
        shutil.copy2(library, prefix / 'lib' / library.name)
    own_share = STAGING / 'share' / PACKAGE

    def linked(folder: str, names: list[str]) -> list[str]:  # launch/ and config/ are links to the checkout
        return [name for name in names if Path(folder) == own_share and name in LINKED_SHARE]

    shutil.copytree(STAGING / 'share', prefix / 'share', dirs_exist_ok=True, ignore=linked)

    target = REPO / PACKAGE
    shutil.rmtree(target / 'msg', ignore_errors=True)
    for stale in target.glob(f'{PACKAGE}_s__*.so'):
        stale.unlink()
    source = generated_site_packages()
    shutil.copytree(source / 'msg', target / 'msg', ignore=shutil.ignore_patterns('*.c', '__pycache__'))
    for extension in source.glob(f'{PACKAGE}_s__*.so'):
        shutil.copy2(extension, target / extension.name)


def add_underlay_to_activate(prefix: Path) -> None:
    activate = prefix / 'bin' / 'activate'
    text = activate.read_text()
    if ACTIVATE_MARKER in text:
        return
    activate.write_text(text + (
        f'\n{ACTIVATE_MARKER}\n'
        'export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"\n'
        'export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"\n'
    ))


def executables() -> list[str]:
    result = subprocess.run([sys.executable, str(REPO / PACKAGE / 'config' / 'registry.py')], capture_output=True,
                            text=True, check=True)
    return result.stdout.strip().split(';')


def install_ros2_prefix(prefix: Path) -> None:
    """lib/facesym_ros/<executable> launchers on this interpreter, and launch/ and config/ linked (step 5)."""
    lib = prefix / 'lib' / PACKAGE
    lib.mkdir(parents=True, exist_ok=True)
    body = LAUNCHER.read_text().split('\n', 1)[1]  # without its shebang
    wanted = set(executables())
    for stale in lib.iterdir():
        if stale.name not in wanted:
            stale.unlink()
    for name in wanted:
        launcher = lib / name
        text = f'#!{sys.executable}\n{body}'
        if not launcher.is_file() or launcher.read_text() != text:
            launcher.write_text(text)
        launcher.chmod(0o755)
    for folder in LINKED_SHARE:
        # Files linked one by one: `ros2 launch` finds launch files with os.walk, which skips linked folders.
        source, target = REPO / folder, prefix / 'share' / PACKAGE / folder
        if target.is_symlink() or target.is_file():
            target.unlink()
        target.mkdir(parents=True, exist_ok=True)
        wanted = {path.relative_to(source) for path in source.rglob('*') if path.is_file()}
        for present in sorted(target.rglob('*'), reverse=True):
            if present.is_symlink() or present.is_file():
                if present.relative_to(target) not in wanted or not present.is_symlink():
                    present.unlink()
            elif present.is_dir() and not any(present.iterdir()):
                present.rmdir()
        for relative in wanted:
            link = target / relative
            if not link.is_symlink():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(source / relative)


def main() -> None:
    prefix = venv_prefix()
    changed = fix_wheel_cmake_exports(prefix)
    if changed:
        print(f'build_interfaces: rewrote {WHEEL_BUILD_PYTHON} include paths in {changed} CMake files')
    add_underlay_to_activate(prefix)
    BUILD_ROOT.mkdir(parents=True, exist_ok=True)
    # colcon must not crawl this build tree when the checkout is built as a workspace.
    (BUILD_ROOT.parent / 'COLCON_IGNORE').touch()

    inputs = interface_inputs_hash(prefix)
    if STAMP.is_file() and STAMP.read_text() == inputs and outputs_present(prefix):
        print('build_interfaces: messages up to date')
    else:
        print('build_interfaces: building messages with rosidl (about 30 s)')
        cmake_build(prefix)
        deploy(prefix)
        STAMP.write_text(inputs)
        print(f'build_interfaces: messages importable as {PACKAGE}.msg')
    install_ros2_prefix(prefix)


if __name__ == '__main__':
    main()
