"""Process faults under `facesym bringup`, as real processes over real DDS: a node killed during a trial comes
back, the trial is kept (continued, or closed with a score that says what happened), the next trial scores
exactly; nodes die with bringup; a second graph in a namespace is refused."""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from test_scoring import motion

from facesym_ros.config.files import SAMPLE_VIDEO, default_params_file
from facesym_ros.config.params import load_params_file, pipeline_config
from facesym_ros.config.registry import NODE_NAMES, NODES, SOURCE_NODE, camera_subscribers, node
from facesym_ros.core.pipeline import score_sequence
from facesym_ros.core.scoring import QualityFlag
from facesym_ros.core.video import FrameSource
from facesym_ros.msg import RegionMotion, SymmetryScore, TrialEvent
from facesym_ros.ros.bringup import ORPHAN_EXIT_SECONDS, PARENT_POLL_SECONDS
from facesym_ros.ros.conversions import motion_to_msg, msg_to_score, ns_to_stamp, stamp_to_ns
from facesym_ros.ros.graph_client import GraphClient
from facesym_ros.ros.node_base import image_qos, pipeline_qos

ROOT = Path(__file__).resolve().parents[1]
FRAME_RATE = 15.0
KILL_RATE = 30.0
"""The camera rate of the test that kills each node in turn: a camera's, and each pass of the sample 2.4 s."""
BACK_WITHIN = 5.0
"""A killed node must be back (answering on the ROS graph) this many seconds after the kill."""
WORKING_WITHIN = 15.0
"""... and its output must flow again (frames stamped after its restart) within this many seconds after that:
discovery and matching of its topics take 1 to 5 s on a busy 2-core machine."""


# -- processes ------------------------------------------------------------------------------------------------------

def children(parent: int) -> dict[str, int]:
    """Node name -> pid of the node processes whose parent is `parent`."""
    found = {}
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / 'stat').read_text()
            command = (entry / 'cmdline').read_bytes().split(b'\0')
        except OSError:
            continue
        ppid = int(stat.rsplit(')', 1)[1].split()[1])
        if ppid != parent or b'-m' not in command:
            continue
        module = command[command.index(b'-m') + 1].decode()
        if module.startswith('facesym_ros.nodes.'):
            found[module.rsplit('.', 1)[1]] = int(entry.name)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except OSError:
        return False
    return state != 'Z'


