"""The live ROS 2 graph over real DDS: equal to offline scoring, robust to bad input, strict parameters."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from facesym_ros.config.files import SAMPLE_VIDEO
from facesym_ros.config.params import load_params_file, pipeline_config
from facesym_ros.config.registry import NODES, camera_subscribers
from facesym_ros.core.flow import FlowSettings
from facesym_ros.core.pipeline import PipelineSettings, score_sequence
from facesym_ros.core.scoring import QualityFlag
from facesym_ros.core.video import FrameSource
from facesym_ros.msg import FaceDetections, SymmetryScore
from facesym_ros.ros.conversions import bgr_to_image, msg_to_score
from facesym_ros.ros.graph_client import run_source_trial
from facesym_ros.ros.node_base import image_qos, pipeline_qos
from helpers.ros import spin_call

SOURCE = {'wait_for_subscribers': str(camera_subscribers(NODES)), 'frame_rate': '15.0'}


def test_live_score_equals_offline_score_on_the_same_frames(live_graph):
    graph, client = live_graph(overrides={'image_source': {'source': 'sample', **SOURCE}})
    final = run_source_trial(graph, client, expected_frames=72)
    live = msg_to_score(final)
    offline = score_sequence(FrameSource.open(SAMPLE_VIDEO).frames(), pipeline_config(load_params_file()))

    assert final.kind == SymmetryScore.KIND_FINAL
    assert live.frame_count == offline.frame_count == 72
    assert live.flow_pair_count == offline.flow_pair_count == 71
    for ours, theirs in zip(live.regions, offline.regions, strict=True):
        assert ours.region == theirs.region
        assert ours.vs_left == pytest.approx(theirs.vs_left, abs=1e-6)
        assert ours.vs_right == pytest.approx(theirs.vs_right, abs=1e-6)
        assert ours.symmetry == pytest.approx(theirs.symmetry, abs=1e-6)
    assert live.quality.flags == offline.quality.flags == QualityFlag.LOW_MOTION  # the still forehead
    assert final.symmetry_lambda == 3.8 and final.threshold_factor == 6.0
    assert final.header.frame_id == 'camera'
    # running scores came while the trial lasted, and the annotator drew frames for RViz
    assert any(s.kind == SymmetryScore.KIND_RUNNING for s in client.running_scores)


def write_frames(folder, frames) -> None:
    folder.mkdir()
    for index, image in enumerate(frames):
        cv2.imwrite(str(folder / f'{index:03d}.png'), image)


def test_the_final_score_waits_for_every_frame_of_a_lagging_chain(live_graph):
    """A flow node about five times too slow for the camera: nothing is dropped, and the final score waits for it.

    The flow runs with many iterations on a crop twice the default scale: about 0.2 s of CPU a frame here against
    the camera's 33 ms, so a machine several times faster than this one still lags.
    """
    slow_flow = {'iterations': 30, 'winsize': 31, 'analysis_interocular': 160.0}
    slow = {name: str(value) for name, value in slow_flow.items()}
    settings = pipeline_config(load_params_file())
    settings = PipelineSettings(settings.detector, settings.landmarks,
                                FlowSettings(**{**asdict(settings.flow), **slow_flow}),
                                settings.scoring)
    # the offline score with the same slow flow, on the core the slow flow node leaves free (OpenCV frees the GIL)
    offline_pool = ThreadPoolExecutor(1)
    offline_future = offline_pool.submit(score_sequence, FrameSource.open(SAMPLE_VIDEO).frames(), settings)
    deep = {'queue_size': '100'}
    graph, client = live_graph(overrides={
        'image_source': {'source': 'sample', 'wait_for_subscribers': str(camera_subscribers(NODES) + 1),  # + ours
                         'frame_rate': '30.0', **deep},
        'face_detector': deep, 'landmark_detector': deep, 'optical_flow': {**slow, **deep},
        'symmetry_scorer': {'final_timeout': '120.0'}})  # the flow needs about 16 s for the clip here
    images: list[int] = []
    client.create_subscription(Image, 'image_raw', lambda msg: images.append(msg.header.stamp.sec), image_qos(100))
    chain = [spec for spec in graph.specs if spec.name != 'image_source']
    graph.start([spec.name for spec in chain])
    client.wait_for_graph(chain)
    trial = client.start_trial()
    graph.start(['image_source'])
    assert client.spin_until(lambda: len(images) >= 72, 30.0)
    client.stop_trial()  # as soon as the camera has sent its last frame, long before the chain is through
    stopped = len(client.motion_stamps)
    final = msg_to_score(client.wait_for_final(trial, timeout=120.0))
    offline = offline_future.result()
    offline_pool.shutdown()
    assert final.frame_count == offline.frame_count == 72
    # the trial began before the source: measured from its first frame, and said
    assert final.quality.notes[:-1] == offline.quality.notes
    assert re.fullmatch(r"the first frame came [\d.]+ s after the trial's start; no frames were coming in when it "
                        r'started', final.quality.notes[-1])
    assert final.quality.flags == QualityFlag.LOW_MOTION  # nothing lost: only the smile's still forehead
    for ours, theirs in zip(final.regions, offline.regions, strict=True):
        assert ours.vs_left == pytest.approx(theirs.vs_left, abs=1e-6)
        assert ours.vs_right == pytest.approx(theirs.vs_right, abs=1e-6)
        assert ours.symmetry == pytest.approx(theirs.symmetry, abs=1e-6)
    assert stopped < 50, f'the flow node kept up ({stopped} of 72 frames through at the stop): no lag was tested'


def test_no_face_and_a_face_lost_mid_trial_give_flagged_scores(live_graph, tmp_path):
    sample = [image for _, image in FrameSource.open(SAMPLE_VIDEO).images()]
    blank = np.full_like(sample[0], 120)
    write_frames(tmp_path / 'empty', [blank] * 12)
    write_frames(tmp_path / 'lost', sample[:20] + [blank] * 10)

    graph, client = live_graph(overrides={'image_source': {'source': str(tmp_path / 'empty'), **SOURCE}})
    empty = run_source_trial(graph, client, expected_frames=12)
    assert empty.frame_count == 12 and empty.frames_without_face == 12
    assert empty.quality_flags & SymmetryScore.FLAG_NO_FACE
    assert empty.quality_flags & SymmetryScore.FLAG_TOO_FEW_FRAMES
    assert all(math.isnan(region.symmetry) for region in empty.regions)  # no score, not a perfect one
    assert graph.exited() is None  # nothing crashed

    graph.stop()
    graph, client = live_graph(overrides={'image_source': {'source': str(tmp_path / 'lost'), **SOURCE}})
    lost = run_source_trial(graph, client, expected_frames=30)
    assert lost.frame_count == 30
    # the box is kept through lost_after_misses - 1 failed checks, then the face counts as lost
    assert 8 <= lost.frames_without_face <= 10
    assert lost.quality_flags & SymmetryScore.FLAG_NO_FACE
    assert all(not math.isnan(region.symmetry) for region in lost.regions)
    assert any('no face' in note for note in lost.quality_notes)


REJECTED = [
    ('face_detector', 'scale_factor', 0.5, 'out of range'),
    ('face_detector', 'min_neighbors', 'five', 'type'),
    ('face_detector', 'cascade', 'no_such_cascade.xml', 'not found'),
    ('face_detector', 'patient_region', [0, 0, 0, 10], 'positive width and height'),
    ('face_detector', 'queue_size', 50, 'read-only'),
    ('landmark_detector', 'backend', 'openface', 'must be one of'),
    ('landmark_detector', 'backend', 'san', 'model_path must name a SAN checkpoint'),
    ('optical_flow', 'regions_from', 'sometimes', 'must be one of'),
    ('optical_flow', 'threshold_factor', math.nan, 'out of range'),
    ('symmetry_scorer', 'symmetry_lambda', -3.8, 'out of range'),
]
STILL_ACCEPTED = {'face_detector': ('min_size', 40), 'landmark_detector': ('model_path', ''),
                  'optical_flow': ('threshold_factor', 5.0), 'symmetry_scorer': ('symmetry_lambda', 4.0)}


def test_a_node_given_an_unknown_parameter_refuses_to_start(rclpy_context, tmp_path):
    from facesym_ros.config.registry import node

    with pytest.raises(ValueError, match='unknown parameters treshold_factor'):
        node('optical_flow').node_class()(context=rclpy_context,
                                          cli_args=['--ros-args', '-p', 'treshold_factor:=6.0'])
    # the same through a parameter file that `ros2 run` or ROS launch would pass, under any namespace key
    params = tmp_path / 'typo.yaml'
    params.write_text('/**/optical_flow:\n  ros__parameters:\n    treshold_factor: 6.0\n')
    result = subprocess.run([sys.executable, '-m', 'facesym_ros.nodes.optical_flow', '--ros-args', '--params-file',
                             str(params)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1 and 'unknown parameters treshold_factor' in result.stderr
    assert 'Traceback' not in result.stderr


def test_invalid_parameters_are_rejected_and_the_old_values_kept(rclpy_context):
    """Every node in this one process, each asked over DDS by a parameter client, as `ros2 param set` would."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from facesym_ros.config.registry import node

    nodes = {name: node(name).node_class()(context=rclpy_context) for name in STILL_ACCEPTED}
    client = Node('parameter_test_client', context=rclpy_context)
    executor = SingleThreadedExecutor(context=rclpy_context)
    for each in (*nodes.values(), client):
        executor.add_node(each)

    def call(future, timeout=10.0):
        return spin_call(executor, future, timeout)

    try:
        parameters = {name: AsyncParameterClient(client, name) for name in nodes}
        for node_name, name, value, reason in REJECTED:
            remote = parameters[node_name]
            deadline = time.monotonic() + 30
            while not remote.services_are_ready() and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.05)
            before = call(remote.get_parameters([name])).values[0]
            result = call(remote.set_parameters([Parameter(name, value=value)])).results[0]
            assert not result.successful, (node_name, name, value)
            assert reason in result.reason.lower() or reason in result.reason, (node_name, name, result.reason)
            assert call(remote.get_parameters([name])).values[0] == before
        for node_name, (name, value) in STILL_ACCEPTED.items():
            result = call(parameters[node_name].set_parameters([Parameter(name, value=value)])).results[0]
            assert result.successful, (node_name, result.reason)
            assert nodes[node_name].get_parameter(name).value == value
    finally:
        for each in (*nodes.values(), client):
            executor.remove_node(each)
            each.destroy_node()


