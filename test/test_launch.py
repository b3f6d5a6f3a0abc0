"""launch/facesym.launch.py under the real ROS 2 launch: `ros2 launch` and launch.LaunchService.

The launch wheels of ../shared/ros-launch go into a venv cached under
build/launch-venv (test/helpers/launch_env.py), or an environment that has
launch_ros already is used; without either the tests skip, saying why. The
arguments' rules themselves (ros/launch_plan.py) are tested first, without
launch.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from facesym_ros.config.files import default_params_file
from facesym_ros.config.node_settings import RespawnSettings
from facesym_ros.config.registry import NODE_NAMES, NODES, SOURCE_NODE
from facesym_ros.ros.launch_plan import LaunchArgumentError, graph_plan
from helpers.launch_env import LaunchEnv, LaunchUnavailableError, launch_env
from helpers.processes import alive, children, wait_gone

TEST_DIR = Path(__file__).resolve().parent
ARGS = {'source': 'camera', 'camera_device': '0', 'image_topic': 'image_raw', 'params_file': '', 'namespace': '',
        'use_sim_time': 'false', 'rviz': 'false'}


def plan(**changes: str):
    return graph_plan(**{**ARGS, 'params_file': str(default_params_file()), **changes})


# -- the arguments' rules, without launch -------------------------------------------------------------------------

def test_the_default_source_is_the_rig_camera_and_the_sample_plays_only_when_asked():
    [source] = [node for node in plan().nodes if node.name == SOURCE_NODE]
    assert source.parameters == {'source': 'camera:0'}
    assert plan(camera_device='2').nodes[0].parameters == {'source': 'camera:2'}
    assert plan(source='sample').nodes[0].parameters == {'source': 'sample'}
    without = plan(source='none', image_topic='/camera/image_raw')
    assert SOURCE_NODE not in [node.name for node in without.nodes]
    assert ('image', '/camera/image_raw') in next(n for n in without.nodes if n.name == 'face_detector').remappings


def test_bringup_also_faces_the_camera_and_only_the_demo_plays_the_sample():
    from facesym_ros.cli import build_parser

    assert build_parser().parse_args(['bringup']).source == 'camera:0'
    assert build_parser().parse_args(['demo']).source is None  # demo_command plays the sample


@pytest.mark.parametrize(('changes', 'words'), [
    ({'params_file': '/nonexistent/rig.yaml'}, 'cannot read the parameter file'),
    ({'params_file': ''}, 'params_file:= is empty'),
    ({'rviz': 'maybe'}, 'is not true or false'),
    ({'use_sim_time': 'yes please'}, 'is not true or false'),
    ({'camera_device': '/dev/video0'}, 'not a camera index'),
    ({'source': 'camera:x'}, 'expected camera:<index>'),
    ({'source': '/nonexistent/session.mp4'}, 'no such video file'),
])
def test_wrong_launch_arguments_are_refused_before_any_node_starts(changes, words):
    with pytest.raises(LaunchArgumentError, match=words):
        plan(**changes)


def test_an_invalid_parameter_file_is_refused_as_bringup_refuses_it(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('/**/symmetry_scorer:\n  ros__parameters:\n    symmetry_lambdaa: 3.8\n')
    with pytest.raises(LaunchArgumentError, match='symmetry_lambdaa'):
        plan(params_file=str(bad))


def test_rviz_needs_rviz2_installed():
    with pytest.raises(LaunchArgumentError, match='rviz2 is not installed'):
        graph_plan(**{**ARGS, 'params_file': str(default_params_file()), 'rviz': 'true'},
                   installed=lambda package: False)
    with_rviz = graph_plan(**{**ARGS, 'params_file': str(default_params_file()), 'rviz': 'true'},
                           installed=lambda package: package == 'rviz2')
    assert with_rviz.rviz_config is not None and with_rviz.rviz_config.name == 'facesym.rviz'


# -- the real launch ----------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def ros_launch() -> LaunchEnv:
    try:
        return launch_env()
    except LaunchUnavailableError as reason:
        pytest.skip(f'real-launch tests: {reason}')


class Launched:
    """A launch process (ros2 launch or LaunchService), its output in a file."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open('w')
        self.process = subprocess.Popen(command, env=env, cwd=TEST_DIR, stdout=self._out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self.nodes: set[int] = set()

    def output(self) -> str:
        return self.log.read_text()

    def watch(self) -> set[int]:
        """The node processes seen so far (children of the launch process)."""
        self.nodes |= children(self.process.pid)
        return self.nodes

    def stop(self, sig: signal.Signals, timeout: float = 30.0) -> int:
        self.watch()
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for pid in alive(self.nodes):  # never leave a node behind, whatever the test found
            os.kill(pid, signal.SIGKILL)
        self._out.close()


@pytest.fixture
def launch(ros_launch, tmp_path):
    started: list[Launched] = []

    def start(*arguments: str, service: bool = False, push_namespace: str = '') -> Launched:
        if service:
            command = [str(ros_launch.python), '-m', 'helpers.launch_service',
                       *(['--push-namespace', push_namespace] if push_namespace else []), *arguments]
        else:
            command = [*ros_launch.command('ros2'), 'launch', 'facesym_ros', 'facesym.launch.py', *arguments]
        env = {**ros_launch.env, **{key: os.environ[key] for key in ('ROS_DOMAIN_ID', 'ROS_HOME') if key in os.environ},
               'PYTHONPATH': str(TEST_DIR)}
        launched = Launched(command, env, tmp_path / f'launch-{len(started)}.log')
        started.append(launched)
        return launched

    yield start
    for launched in started:
        launched.close()


def edited_params(tmp_path: Path, **changes: str) -> Path:
    text = default_params_file().read_text()
    for name, value in changes.items():
        [line] = [line for line in text.splitlines() if line.strip().startswith(f'{name}:')]
        text = text.replace(line, f'{line.split(":")[0]}: {value}')
    path = tmp_path / 'rig.yaml'
    path.write_text(text)
    return path


def test_ros2_launch_in_a_namespace_scores_a_trial_and_sigint_leaves_no_process(launch, rclpy_context, tmp_path):
    from facesym_ros.ros.graph_client import GraphClient

    params = edited_params(tmp_path, loop='true', frame_rate='15.0', state_dir=repr(str(tmp_path / 'state')))
    launched = launch('source:=sample', f'params_file:={params}', 'namespace:=rig1')
    client = GraphClient(namespace='rig1', context=rclpy_context, name='launch_test_client')
    try:
        client.wait_for_graph([spec for spec in NODES if spec.name != SOURCE_NODE], timeout=90)
        nodes = {name for name, namespace in client.get_node_names_and_namespaces() if namespace == '/rig1'}
        assert nodes >= set(NODE_NAMES), nodes
        assert client.spin_until(lambda: len(client.motion_stamps) >= 3, 60), 'no frames reached the flow'
        trial = client.start_trial()
        assert client.spin_until(lambda: client.trial_frames_seen() >= 21, 60), launched.output()[-3000:]
        client.stop_trial(stamp_ns=max(client.motion_stamps))
        final = client.wait_for_final(trial, timeout=60)
        # a loaded machine may drop a few frames, which the score flags; it must still be a score
        assert final.frame_count >= 12, final.quality_notes
        assert all(region.symmetry == region.symmetry for region in final.regions), final.quality_notes
        assert len(launched.watch()) == len(NODE_NAMES)
    finally:
        client.close()
    code = launched.stop(signal.SIGINT)
    assert wait_gone(launched.nodes) == set(), launched.output()[-3000:]
    output = launched.output()
    assert code == 0, output[-3000:]
    assert 'deprecat' not in output.lower(), [line for line in output.splitlines() if 'eprecat' in line]


def test_launch_service_under_push_ros_namespace_and_sigterm_leaves_no_process(launch, rclpy_context):
    """As a rig's own launch file includes it: in a GroupAction with PushRosNamespace. SIGTERM (systemd's and
    docker's stop) ends launch, and every node dies with it."""
    from facesym_ros.ros.graph_client import GraphClient

    launched = launch('source:=sample', service=True, push_namespace='rig2')
    client = GraphClient(namespace='rig2', context=rclpy_context, name='launch_test_client_2')
    try:
        client.wait_for_graph([spec for spec in NODES if spec.name != SOURCE_NODE], timeout=90)
        nodes = {name for name, namespace in client.get_node_names_and_namespaces() if namespace == '/rig2'}
        assert nodes >= set(NODE_NAMES), nodes
        assert client.spin_until(lambda: len(launched.watch()) == len(NODE_NAMES), 30)
    finally:
        client.close()
    launched.stop(signal.SIGTERM)
    assert wait_gone(launched.nodes) == set(), launched.output()[-3000:]


def test_by_default_the_camera_is_opened_and_a_node_that_keeps_dying_stops_the_launch(launch):
    """No argument: image_source opens the rig's camera 0. There is none here, so it dies at every start;
    launch restarts it respawn_limit times, then shuts the whole graph down (a supervisor restarts it)."""
    if Path('/dev/video0').exists():
        pytest.skip('this machine has a camera 0: the default source would open it')
    launched = launch()
    code = launched.process.wait(180)
    launched.watch()
    output = launched.output()
    launched.close()
    retries = RespawnSettings().respawn_limit
    assert output.count(f'[INFO] [{SOURCE_NODE}-1]: process started') == retries + 1, output[-3000:]
    assert 'camera 0 cannot be opened' in output
    assert f'{SOURCE_NODE} died {retries + 1} times; not restarting it again' in output
    assert code == 0, output[-3000:]
    started = {int(pid) for pid in re.findall(r'process started with pid \[(\d+)\]', output)}
    assert len(started) >= len(NODE_NAMES) and wait_gone(started) == set()


@pytest.mark.parametrize(('arguments', 'words'), [
    (['params_file:=/nonexistent/rig.yaml'], 'cannot read the parameter file'),
    (['source:=sample', 'rviz:=true'], 'rviz2 is not installed'),
])
def test_ros2_launch_refuses_a_missing_parameter_file_and_rviz_without_rviz2_before_starting_anything(
        launch, arguments, words):
    if 'rviz:=true' in arguments and shutil.which('rviz2'):
        pytest.skip('rviz2 is installed here')
    launched = launch(*arguments)
    code = launched.process.wait(60)
    output = launched.output()
    launched.close()
    assert code != 0, output
    assert words in output and 'nothing was started' in output, output
    assert 'process started' not in output, output


def test_ros2_run_starts_an_executable_from_the_pip_only_venv(ros_launch):
    result = subprocess.run([*ros_launch.command('ros2'), 'run', 'facesym_ros', 'facesym', '--help'],
                            env=ros_launch.env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert 'bringup' in result.stdout

