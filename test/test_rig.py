"""Fitting a real ROS 2 rig, over real DDS: namespaces, sim time from a replayed bag, a camera driver's frames,
and a graph split over two hosts (network namespaces)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facesym_ros.bag.storage import write_image_bag
from facesym_ros.config.files import FASTDDS_PROFILE_VARIABLE, SAMPLE_VIDEO, default_params_file
from facesym_ros.config.params import load_params_file, pipeline_config, render_params_yaml
from facesym_ros.config.registry import NODES, camera_subscribers, node
from facesym_ros.core.pipeline import score_sequence
from facesym_ros.core.scoring import QualityFlag
from facesym_ros.core.timebase import NS_PER_SECOND
from facesym_ros.core.video import FrameSource
from facesym_ros.msg import FaceDetections, TrialEvent
from facesym_ros.ros.bringup import GraphOptions
from facesym_ros.ros.conversions import msg_to_score, stamp_to_ns
from facesym_ros.ros.graph_client import run_source_trial
from facesym_ros.ros.node_base import pipeline_qos
from helpers.cli import facesym

TEST_DIR = Path(__file__).resolve().parent
SOURCE = {'source': 'sample', 'wait_for_subscribers': str(camera_subscribers(NODES)), 'frame_rate': '15.0'}
SCORING = ['face_detector', 'landmark_detector', 'optical_flow', 'symmetry_scorer']




def edited_params(tmp_path: Path, **changes: str) -> Path:
    """config/facesym.yaml with some `name: value` lines changed (each name must occur once)."""
    text = default_params_file().read_text()
    for name, value in changes.items():
        [line] = [line for line in text.splitlines() if line.strip().startswith(f'{name}:')]
        text = text.replace(line, f'{line.split(":")[0]}: {value}')
    path = tmp_path / 'edited.yaml'
    path.write_text(text)
    return path


def assert_same_scores(live, offline) -> None:
    assert live.frame_count == offline.frame_count
    for ours, theirs in zip(live.regions, offline.regions, strict=True):
        assert ours.region == theirs.region
        assert ours.vs_left == pytest.approx(theirs.vs_left, abs=1e-6)
        assert ours.vs_right == pytest.approx(theirs.vs_right, abs=1e-6)
        assert ours.symmetry == pytest.approx(theirs.symmetry, abs=1e-6)


# -- 1. namespaces ------------------------------------------------------------------------------------------------

def test_the_parameter_file_names_nodes_in_any_namespace_and_both_key_forms_load(tmp_path):
    generated = render_params_yaml()
    assert '\n/**/symmetry_scorer:\n' in generated and '\nsymmetry_scorer:\n' not in generated
    bare = tmp_path / 'bare.yaml'
    bare.write_text('symmetry_scorer:\n  ros__parameters:\n    symmetry_lambda: 4.5\n    use_sim_time: true\n'
                    '/**:\n  ros__parameters:\n    use_sim_time: true\n'
                    '/rig1/optical_flow:\n  ros__parameters:\n    mirrored: true\n')
    params = load_params_file(bare)
    assert params['symmetry_scorer']['symmetry_lambda'] == 4.5 and params['optical_flow']['mirrored'] is True
    assert all('use_sim_time' not in values for values in params.values())  # a ROS parameter, not a setting
    twice = tmp_path / 'twice.yaml'
    twice.write_text('symmetry_scorer:\n  ros__parameters: {symmetry_lambda: 4.5}\n'
                     '/**/symmetry_scorer:\n  ros__parameters: {symmetry_lambda: 4.0}\n')
    with pytest.raises(ValueError, match='given twice'):
        load_params_file(twice)
    unknown = tmp_path / 'unknown.yaml'
    unknown.write_text('/**:\n  ros__parameters: {use_sim_tme: true}\n')
    with pytest.raises(ValueError, match='use_sim_tme'):
        load_params_file(unknown)


def test_a_namespaced_graph_applies_an_edited_parameter_file(live_graph, tmp_path):
    params_file = edited_params(tmp_path, symmetry_lambda='4.5', mirrored='true')
    graph, client = live_graph(overrides={'image_source': {**SOURCE, 'max_frames': '24'}}, params_file=params_file,
                               options=GraphOptions(namespace='rig1'))
    final = run_source_trial(graph, client, expected_frames=24)
    nodes = client.get_node_names_and_namespaces()
    assert {name for name, namespace in nodes if namespace == '/rig1'} >= {spec.name for spec in graph.specs}
    assert final.symmetry_lambda == 4.5  # the edited file reached the nodes in /rig1
    assert '"mirrored": true' in final.method and '"mirrored": false' not in final.method
    frames = list(FrameSource.open(SAMPLE_VIDEO).frames())[:24]
    offline = score_sequence(iter(frames), pipeline_config(load_params_file(params_file)))
    assert_same_scores(msg_to_score(final), offline)


# -- 2. sim time --------------------------------------------------------------------------------------------------

def test_service_trials_in_a_replay_on_sim_time_equal_score_bag_of_the_same_span(live_graph, tmp_path):
    """The bag's log times are 5 s after the image stamps: the scorer's clock (/clock) is 5 s ahead of the frames.

    Played lock-step (--step), so that a slow machine drops no frame; /clock follows the messages' log times.
    """
    bag = tmp_path / 'session'
    first_stamp = 1_700_000_000 * NS_PER_SECOND
    images = [image for _, image in FrameSource.open(SAMPLE_VIDEO).images()]
    write_image_bag(bag, images, 30.0, start_ns=first_stamp, log_delay_ns=5 * NS_PER_SECOND)
    graph, client = live_graph(names=SCORING, options=GraphOptions(use_sim_time=True))
    graph.start()
    client.wait_for_graph(graph.specs)
    player = subprocess.Popen([sys.executable, '-m', 'facesym_ros.cli', 'play', str(bag), '--clock', '--step'],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert client.spin_until(lambda: len(client.motion_stamps) >= 15, 60), 'the replay did not reach the graph'
        trial = client.start_trial()
        assert client.spin_until(lambda: client.trial_frames_seen() >= 22, 30)
        client.stop_trial()
        final = client.wait_for_final(trial)
        output, _ = player.communicate(timeout=60)
    finally:
        if player.poll() is None:
            player.kill()
    assert player.returncode == 0, output
    assert '/clock' in output
    start, stop = (stamp_to_ns(next(e for e in client.trial_events if e.trial_id == trial and e.event == kind)
                               .header.stamp) for kind in (TrialEvent.START, TrialEvent.STOP))
    # mapped onto the images' time base: inside the bag's stamps, not 5 s later (after every frame)
    assert first_stamp < start < stop < first_stamp + 72 * NS_PER_SECOND // 30
    live = msg_to_score(final)
    assert live.frame_count >= 20

    span = f'{(start - first_stamp) / 1e9:.9f}:{(stop - first_stamp) / 1e9:.9f}'
    out = tmp_path / 'score.json'
    result = facesym('score-bag', bag, '--trial', span, '--json', out, '--quiet')
    assert result.returncode == 0, result.stderr
    [offline] = json.loads(out.read_text())['trials']
    assert live.frame_count == offline['frames']
    for region in live.regions:
        theirs = offline['regions'][region.region]
        assert region.vs_left == pytest.approx(theirs['vs_left'], abs=1e-6)
        assert region.vs_right == pytest.approx(theirs['vs_right'], abs=1e-6)
        assert region.symmetry == pytest.approx(theirs['symmetry'], abs=1e-6)


CAMERA_BEHIND = 10 * NS_PER_SECOND


def test_service_trials_of_a_camera_10_s_behind_the_clock_hold_the_frames_between_the_calls(live_graph):
    """A camera that stamps with its own clock, 10 s behind the scorer's: start_trial and stop_trial 3 s apart
    give a trial of the frames published between the calls, not of frames published 10 s later. The camera
    publishes no camera_info: the scorer learns the offset through faces."""
    from rclpy.clock import Clock
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from facesym_ros.ros.conversions import bgr_to_image, ns_to_stamp
    from facesym_ros.ros.node_base import image_qos

    graph, client = live_graph(names=SCORING)
    graph.start()
    client.wait_for_graph(graph.specs)
    images = [image for _, image in FrameSource.open(SAMPLE_VIDEO).images()]
    camera = client.create_publisher(Image, 'image_raw', image_qos(5))
    clock = Clock()
    published: list[tuple[int, int]] = []  # (system time, stamp) of every frame

    def publish() -> None:
        now = clock.now().nanoseconds
        stamp = now - CAMERA_BEHIND
        camera.publish(bgr_to_image(images[len(published) % len(images)], Header(stamp=ns_to_stamp(stamp))))
        published.append((now, stamp))

    client.create_timer(1 / 15, publish)
    assert client.spin_until(lambda: len(client.motion_stamps) >= 10, 60), 'no frame came through the chain'
    start_call = clock.now().nanoseconds
    trial = client.start_trial()
    client.spin_until(lambda: False, 3.0)
    stop_call = clock.now().nanoseconds
    client.stop_trial()
    score = msg_to_score(client.wait_for_final(trial, timeout=60))
    between = [stamp for at, stamp in published if start_call <= at <= stop_call]
    assert score.frame_count >= len(between) // 2, (score.frame_count, len(between))
    # frames of the span of the calls (those in flight at the start call included), none published after the stop
    assert start_call - CAMERA_BEHIND - 2 * NS_PER_SECOND <= score.first_stamp_ns
    assert score.last_stamp_ns <= stop_call - CAMERA_BEHIND + NS_PER_SECOND // 2
    assert not score.quality.flags & QualityFlag.INCOMPLETE, score.quality.notes


# -- 3. a camera driver's frames ----------------------------------------------------------------------------------

@pytest.mark.parametrize('reliability', ['reliable', 'best_effort'])
def test_frames_of_a_driver_without_our_dds_profile_reach_the_nodes(live_graph, reliability):
    """A driver process with Fast DDS defaults publishes 640x480 at 30 fps on /camera/image_raw for 3 s."""
    frames = 90
    graph, client = live_graph(names=['face_detector'], options=GraphOptions(image_topic='/camera/image_raw'))
    graph.start()
    stamps: set[int] = set()
    client.create_subscription(FaceDetections, 'faces', lambda m: stamps.add(m.header.stamp.sec), pipeline_qos(100))
    assert client.spin_until(lambda: client.count_subscribers('/camera/image_raw') >= 1, 30)
    env = {key: value for key, value in os.environ.items() if key != FASTDDS_PROFILE_VARIABLE}
    driver = subprocess.Popen([sys.executable, '-m', 'helpers.camera_driver', '/camera/image_raw', str(frames),
                               '30', reliability], cwd=TEST_DIR, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        assert client.spin_until(lambda: driver.poll() is not None, 60), 'the driver did not finish'
        client.spin_until(lambda: len(stamps) >= frames, 3.0)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, driver.stdout.read()
    fraction = len(stamps) / frames
    print(f'{reliability} driver without a profile: {len(stamps)} of {frames} frames reached face_detector '
          f'({fraction:.0%})')
    assert fraction >= 0.95


# -- 4. two hosts -------------------------------------------------------------------------------------------------

UDP_ONLY_PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<profiles xmlns="http://www.eprosima.com">
  <transport_descriptors>
    <transport_descriptor>
      <transport_id>udp</transport_id>
      <type>UDPv4</type>
      <receiveBufferSize>8388608</receiveBufferSize>
      <sendBufferSize>8388608</sendBufferSize>
      <maxInitialPeersRange>32</maxInitialPeersRange>
    </transport_descriptor>
  </transport_descriptors>
  <participant profile_name="two_hosts" is_default_profile="true">
    <rtps>
      <userTransports><transport_id>udp</transport_id></userTransports>
      <useBuiltinTransports>false</useBuiltinTransports>
    </rtps>
  </participant>
</profiles>
"""


def ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(['ip', *args], capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def two_hosts():
    """Two network namespaces joined by a veth pair, 10.200.0.1 (rig PC) and 10.200.0.2 (scoring PC)."""
    if shutil.which('ip') is None or os.geteuid() != 0:
        pytest.skip('two-host test: needs root and iproute2 (ip netns) to make network namespaces')
    tag = f'{os.getpid() % 100000}'
    hosts = (f'fsrig{tag}', f'fsscore{tag}')
    made = ip('netns', 'add', hosts[0])
    if made.returncode != 0:
        pytest.skip(f'two-host test: cannot make network namespaces here: {made.stderr.strip()}')
    try:
        steps = [('netns', 'add', hosts[1]),
                 ('link', 'add', f'fsv{tag}a', 'netns', hosts[0], 'type', 'veth', 'peer', 'name', f'fsv{tag}b',
                  'netns', hosts[1])]
        for index, host in enumerate(hosts):
            veth = f'fsv{tag}{"ab"[index]}'
            steps += [('-n', host, 'link', 'set', 'lo', 'up'),
                      ('-n', host, 'addr', 'add', f'10.200.0.{index + 1}/24', 'dev', veth),
                      ('-n', host, 'link', 'set', veth, 'up'),
                      ('-n', host, 'route', 'add', '224.0.0.0/4', 'dev', veth)]  # DDS discovery multicast
        for step in steps:
            result = ip(*step)
            if result.returncode != 0:
                pytest.skip(f'two-host test: `ip {" ".join(step)}` failed: {result.stderr.strip()}')
        yield hosts
    finally:
        for host in hosts:
            ip('netns', 'del', host)


def test_a_graph_split_over_two_hosts_scores_as_offline(two_hosts, tmp_path):
    rig, scoring = two_hosts
    profile = tmp_path / 'udp_only.xml'
    profile.write_text(UDP_ONLY_PROFILE)
    params_file = edited_params(tmp_path, wait_for_subscribers=str(camera_subscribers([node('face_detector')])),
                                frame_rate='15.0')  # the rig's face_detector

    def env(peer: str) -> dict[str, str]:
        return {**os.environ, FASTDDS_PROFILE_VARIABLE: str(profile), 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'SUBNET',
                'ROS_STATIC_PEERS': peer}

    scorer = subprocess.Popen(['ip', 'netns', 'exec', scoring, sys.executable, '-m', 'helpers.scoring_host', '72'],
                              cwd=TEST_DIR, env=env('10.200.0.1'), stdout=subprocess.PIPE,
                              stderr=open(tmp_path / 'scoring.log', 'w'), text=True)  # noqa: SIM115
    def rig_bringup(nodes: str, log: str) -> subprocess.Popen:
        return subprocess.Popen(
            ['ip', 'netns', 'exec', rig, sys.executable, '-m', 'facesym_ros.cli', 'bringup', '--params-file',
             str(params_file), '--nodes', nodes, '--source', 'sample'],
            env=env('10.200.0.2'), stdout=subprocess.DEVNULL, stderr=open(tmp_path / log, 'w'))

    # The rig's face_detector first: the scoring host says READY once it sees its face_patch and faces (the
    # camera's frames go to face_detector alone, so the source cannot wait for the scoring host by itself).
    detector = rig_bringup('face_detector', 'rig-detector.log')
    source = None
    try:
        assert scorer.stdout.readline().strip() == 'READY', (tmp_path / 'scoring.log').read_text()[-3000:]
        source = rig_bringup('image_source', 'rig-source.log')
        output, _ = scorer.communicate(timeout=150)
    finally:
        for process in (source, detector, scorer):
            if process is not None and process.poll() is None:
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(15)
                if process.poll() is None:
                    process.kill()
    assert scorer.returncode == 0, (tmp_path / 'scoring.log').read_text()[-3000:]
    live = json.loads(output.strip().splitlines()[-1])
    offline = score_sequence(FrameSource.open(SAMPLE_VIDEO).frames(), pipeline_config(load_params_file()))
    assert live['frames'] == offline.frame_count == 72
    for region in offline.regions:
        vs_left, vs_right, symmetry = live['regions'][region.region]
        assert vs_left == pytest.approx(region.vs_left, abs=1e-6)
        assert vs_right == pytest.approx(region.vs_right, abs=1e-6)
        assert symmetry == pytest.approx(region.symmetry, abs=1e-6)


# -- 5. packaging -------------------------------------------------------------------------------------------------

def test_package_xml_names_the_runtime_dependencies_and_the_pip_only_ones_are_pinned():
    root = TEST_DIR.parent
    package = (root / 'package.xml').read_text()
    for key in ('rclpy', 'sensor_msgs', 'std_srvs', 'rosgraph_msgs', 'ament_index_python', 'rviz2', 'launch_ros',
                'python3-opencv', 'python3-numpy', 'python3-yaml', 'python3-tqdm'):
        assert f'<exec_depend>{key}</exec_depend>' in package, key
    assert '<test_depend>ament_cmake_pytest</test_depend>' in package
    pins = dict(line.split('==') for line in (root / 'constraints.txt').read_text().splitlines()
                if '==' in line and not line.startswith('#'))
    normal = {name.lower().replace('_', '-'): version for name, version in pins.items()}
    pip_only = [line for line in (root / 'requirements-pip-only.txt').read_text().splitlines()
                if '==' in line and not line.startswith('#')]
    assert len(pip_only) >= 5
    for line in pip_only:
        name, version = line.split('==')
        assert normal.get(name.lower()) == version, line


# -- a 1080p camera: two whole frames must fit the kernel's UDP receive buffer ---------------------------------------

@settings(max_examples=200, deadline=None)
@given(frame_bytes=st.integers(1, 200 * 2**20), limit=st.one_of(st.none(), st.integers(2**16, 64 * 2**20)))
def test_two_frames_over_rmem_max_are_named_with_a_limit_that_holds_them(frame_bytes, limit):
    """face_detector says (a log line, and `receive buffer` on /diagnostics) when two of its camera's frames
    cannot fit the receive buffer; the value it asks for holds two, and is at least the profile's 16 MiB."""
    from facesym_ros.config.files import PROFILE_RECEIVE_BUFFER, receive_buffer_warning

    text = receive_buffer_warning(frame_bytes, limit)
    assert bool(text) == (limit is not None and 2 * frame_bytes > limit)
    if text:
        wanted = int(text.split('to at least ')[1].split()[0])
        assert wanted >= max(2 * frame_bytes, PROFILE_RECEIVE_BUFFER)
        assert wanted < max(4 * frame_bytes, PROFILE_RECEIVE_BUFFER + 1)
        assert ('config/fastdds.xml' in text) == (wanted > PROFILE_RECEIVE_BUFFER)


def test_rmem_max_is_read_from_the_kernel_and_unknown_where_it_cannot_be(tmp_path):
    from facesym_ros.config.files import RMEM_MAX, receive_buffer_warning, udp_receive_limit

    (tmp_path / 'rmem_max').write_text('4194304\n')
    assert udp_receive_limit(tmp_path / 'rmem_max') == 4194304
    assert udp_receive_limit(tmp_path / 'missing') is None
    (tmp_path / 'junk').write_text('')
    assert udp_receive_limit(tmp_path / 'junk') is None
    assert receive_buffer_warning(1920 * 1080 * 3, 8388608).startswith('two camera frames of 5.9 MiB do not fit')
    assert receive_buffer_warning(1920 * 1080 * 3, 16777216) == ''
    assert 'fastdds.xml' in receive_buffer_warning(3840 * 2160 * 3, 16777216)
    if RMEM_MAX.exists():
        assert udp_receive_limit() == int(RMEM_MAX.read_text())
