"""The systemd unit of `facesym systemd-unit`: its shape, and its ExecStart run as systemd would run it.

systemd itself cannot run here: the unit's ExecStart is parsed from the generated file and run with the
unit's Environment, then stopped with SIGTERM (and the bringup route with its KillSignal); no process may
be left and the exit must be one systemd counts as clean.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facesym_ros.config.registry import NODE_NAMES, NODES, SOURCE_NODE
from facesym_ros.config.systemd import (
    KILL_SIGNALS,
    LAUNCH,
    UnitSpec,
    clean_exit,
    launch_command,
    parse_exec_start,
    render_unit,
    unit_environment,
    unit_fields,
)
from helpers.cli import facesym
from helpers.launch_env import LaunchEnv, LaunchUnavailableError, launch_env
from helpers.processes import alive, children, wait_gone

TEST_DIR = Path(__file__).resolve().parent
BASE_ENVIRONMENT = ('PATH', 'HOME', 'ROS_DOMAIN_ID', 'ROS_HOME', 'ROS_AUTOMATIC_DISCOVERY_RANGE')
"""What a service has besides its unit's Environment (systemd starts services with a near-empty one)."""


@pytest.fixture(scope='module')
def ros_launch() -> LaunchEnv:
    try:
        return launch_env()
    except LaunchUnavailableError as reason:
        pytest.skip(f'systemd unit with ros2 launch: {reason}')


def test_the_unit_restarts_the_graph_stops_it_with_the_right_signal_and_keeps_paths_literal():
    spec = UnitSpec(route=LAUNCH, command=launch_command(['namespace:=rig1', 'source:=/data/100%/$take.mp4']),
                    setup_files=['/opt/ros/jazzy/setup.bash', '/home/rig/ws/install/setup.bash'], user='rig',
                    environment={'ROS_DOMAIN_ID': '42'})
    text = render_unit(spec)
    fields = unit_fields(text)
    assert fields['Restart'] == ['always'] and fields['KillMode'] == ['mixed'] and fields['KillSignal'] == ['SIGINT']
    assert fields['User'] == ['rig'] and fields['WantedBy'] == ['multi-user.target']
    assert '%%' in fields['ExecStart'][0] and '$$take' in fields['ExecStart'][0]  # systemd's specifiers escaped
    argv = parse_exec_start(text)
    assert argv[:2] == ['/bin/bash', '-c']
    assert argv[2].startswith('source /opt/ros/jazzy/setup.bash && source /home/rig/ws/install/setup.bash && exec ros2 '
                              'launch facesym_ros facesym.launch.py namespace:=rig1')
    assert "'source:=/data/100%/$take.mp4'" in argv[2]  # bash sees the path quoted, as given
    assert unit_environment(text) == {'ROS_DOMAIN_ID': '42'}


def test_systemd_counts_status_0_and_death_by_sigterm_or_sigint_as_clean():
    assert clean_exit(0) and clean_exit(-signal.SIGTERM) and clean_exit(-signal.SIGINT)
    assert not clean_exit(1) and not clean_exit(-signal.SIGKILL) and not clean_exit(-signal.SIGSEGV)


def service(text: str, tmp_path: Path, name: str) -> tuple[subprocess.Popen, Path]:
    """The unit's ExecStart, started as systemd starts it: its argv, its Environment, a session of its own."""
    env = {key: os.environ[key] for key in BASE_ENVIRONMENT if key in os.environ}
    env.update(unit_environment(text))
    log = tmp_path / f'{name}.log'
    process = subprocess.Popen(parse_exec_start(text), env=env, stdout=log.open('w'), stderr=subprocess.STDOUT,
                               cwd=tmp_path, start_new_session=True)
    return process, log


def test_the_launch_units_command_runs_the_graph_and_sigterm_leaves_no_process(ros_launch, rclpy_context, tmp_path):
    from facesym_ros.ros.graph_client import GraphClient

    # What a ROS install's setup.bash does for ros2 and this package, for the launch wheels of this machine.
    setup = tmp_path / 'setup.bash'
    setup.write_text(''.join(f'export {key}={value!r}\n' for key, value in ros_launch.env.items()
                             if key in ('AMENT_PREFIX_PATH', 'LD_LIBRARY_PATH', '_ROS_WHEELS_BOOTSTRAP_COMPLETE')))
    unit = tmp_path / 'facesym.service'
    result = facesym('systemd-unit', 'source:=sample', 'namespace:=rig3', '--setup', setup, '--ros2',
                     ros_launch.bin / 'ros2', '--env', 'ROS_LOG_DIR=' + str(tmp_path / 'log'), '-o', unit)
    assert result.returncode == 0, result.stderr
    text = unit.read_text()
    assert unit_fields(text)['KillSignal'] == [KILL_SIGNALS[LAUNCH].name]
    process, log = service(text, tmp_path, 'launch-unit')
    client = GraphClient(namespace='rig3', context=rclpy_context, name='systemd_test_client')
    nodes: set[int] = set()
    try:
        client.wait_for_graph([spec for spec in NODES if spec.name != SOURCE_NODE], timeout=90)
        assert client.spin_until(lambda: len(nodes.update(children(process.pid)) or nodes) == len(NODE_NAMES), 30)
        # launch is the service's main process (bash exec'ed it): the nodes are its children
        assert Path(f'/proc/{process.pid}/cmdline').read_bytes().split(b'\0')[1].endswith(b'ros2')
    finally:
        client.close()
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            for pid in alive(nodes):
                os.kill(pid, signal.SIGKILL)
    assert wait_gone(nodes) == set(), log.read_text()[-3000:]
    assert clean_exit(code), (code, log.read_text()[-3000:])


def test_the_bringup_units_command_stops_cleanly_on_its_kill_signal(tmp_path):
    unit = tmp_path / 'facesym.service'
    result = facesym('systemd-unit', '--route', 'bringup', '-o', unit, '--', '--nodes', 'symmetry_scorer')
    assert result.returncode == 0, result.stderr
    text = unit.read_text()
    argv = parse_exec_start(text)
    assert argv[:4] == [sys.executable, '-m', 'facesym_ros.cli', 'bringup']
    kill = signal.Signals[unit_fields(text)['KillSignal'][0]]
    process, log = service(text, tmp_path, 'bringup-unit')
    nodes: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None and 'started' not in log.read_text():
            time.sleep(0.1)
        nodes |= children(process.pid)
        assert nodes, log.read_text()
    finally:
        process.send_signal(kill)
        code = process.wait(30)
    assert wait_gone(nodes) == set(), log.read_text()
    assert code == 0, log.read_text()
