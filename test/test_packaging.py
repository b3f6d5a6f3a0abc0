"""The PEP 668 route (a ROS 2 install, rosdep, then pip in a venv on top): every import of the package resolves.

Every module of facesym_ros/ and launch/ is parsed (ast) for the modules it imports (import, from-import and
importlib.util.find_spec of a literal name). Each top-level name that is not the standard library's must be
provided by a rosdep key of package.xml or by a distribution of requirements-pip-only.txt; the import names a
distribution provides are read from its installed files (RECORD), so dlib-bin's `dlib` counts as well as
foxglove-sdk's `foxglove`.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import PackageNotFoundError, distribution, version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIP_ONLY = ROOT / 'requirements-pip-only.txt'
ROSDEP_PYTHON_KEYS = {
    # rosdep keys of Python libraries -> the import names they provide (rosdep's python.yaml)
    'python3-numpy': {'numpy'}, 'python3-opencv': {'cv2'}, 'python3-yaml': {'yaml'}, 'python3-tqdm': {'tqdm'},
    'python3-matplotlib': {'matplotlib'},
}


def imported_names(path: Path) -> set[str]:
    """Top-level names of the absolute imports in a module, and of importlib.util.find_spec('<literal>')."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split('.')[0])
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == 'find_spec'
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value.split('.')[0])
    return names


def package_imports() -> dict[str, list[str]]:
    """Third-party top-level import name -> the files that import it."""
    files = [path for path in (ROOT / 'facesym_ros').rglob('*.py') if 'msg' not in path.relative_to(ROOT).parts]
    files += sorted((ROOT / 'launch').glob('*.py'))
    found: dict[str, list[str]] = {}
    for path in sorted(files):
        for name in imported_names(path):
            if name not in sys.stdlib_module_names and name not in {'facesym_ros', '__future__'}:
                found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return found


def rosdep_keys() -> set[str]:
    package = (ROOT / 'package.xml').read_text()
    return set(re.findall(r'<(?:exec_)?depend>([\w-]+)</(?:exec_)?depend>', package))


def pip_only_distributions() -> dict[str, str]:
    """Distribution name -> its requirement line."""
    lines = [line.strip() for line in PIP_ONLY.read_text().splitlines() if line.strip() and not line.startswith('#')]
    return {re.split(r'[=<>!~ \[]', line, maxsplit=1)[0]: line for line in lines}


def provided_names(name: str) -> set[str]:
    """The top-level import names an installed distribution provides, from its files."""
    files = distribution(name).files or []
    names = set()
    for file in files:
        first = file.parts[0]
        if first.endswith(('.dist-info', '.egg-info', '.data')) or first in ('..', '__pycache__', 'bin'):
            continue
        stem = first.split('.')[0]
        if len(file.parts) > 1 or first.endswith(('.py', '.so', '.pyd')):
            names.add(stem)
    return names


def test_the_package_imports_are_found_by_the_parser():
    """A check that cannot fail is no check: the parser sees the imports the package is known to have."""
    imports = package_imports()
    known = {'rclpy', 'cv2', 'dlib', 'foxglove', 'apsw', 'torch', 'launch_ros', 'face_recognition_models'}
    assert known <= set(imports)
    assert 'os' not in imports and 'facesym_ros' not in imports


def test_every_import_resolves_from_package_xml_or_requirements_pip_only():
    keys = rosdep_keys()
    from_rosdep = {key for key in keys if not key.startswith('python3-')}  # ROS packages: import name = key
    for key in keys & set(ROSDEP_PYTHON_KEYS):
        from_rosdep |= ROSDEP_PYTHON_KEYS[key]
    from_pip: dict[str, str] = {}
    for name in pip_only_distributions():
        try:
            provided = provided_names(name)
        except PackageNotFoundError:
            pytest.fail(f'{name} of requirements-pip-only.txt is not installed in this venv')
        assert provided, f'{name} provides no importable module'
        from_pip.update(dict.fromkeys(provided, name))
    missing = {name: files for name, files in package_imports().items()
               if name not in from_rosdep and name not in from_pip}
    assert missing == {}, 'imported, but neither a rosdep key of package.xml nor in requirements-pip-only.txt'


def test_requirements_pip_only_are_pinned_as_in_constraints():
    pins = {}
    for line in (ROOT / 'constraints.txt').read_text().splitlines():
        name, _, pinned = line.partition('==')
        if pinned and not line.startswith('#'):
            pins[name.strip().lower().replace('_', '-')] = pinned.strip()
    for name, line in pip_only_distributions().items():
        if '==' in line:
            assert pins.get(name.lower()) == line.split('==')[1], line
        else:  # a range (setuptools, which pip freeze leaves out): the venv's version must satisfy it
            from packaging.specifiers import SpecifierSet

            assert version(name) in SpecifierSet(line[len(name):]), line