def test_unsupported_encoding_warns_and_the_node_keeps_working(live_graph, tmp_path):
    graph, client = live_graph(names=['face_detector'])
    graph.start()
    publisher = client.create_publisher(Image, 'image_raw', image_qos(10))
    received: list[FaceDetections] = []
    client.create_subscription(FaceDetections, 'faces', received.append, pipeline_qos(10))
    assert client.spin_until(lambda: publisher.get_subscription_count() > 0 and client.count_publishers('faces'),
                             30.0)
    time.sleep(0.5)

    def header(sec: int) -> Header:
        return Header(frame_id='camera', stamp=Time(sec=sec))

    weird = Image(header=header(1), height=4, width=4, encoding='32FC1', step=16, data=bytes(64))
    unknown = Image(header=header(2), height=4, width=4, encoding='hsv_magic', step=12, data=bytes(48))
    truncated = Image(header=header(3), height=480, width=640, encoding='bgr8', step=1920, data=bytes(100))
    empty = Image(header=header(4), height=0, width=0, encoding='bgr8', step=0, data=b'')
    good = bgr_to_image(next(FrameSource.open(SAMPLE_VIDEO).images())[1], header(5))
    for msg in (weird, unknown, truncated, empty, good):
        publisher.publish(msg)
    assert client.spin_until(lambda: len(received) >= 1, 20.0), 'the node stopped working'
    client.spin_until(lambda: False, 0.5)
    assert [m.header.stamp.sec for m in received] == [5]  # bad images are skipped, not guessed at
    assert received[0].state == FaceDetections.STATE_DETECTED
    assert graph.exited() is None
    graph.stop()
    log = (tmp_path / 'graph-0.log').read_text()
    assert 'skipping image' in log and 'Traceback' not in log