def bringup(tmp_path: Path, log_name: str, *args: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / log_name
    env = {**os.environ, 'ROS_HOME': str(tmp_path / 'ros_home')}
    process = subprocess.Popen([sys.executable, '-m', 'facesym_ros.cli', 'bringup', *args],
                               stdout=log.open('w'), stderr=subprocess.STDOUT, env=env)
    return process, log


def wait_for(condition, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


OUTPUT_OF = {'symmetry_scorer': 'score_running', 'annotator': 'annotated'}
"""What shows that a killed node works again; the nodes of the scoring chain: region_motion flowing."""
OUTPUTS = ('region_motion', 'score_running', 'annotated')


# -- a client that also times the outputs of each node --------------------------------------------------------------

class FaultClient(GraphClient):
    """GraphClient that notes when each node's output last arrived, and sets image_source parameters."""

    def __init__(self, context) -> None:
        super().__init__(name='fault_client', context=context)
        self.arrivals: dict[str, list[tuple[float, int]]] = {topic: [] for topic in OUTPUTS}
        """(monotonic time of arrival, header stamp) of every message of each node's output."""
        for msg_type, topic, qos in ((RegionMotion, 'region_motion', pipeline_qos(200)),
                                     (SymmetryScore, 'score_running', pipeline_qos(50)),
                                     (Image, 'annotated', image_qos(5))):
            self.create_subscription(msg_type, topic, lambda msg, topic=topic: self.arrivals[topic].append(
                (time.monotonic(), stamp_to_ns(msg.header.stamp))), qos)
        self._parameters = {name: AsyncParameterClient(self, name) for name in NODE_NAMES}
        self._source_parameters = self._parameters[SOURCE_NODE]

    def answers(self, name: str, timeout: float) -> float | None:
        """When node `name` answered a parameter request, asked every 0.5 s (a request that went only to the
        ghost of a killed node is never answered)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            future = self._parameters[name].list_parameters([], 1)
            if self.spin_until(future.done, 0.5):
                return time.monotonic()
        return None

    def set_source(self, **values) -> None:
        """Set image_source parameters; any change opens its source again, from the first frame."""
        # A node killed outright stays in discovery for a while (Fast DDS's lease): a request sent before the
        # restarted node's service is matched goes to that ghost only and is never answered, so ask again.
        for _ in range(6):
            assert self.spin_until(self._source_parameters.services_are_ready, 20.0), 'image_source has no service'
            future = self._source_parameters.set_parameters([Parameter(k, value=v) for k, v in values.items()])
            if self.spin_until(future.done, 3.0):
                assert all(result.successful for result in future.result().results), future.result()
                return
        raise AssertionError('image_source did not answer')

    def output_after(self, topic: str, stamp_ns: int, timeout: float) -> float | None:
        """When the first `topic` message of a frame stamped after `stamp_ns` arrived: a frame that no process
        killed before then can have handled."""
        def later():
            return next((arrival for arrival, stamp in self.arrivals[topic] if stamp > stamp_ns), None)

        self.spin_until(lambda: later() is not None, timeout)
        return later()

    def wait_idle(self, quiet: float = 1.5, timeout: float = 60.0) -> None:
        """Until no region_motion came for `quiet` seconds: the source has finished."""
        def idle():
            arrivals = self.arrivals['region_motion']
            return not arrivals or time.monotonic() - arrivals[-1][0] > quiet

        assert self.spin_until(idle, timeout), 'the source never finished'




@pytest.fixture(scope='module')
def offline_sample():
    return score_sequence(FrameSource.open(SAMPLE_VIDEO).frames(), pipeline_config(load_params_file()))


def test_each_node_killed_during_a_trial_comes_back_and_nothing_is_lost(rclpy_context, tmp_path, offline_sample):
    process, log = bringup(tmp_path, 'bringup.log', '--source', 'sample', '--frame-rate', str(KILL_RATE))
    client = FaultClient(rclpy_context)
    report = []
    try:
        client.wait_for_graph(NODES, timeout=60.0)
        pids = children(process.pid)
        assert set(pids) == set(NODE_NAMES), pids
        seen_ids = []
        for name in NODE_NAMES:
            client.wait_idle()
            # trial 1: the sample looping; the node is killed in its middle
            first = client.start_trial()
            client.set_source(loop=True, source=str(SAMPLE_VIDEO))
            assert client.output_after('region_motion', time.time_ns() + 1_000_000_000, 20.0), 'no frames'
            killed_at = time.monotonic()
            old_pid = pids[name]
            os.kill(old_pid, signal.SIGKILL)
            assert wait_for(lambda name=name, old_pid=old_pid: children(process.pid).get(name, old_pid) != old_pid,
                            BACK_WITHIN)
            respawned_ns = time.time_ns()  # the clock the nodes stamp frames with (image_source: when due)
            pids = children(process.pid)
            back_at = client.answers(name, BACK_WITHIN)
            assert back_at is not None and back_at - killed_at <= BACK_WITHIN, f'{name} not back in time'
            if name == SOURCE_NODE:  # a new process starts from the parameter file: one pass of 2.4 s, not the loop
                client.set_source(loop=True, source=str(SAMPLE_VIDEO))  # (its first frames may reach no one)
            working_at = client.output_after(OUTPUT_OF.get(name, 'region_motion'), respawned_ns, WORKING_WITHIN)
            assert working_at is not None, f'{name}: no output {WORKING_WITHIN} s after it was back'
            client.spin_until(lambda: False, 1.0)
            client.set_source(loop=False)  # one more pass of the sample, then the source ends
            client.wait_idle()
            assert client.stop_trial() == first
            interrupted = client.wait_for_final(first, timeout=15.0)
            notes = list(interrupted.quality_notes)
            if name != 'annotator':  # the annotator feeds no score: the trial does not notice
                assert interrupted.quality_flags & SymmetryScore.FLAG_DROPPED_FRAMES or \
                    any('restarted' in note for note in notes), (name, notes)
            if name == 'symmetry_scorer':
                assert any('the scorer restarted during this trial' in note for note in notes), notes

            # trial 2: over the whole sample, started before the source: equal to the offline score
            client.wait_idle()
            second = client.start_trial()
            client.set_source(source=str(SAMPLE_VIDEO))
            assert client.wait_for_frames(72, timeout=60.0) == 72
            client.wait_idle(quiet=1.0)
            client.stop_trial(stamp_ns=max(client.motion_stamps))  # at the source's last frame: nothing after it
            live = msg_to_score(client.wait_for_final(second, timeout=15.0))
            assert live.frame_count == offline_sample.frame_count == 72, name
            assert live.flow_pair_count == offline_sample.flow_pair_count
            for ours, theirs in zip(live.regions, offline_sample.regions, strict=True):
                assert ours.vs_left == pytest.approx(theirs.vs_left, abs=1e-6), (name, ours, theirs)
                assert ours.vs_right == pytest.approx(theirs.vs_right, abs=1e-6), (name, ours, theirs)
                assert ours.symmetry == pytest.approx(theirs.symmetry, abs=1e-6), (name, ours, theirs)
            assert live.quality.flags == QualityFlag.LOW_MOTION, (name, live.quality.notes)  # still forehead
            seen_ids += [first, second]
            report.append(f'{name}: back after {back_at - killed_at:.2f} s, output again after '
                          f'{working_at - killed_at:.2f} s; interrupted trial: '
                          f'{interrupted.frame_count} frames, flags {interrupted.quality_flags}, notes {notes}')
        assert len(set(seen_ids)) == len(seen_ids)  # no id repeated, the scorer's restart included
        assert process.poll() is None
        text = log.read_text()
        for name in NODE_NAMES:
            assert f'{name} (pid ' in text and f'restarted {name} (pid' in text
        print('\n'.join(report))
    finally:
        stop(process)
        client.close()
    assert wait_for(lambda: not any(alive(pid) for pid in pids.values()), 15.0)


def test_nodes_die_with_bringup_and_a_second_graph_is_refused(rclpy_context, tmp_path):
    first, first_log = bringup(tmp_path, 'first.log', '--source', 'sample', '--frame-rate', str(FRAME_RATE))
    started = [first]
    client = GraphClient(context=rclpy_context, name='orphan_client')
    try:
        client.wait_for_graph(NODES, timeout=60.0)
        nodes = children(first.pid)
        assert set(nodes) == set(NODE_NAMES)

        second, second_log = bringup(tmp_path, 'second.log', '--source', 'sample')
        started.append(second)
        assert second.wait(60) == 2
        [line] = second_log.read_text().strip().splitlines()
        assert "a facesym graph already runs in namespace '/'" in line and 'answered' in line
        assert all(alive(pid) for pid in nodes.values())  # the running graph is untouched

        first.kill()  # SIGKILL: bringup gets no chance to stop its nodes
        first.wait()
        killed_at = time.monotonic()
        assert wait_for(lambda: not any(alive(pid) for pid in nodes.values()), ORPHAN_EXIT_SECONDS + 5.0), \
            ({name: pid for name, pid in nodes.items() if alive(pid)}, first_log.read_text()[-3000:])
        print(f'nodes gone {time.monotonic() - killed_at:.2f} s after bringup was killed')
        if 'Timeout (' in first_log.read_text():  # a node's shutdown hung and ORPHAN_EXIT_SECONDS ended it
            print(first_log.read_text()[-3000:])

        # the graph is gone, so another may start; SIGHUP (the terminal closed) stops it and its nodes
        third, third_log = bringup(tmp_path, 'third.log', '--source', 'sample', '--frame-rate', str(FRAME_RATE))
        started.append(third)
        assert wait_for(lambda: set(children(third.pid)) == set(NODE_NAMES), 30.0), third_log.read_text()
        client.wait_for_graph(NODES, timeout=60.0)
        nodes = children(third.pid)
        third.send_signal(signal.SIGHUP)
        assert third.wait(30) == 0
        assert not any(alive(pid) for pid in nodes.values())
    finally:
        for process in started:  # a graph this test started must not outlive it and answer the next tests
            stop(process)
        client.close()


STUCK_NODE = '''
import signal, time
from facesym_ros.ros.bringup import die_with_parent
die_with_parent()
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a node whose shutdown hangs: its parent's death does not end it
print('up', flush=True)
time.sleep(600)
'''
NODE_STARTER = '''
import os, subprocess, sys, time
from facesym_ros.ros.bringup import PARENT_VARIABLE
node = subprocess.Popen([sys.executable, '-c', sys.argv[1]], stderr=open(sys.argv[2], 'w'),
                        env={**os.environ, PARENT_VARIABLE: str(os.getpid())})
print(node.pid, flush=True)
time.sleep(600)
'''


def test_an_orphaned_node_whose_shutdown_hangs_exits_anyway_and_prints_its_stack(tmp_path):
    """Nobody escalates to SIGKILL once bringup is gone: the node itself must end, and say where it hung."""
    log = tmp_path / 'node.log'
    starter = subprocess.Popen([sys.executable, '-c', NODE_STARTER, STUCK_NODE, str(log)],
                               stdout=subprocess.PIPE, text=True, cwd=ROOT)
    node = int(starter.stdout.readline())
    try:
        assert starter.stdout.readline().strip() == 'up'
        time.sleep(2 * PARENT_POLL_SECONDS)
        assert alive(node)  # the node stays while its starter lives
        starter.kill()
        starter.wait()
        killed_at = time.monotonic()
        assert wait_for(lambda: not alive(node), ORPHAN_EXIT_SECONDS + 5.0), log.read_text()
        took = time.monotonic() - killed_at
        text = log.read_text()
        assert 'Timeout (' in text and 'line 7 in <module>' in text, text  # where it hung: the sleep
        assert took >= ORPHAN_EXIT_SECONDS - 0.5, took  # a grace to shut down cleanly first
        print(f'the stuck node ended {took:.2f} s after its starter was killed')
    finally:
        if alive(node):
            os.kill(node, signal.SIGKILL)
        starter.stdout.close()


def test_a_node_that_keeps_dying_is_restarted_with_backoff_then_given_up(tmp_path):
    """A landmark model that does not load: the node exits at every start."""
    params = tmp_path / 'broken_model.yaml'
    params.write_text(default_params_file().read_text().replace("model_path: ''", "model_path: /etc/hostname"))
    process, log = bringup(tmp_path, 'bringup.log', '--nodes', 'landmark_detector', '--params-file', str(params))
    assert process.wait(90) == 1
    lines = [line for line in log.read_text().splitlines() if line.startswith('facesym bringup:')]
    delays = [float(re.search(r'restarting it in ([\d.]+) s', line).group(1)) for line in lines
              if 'restarting it in' in line]
    assert delays == [0.25, 0.5, 1.0, 2.0]  # doubling with every death within the window
    assert lines[-1] == ('facesym bringup: landmark_detector died with status 1, 5 times within 60 s; not restarting '
                         'it again; stopping the graph')
    assert '/etc/hostname is not a dlib shape predictor model' in log.read_text()  # the node said why


def test_a_trial_whose_face_detector_died_says_how_much_of_it_its_frames_cover(live_graph):
    """face_detector killed during a trial and not back before the stop: the score says that its frames end early,
    with the seconds they cover, not only the frames missing between the ones that came."""
    names = [name for name in NODE_NAMES if name != 'annotator']
    source = {'source': 'sample', 'loop': 'true', 'frame_rate': str(FRAME_RATE),
              'wait_for_subscribers': str(camera_subscribers([node(n) for n in names]))}
    graph, client = live_graph(names=names, overrides={SOURCE_NODE: source})
    chain = [spec for spec in graph.specs if spec.name != SOURCE_NODE]
    graph.start([spec.name for spec in chain])
    client.wait_for_graph(chain)
    graph.start([SOURCE_NODE])
    assert client.spin_until(lambda: len(client.motion_stamps) >= 5, 60.0), 'no frames'
    trial = client.start_trial()
    assert client.spin_until(lambda: client.trial_frames_seen() >= 15, 30.0)  # over a second of the trial
    detector = graph.processes.pop('face_detector')
    detector.kill()
    detector.wait()
    client.spin_until(lambda: False, 3.0)
    client.stop_trial()
    final = client.wait_for_final(trial, timeout=30.0)
    start, stop = (stamp_to_ns(next(e for e in client.trial_events if e.trial_id == trial and e.event == kind)
                               .header.stamp) for kind in (TrialEvent.START, TrialEvent.STOP))
    first, last = stamp_to_ns(final.first_stamp), stamp_to_ns(final.last_stamp)
    assert stop - last > 2.5e9  # the frames end at the kill, 3 s before the stop
    assert final.quality_flags & SymmetryScore.FLAG_INCOMPLETE
    assert (f'incomplete: frames cover {(last - first) / 1e9:.1f} s of the trial\'s {(stop - start) / 1e9:.1f} s '
            f'(none after {(last - start) / 1e9:.1f} s)') in final.quality_notes, list(final.quality_notes)
    print(f'flags {final.quality_flags}, notes {list(final.quality_notes)}')


def test_a_trial_left_open_too_long_is_closed_with_a_partial_score(live_graph, tmp_path):
    overrides = {'symmetry_scorer': {'resume_within': '1.0', 'state_dir': str(tmp_path / 'state'),
                                     'state_period': '0.2'}}
    graph, client = live_graph(names=['symmetry_scorer'], overrides=overrides)
    graph.start()
    publisher = client.create_publisher(RegionMotion, 'region_motion', pipeline_qos(50))
    assert client.spin_until(lambda: client.graph_connected({'region_motion': 1}), 30.0)
    trial = client.start_trial()
    start_ns = client.get_clock().now().nanoseconds
    for index in range(10):
        stamp = start_ns + index * 33_000_000
        frame = motion(stamp, {('cheek', 'left'): 10.0 + index, ('cheek', 'right'): 2.0})
        publisher.publish(motion_to_msg(frame, Header(stamp=ns_to_stamp(stamp), frame_id='camera')))
    client.spin_until(lambda: False, 1.0)  # the state is saved every 0.2 s
    graph.processes['symmetry_scorer'].kill()
    graph.processes['symmetry_scorer'].wait()
    time.sleep(1.5)  # longer than resume_within
    del graph.processes['symmetry_scorer']
    graph.start(['symmetry_scorer'])
    partial = client.wait_for_final(trial, timeout=30.0)
    assert partial.frame_count == 10
    assert any('partial score' in note for note in partial.quality_notes), list(partial.quality_notes)
    assert not any(r.symmetry != r.symmetry for r in partial.regions)  # scored, not NaN
    # and the restarted scorer is free for the next trial
    assert client.start_trial() != trial


def test_the_launch_file_respawns_every_node():
    """ROS launch is not installed here: the launch file's Node actions are read, not run."""
    tree = ast.parse((ROOT / 'launch' / 'facesym.launch.py').read_text())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == 'Node'
             and any(k.arg == 'executable' and isinstance(k.value, ast.Attribute) for k in node.keywords)]
    assert len(calls) == 1  # the one Node() in the loop over the registry
    keywords = {k.arg: k.value for k in calls[0].keywords}
    assert isinstance(keywords['respawn'], ast.Constant) and keywords['respawn'].value is True
    assert ast.unparse(keywords['respawn_delay']) == 'respawn.respawn_delay'


# -- 9. a clean shutdown ----------------------------------------------------------------------------------------------

SHUTDOWN_NOISE = re.compile(r'FATAL|Traceback')


def looping_params(tmp_path: Path) -> Path:
    """The default parameter file with a source that never ends: frames are always in flight."""
    params = tmp_path / 'looping.yaml'
    text = default_params_file().read_text()
    assert '    loop: false' in text
    params.write_text(text.replace('    loop: false', '    loop: true'))
    return params


@pytest.mark.parametrize(('sig', 'frames'), [(signal.SIGINT, 1), (signal.SIGTERM, 10), (signal.SIGINT, 40)])
def test_bringup_stopped_with_frames_in_flight_exits_0_without_fatal_or_stack(rclpy_context, tmp_path, sig, frames):
    """Ctrl-C or SIGTERM of bringup, at the first frame through the chain or later: every node stops quietly."""
    process, log = bringup(tmp_path, 'bringup.log', '--source', 'sample',
                           '--params-file', str(looping_params(tmp_path)))
    client = GraphClient(context=rclpy_context, name='shutdown_client')
    try:
        assert client.spin_until(lambda: len(client.motion_stamps) >= frames, 90.0), log.read_text()
        process.send_signal(sig)
        assert process.wait(30) == 0, log.read_text()
    finally:
        stop(process)
        client.close()
    output = log.read_text()
    assert 'started image_source' in output
    assert not [line for line in output.splitlines() if SHUTDOWN_NOISE.search(line)], output


def test_each_node_stopped_with_frames_in_flight_exits_0_without_fatal_or_stack(live_graph, tmp_path):
    """SIGINT or SIGTERM sent to one node at a time, downstream first, while the source still sends frames."""
    graph, client = live_graph(params_file=looping_params(tmp_path))
    graph.start()
    order = [name for name in reversed(NODE_NAMES) if name != SOURCE_NODE] + [SOURCE_NODE]
    assert client.spin_until(lambda: len(client.motion_stamps) >= 5, 90.0), 'no frame came through the chain'
    for index, name in enumerate(order):
        process = graph.processes[name]
        process.send_signal(signal.SIGINT if index % 2 == 0 else signal.SIGTERM)
        assert process.wait(30) == 0, name
        client.spin_until(lambda: False, 0.2)  # the next node gets frames (or a peer gone) in the meantime
    graph.output.flush()
    output = Path(graph.output.name).read_text()
    assert not [line for line in output.splitlines() if SHUTDOWN_NOISE.search(line)], output


def test_a_scorer_restarted_on_a_trial_that_was_only_scheduled_starts_and_closes_it(live_graph, tmp_path):
    """Ctrl-C between a trial's START and its first frame, then the scorer stopped: its state holds a START and
    its STOP, no trial open. The next scorer (a next session's, within resume_within) must start, say what it
    takes up and close that trial, flagged. It once raised on its log line and died at every restart."""
    from facesym_ros.core.scoring import ScoringSettings
    from facesym_ros.core.trials import TrialController, TrialEventKind, TrialMark, TrialScorer, TrialStateFile

    controller = TrialController(TrialScorer(ScoringSettings()))
    now = time.time_ns()
    controller.command(TrialMark(now + 10**9, TrialEventKind.START, 'rest-only-scheduled'))
    controller.command(TrialMark(now + 2 * 10**9, TrialEventKind.STOP, 'rest-only-scheduled'))
    assert controller.open_trial is None and controller.scorer.trial is None and not controller.idle
    state = tmp_path / 'state-0'  # the live_graph fixture's state_dir of its first graph
    TrialStateFile(state / f'symmetry_scorer.domain{os.environ["ROS_DOMAIN_ID"]}.json').save(controller,
                                                                                           frame_id='camera')
    graph, client = live_graph(names=['symmetry_scorer'], overrides={'symmetry_scorer': {'final_timeout': '2.0'}})
    graph.start()
    client.wait_for_graph(graph.specs)
    final = client.wait_for_final('rest-only-scheduled', timeout=30.0)
    assert final.frame_count == 0 and final.quality_flags & SymmetryScore.FLAG_INCOMPLETE, final
    assert graph.exited() is None, 'the scorer died'
    log = (tmp_path / 'graph-0.log').read_text()
    assert 'continuing trial rest-only-scheduled after a restart' in log, log[-3000:]
    assert 'Traceback' not in log, log[-3000:]
