"""The package's shape: one list of nodes, one list of messages, imports that go one way only."""

from __future__ import annotations

import ast
import re
from importlib.metadata import distribution, entry_points
from pathlib import Path

import pytest

from facesym_ros.config import registry
from facesym_ros.config.files import message_names

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'facesym_ros'
LIBRARY = ('core', 'ros', 'bag', 'nodes', 'config', 'clinic', 'archive')


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (PACKAGE / folder).rglob('*.py')
                  if 'msg' not in path.relative_to(PACKAGE).parts)


@pytest.mark.parametrize('path', python_files(*LIBRARY), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_library_code_imports_no_command_module(path):
    assert not [name for name in imports_of(path) if name == 'facesym_ros.cli' or name.startswith('facesym_ros.cli.')]


@pytest.mark.parametrize('path', python_files('core'), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_core_knows_nothing_of_ros(path):
    ros = re.compile(r'^(rclpy|rosbags|sensor_msgs|std_msgs|builtin_interfaces|rcl_interfaces|facesym_ros\.'
                     r'(ros|nodes|bag|msg|cli|config))\b')
    assert not [name for name in imports_of(path) if ros.match(name)]


def test_the_registry_needs_nothing_but_the_standard_library():
    """setup.py and CMake read it before any dependency is installed."""
    assert {name.split('.')[0] for name in imports_of(PACKAGE / 'config' / 'registry.py')} <= {
        '__future__', 'importlib', 'sys', 'dataclasses'}


def test_no_loose_modules_beside_the_packages():
    loose = sorted(path.name for path in PACKAGE.glob('*.py') if path.name != '__init__.py')
    assert loose == []


def test_the_cmake_message_list_is_the_msg_folder():
    cmake = (ROOT / 'CMakeLists.txt').read_text()
    block = re.search(r'rosidl_generate_interfaces\(\$\{PROJECT_NAME\}(.*?)DEPENDENCIES', cmake, re.S).group(1)
    listed = sorted(re.findall(r'"msg/(\w+)\.msg"', block))
    assert listed == list(message_names()) and len(listed) == 11


def test_console_scripts_are_the_registry_executables():
    installed = {ep.name: ep.value for ep in entry_points(group='console_scripts')
                 if ep.value.startswith('facesym_ros')}
    if not installed and not list(distribution('facesym_ros').entry_points):
        pytest.skip('facesym_ros installed by colcon (no console scripts; test_colcon_build checks lib/facesym_ros)')
    expected = dict(line.split(' = ') for line in registry.console_scripts())
    assert installed == expected
    assert set(registry.executables()) == {*registry.ALL_NODE_NAMES, 'facesym'}


@pytest.mark.parametrize('spec', registry.ALL_NODES, ids=lambda spec: spec.name)
def test_every_registered_node_exists_with_its_settings(spec):
    node_class = spec.node_class()
    assert node_class.__module__ == spec.module
    assert spec.settings_classes(), 'a node without parameters'
    for topic in (*spec.subscribes, *spec.publishes):
        assert re.fullmatch(r'[a-z_]+(/[a-z_]+)*', topic), 'topics are relative names'


def test_node_names_are_written_only_in_the_registry_and_the_nodes():
    names = '|'.join(registry.ALL_NODE_NAMES)
    pattern = re.compile(rf"""['"]({names})['"]""")
    allowed = {PACKAGE / 'config' / 'registry.py', *(PACKAGE / 'nodes').glob('*.py')}
    code = [*PACKAGE.rglob('*.py'), *(ROOT / 'launch').glob('*.py'), ROOT / 'setup.py', *(ROOT / 'scripts').glob('*')]
    offenders = [f'{path.relative_to(ROOT)}: {match.group(0)}' for path in code
                 if path not in allowed and 'msg' not in path.parts and path.is_file()
                 for match in pattern.finditer(path.read_text())]
    cmake = (ROOT / 'CMakeLists.txt').read_text()
    offenders += [f'CMakeLists.txt: {name}' for name in registry.ALL_NODE_NAMES if re.search(rf'\b{name}\b', cmake)]
    assert offenders == []
