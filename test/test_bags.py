"""rosbag2 bags: metadata and definitions as `ros2 bag info` reads them, score-bag, and every kind of bad bag."""

from __future__ import annotations

import csv
import math
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from builtin_interfaces.msg import Time
from rclpy.serialization import serialize_message
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore
from std_msgs.msg import Header

from facesym_ros.bag.score import score_bag
from facesym_ros.bag.storage import Topic as BagTopic
from facesym_ros.bag.storage import add_topic, create_writer, open_bag, typestore, write_image_bag
from facesym_ros.config.files import SAMPLE_VIDEO
from facesym_ros.config.params import load_params_file, pipeline_config
from facesym_ros.config.registry import NODES, camera_subscribers
from facesym_ros.core.frame import Frame
from facesym_ros.core.pipeline import READ_AHEAD, run_ahead, score_sequence
from facesym_ros.core.video import FrameSource
from facesym_ros.msg import RegionScore, SymmetryScore, TrialEvent
from helpers.bags import facesym, score_json, start_recorder, wait_for_line

FRAME_RATE = 30.0


@pytest.fixture(scope='module')
def clip() -> list[np.ndarray]:
    return [image for _, image in FrameSource.open(SAMPLE_VIDEO).images()]


@pytest.fixture(scope='module')
def offline_score():
    return score_sequence(FrameSource.open(SAMPLE_VIDEO).frames(), pipeline_config(load_params_file()))


def _score_msg() -> SymmetryScore:
    return SymmetryScore(
        header=Header(stamp=Time(sec=1_700_000_002, nanosec=5), frame_id='camera'), trial_id='trial-0007',
        kind=SymmetryScore.KIND_FINAL, frame_count=72, flow_pair_count=71,
        regions=[RegionScore(region='cheek', vs_left=0.0114, vs_right=0.0048, symmetry=0.975)],
        symmetry_lambda=3.8, threshold_factor=6.0, quality_flags=SymmetryScore.FLAG_HEAD_MOTION,
        quality_notes=['head moved'], method='{"software": "facesym_ros"}')


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_bags_carry_the_metadata_ros2_bag_info_reads_and_the_definitions(tmp_path, clip, storage):
    bag = tmp_path / storage
    write_image_bag(bag, clip[:10], FRAME_RATE, storage=storage)
    # add the package's own message to a second bag, as the recorder and score-bag write it
    with_score = tmp_path / f'{storage}-score'
    writer = create_writer(with_score, storage)
    connection = add_topic(writer, BagTopic('/score', 'facesym_ros/msg/SymmetryScore', '', ''))
    writer.write(connection, 1_700_000_003 * 10**9, serialize_message(_score_msg()))
    writer.close()

    info = yaml.safe_load((bag / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert info['version'] == 9
    assert info['storage_identifier'] == storage
    assert info['message_count'] == 10
    assert info['starting_time']['nanoseconds_since_epoch'] == 1_700_000_000 * 10**9
    assert info['duration']['nanoseconds'] == pytest.approx(9 / FRAME_RATE * 1e9, abs=2)
    files = info['relative_file_paths']
    assert len(files) == 1 and (bag / files[0]).is_file()
    assert files[0].endswith('.mcap' if storage == 'mcap' else '.db3')
    [entry] = info['topics_with_message_count']
    assert entry['message_count'] == 10
    topic = entry['topic_metadata']
    assert topic['name'] == '/image_raw' and topic['type'] == 'sensor_msgs/msg/Image'
    assert topic['serialization_format'] == 'cdr'
    assert topic['type_description_hash'].startswith('RIHS01_')
    assert info['files'][0]['message_count'] == 10

    # read back: the same pixels and stamps
    with open_bag(bag) as contents:
        assert not contents.salvaged and not contents.problems
        messages = list(contents.messages())
    assert len(messages) == 10
    image = typestore().deserialize_cdr(bytes(messages[3].data), 'sensor_msgs/msg/Image')
    assert image.encoding == 'bgr8' and (image.height, image.width) == clip[3].shape[:2]
    assert np.array_equal(image.data.reshape(clip[3].shape), clip[3])
    assert image.header.stamp.nanosec == round(3 / FRAME_RATE * 1e9)

    # a reader that has never heard of facesym_ros decodes the score from the definition stored in the bag
    with AnyReader([with_score], default_typestore=get_typestore(Stores.EMPTY)) as reader:
        [(connection, _, raw)] = list(reader.messages())
        score = reader.deserialize(raw, connection.msgtype)
    assert connection.msgtype == 'facesym_ros/msg/SymmetryScore'
    assert score.trial_id == 'trial-0007' and score.frame_count == 72
    assert score.regions[0].region == 'cheek' and score.regions[0].symmetry == pytest.approx(0.975)
    assert score.quality_flags == SymmetryScore.FLAG_HEAD_MOTION and score.quality_notes == ['head moved']


def test_score_bag_equals_facesym_score_and_writes_json_csv_and_an_output_bag(tmp_path, clip, offline_score):
    bag = tmp_path / 'session'
    write_image_bag(bag, clip, FRAME_RATE)
    out_bag = tmp_path / 'reviewed'
    csv_path = tmp_path / 'scores.csv'
    report = score_json(bag, tmp_path, '--csv', csv_path, '--output-bag', out_bag)

    [trial] = report['trials']
    assert report['trials_from'] == 'whole bag' and report['frames_read'] == 72 and report['problems'] == []
    assert trial['frames'] == offline_score.frame_count == 72
    for region in offline_score.regions:
        got = trial['regions'][region.region]
        assert got['vs_left'] == region.vs_left and got['vs_right'] == region.vs_right  # bit for bit
        assert got['symmetry'] == region.symmetry
    assert trial['quality']['flags'] == ['low_motion']  # the forehead does not move in a smile

    rows = list(csv.DictReader(csv_path.open()))
    assert [row['region'] for row in rows] == ['forehead', 'eye', 'cheek']
    assert float(rows[2]['symmetry']) == offline_score.region('cheek').symmetry

    with open_bag(out_bag) as reviewed:
        counts = {name: topic.message_count for name, topic in reviewed.topics.items()}
        scores = [typestore().deserialize_cdr(bytes(m.data), 'facesym_ros/msg/SymmetryScore')
                  for m in reviewed.messages(['/rescored/score'])]
    assert counts['/image_raw'] == 72  # the original topic, unchanged
    for derived in ('faces', 'landmarks', 'region_motion', 'annotated'):
        assert counts[f'/rescored/{derived}'] == 72
    assert len(scores) == 1 and scores[0].regions[2].symmetry == offline_score.region('cheek').symmetry


def test_score_bag_trials_from_time_ranges_and_compressed_images(tmp_path, clip):
    bag = tmp_path / 'compressed'
    write_image_bag(bag, clip, FRAME_RATE, compressed=True, storage='sqlite3')
    report = score_json(bag, tmp_path, '--trial', '0.5:1.5', '--trial', '1.6:2.3')
    first, second = report['trials']
    assert report['trials_from'] == 'ranges'
    assert first['trial_id'] == 'trial-0001' and second['trial_id'] == 'trial-0002'
    assert first['frames'] == 31  # frames 15..45 at 30 fps, both ends included
    assert second['frames'] == 22  # frames 48..69
    assert first['first_stamp_ns'] == 1_700_000_000 * 10**9 + 500_000_000
    for trial in (first, second):
        assert all(0.0 <= r['symmetry'] <= 1.0 for r in trial['regions'].values())


def _bag_with_markers(tmp_path: Path, clip: list[np.ndarray], events: list[tuple[float, int, str]]) -> Path:
    """The clip as a bag, with TrialEvent markers (seconds after the first image) as the scorer records them."""
    images = tmp_path / 'images'
    write_image_bag(images, clip, FRAME_RATE)
    start = 1_700_000_000 * 10**9
    markers = []
    for seconds, event, trial_id in events:
        stamp = start + round(seconds * 1e9)
        msg = TrialEvent(header=Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9)), event=event,
                         trial_id=trial_id)
        markers.append((stamp, serialize_message(msg)))
    merged = tmp_path / 'marked'
    writer = create_writer(merged, 'mcap')
    with open_bag(images) as contents:
        image_connection = add_topic(writer, contents.topics['/image_raw'])
        marker_connection = add_topic(writer, BagTopic('/trial_events', 'facesym_ros/msg/TrialEvent', '', ''))
        for message in contents.messages():
            while markers and markers[0][0] <= message.log_time_ns:
                writer.write(marker_connection, *markers.pop(0))
            writer.write(image_connection, message.log_time_ns, message.data)
    for marker in markers:
        writer.write(marker_connection, *marker)
    writer.close()
    return merged


def test_score_bag_finds_recorded_trial_markers(tmp_path, clip):
    bag = _bag_with_markers(tmp_path, clip, [
        (0.2, TrialEvent.START, 'smile'), (1.2, TrialEvent.STOP, 'smile'),
        (1.5, TrialEvent.START, 'discarded'), (1.7, TrialEvent.RESET, ''),
        (1.8, TrialEvent.START, 'rest'),  # never stopped: the bag ends first
    ])
    report = score_json(bag, tmp_path)
    assert report['trials_from'] == 'markers'
    assert [t['trial_id'] for t in report['trials']] == ['smile', 'rest']
    smile, rest = report['trials']
    assert smile['frames'] == 31  # frames 6..36
    assert rest['frames'] == 72 - 54
    assert any('before the trial was stopped' in note for note in rest['quality']['notes'])
    assert "frames cover 0.6 s, the last 0.6 s after the trial's start" in rest['quality']['notes']
    assert 'incomplete' in rest['quality']['flags'] and 'incomplete' not in smile['quality']['flags']
    assert not any('stopped' in note or 'cover' in note for note in smile['quality']['notes'])
    # --no-markers: the whole bag
    whole = score_json(bag, tmp_path, '--no-markers')
    assert [t['frames'] for t in whole['trials']] == [72]


def test_score_bag_reading_ahead_in_a_thread_changes_nothing(tmp_path, clip):
    """The reading thread (face side) and the flow side each see every image in order: the same scores and the same
    output bag as one thread, and a trial started mid-bag is scored as its frames alone are, face found anew."""
    bag = _bag_with_markers(tmp_path, clip, [
        (0.2, TrialEvent.START, 'smile'), (1.2, TrialEvent.STOP, 'smile'), (1.3, TrialEvent.STOP, 'smile'),
        (1.5, TrialEvent.START, 'discarded'), (1.7, TrialEvent.RESET, ''), (1.8, TrialEvent.START, 'rest')])
    config = pipeline_config(load_params_file())
    store = typestore()
    runs = {}
    for read_ahead in (0, READ_AHEAD):
        out = tmp_path / f'reviewed-{read_ahead}'
        with open_bag(bag) as contents:
            report = score_bag(contents, config, output_bag=out, read_ahead=read_ahead)
        with open_bag(out) as reviewed:  # CDR's padding bytes are not the same twice, even in one thread
            written = [(m.topic, m.log_time_ns, bytes(store.serialize_cdr(store.deserialize_cdr(m.data, m.msgtype),
                                                                           m.msgtype))) for m in reviewed.messages()]
        runs[read_ahead] = (report.to_json_dict(), written)
    assert runs[READ_AHEAD] == runs[0]
    report, written = runs[READ_AHEAD]
    assert [trial['trial_id'] for trial in report['trials']] == ['smile', 'rest']
    assert report['problems'] == [  # the second stop
        'trial marker 1.300 s after the first image (stamped 1700000001.300) ignored: no trial is running']
    assert len(written) == 72 + 6 + 4 * 72 + 2  # images, markers, four derived topics a frame, two scores
    smile = report['trials'][0]
    frames = [Frame.from_bgr(image, index) for index, image in enumerate(clip[6:37])]
    alone = score_sequence(frames, config)
    assert score_sequence(frames, config, read_ahead=0) == alone  # a video file's frames, likewise
    assert smile['frames'] == alone.frame_count == 31
    for region in alone.regions:
        assert smile['regions'][region.region]['vs_left'] == region.vs_left
        assert smile['regions'][region.region]['vs_right'] == region.vs_right


def test_the_reading_thread_hands_on_its_error_and_stops_with_its_caller(tmp_path, clip):
    def failing():
        yield 1
        yield 2
        raise ValueError('a bad image')

    got = []
    with pytest.raises(ValueError, match='a bad image'):
        got.extend(run_ahead(failing(), 1))
    assert got == [1, 2]

    write_image_bag(tmp_path / 'session', clip[:20], FRAME_RATE)

    def refuse(result) -> None:
        if result.frame.stamp_ns > 1_700_000_000 * 10**9 + 200_000_000:
            raise RuntimeError('the caller gave up')

    with open_bag(tmp_path / 'session') as contents, pytest.raises(RuntimeError, match='the caller gave up'):
        score_bag(contents, pipeline_config(load_params_file()), on_frame=refuse)
    assert not [thread for thread in threading.enumerate() if thread.name == 'facesym-read-ahead']


def test_a_trial_whose_bag_ends_before_its_stop_says_what_its_frames_cover(tmp_path, clip):
    bag = _bag_with_markers(tmp_path, clip, [(1.0, TrialEvent.START, 'cut'), (5.0, TrialEvent.STOP, 'cut')])
    [cut] = score_json(bag, tmp_path)['trials']
    assert cut['frames'] == 42  # frames 30..71: the bag ends 2.4 s in
    assert 'incomplete' in cut['quality']['flags']
    assert "incomplete: frames cover 1.4 s of the trial's 4.0 s (none after 1.4 s)" in cut['quality']['notes']


# -- bad bags -------------------------------------------------------------------------------------------------------

def test_a_path_that_is_not_a_bag_gets_a_clear_error(tmp_path):
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'notes.txt').write_text('not a bag')
    fake = tmp_path / 'fake.mcap'
    fake.write_bytes(b'this is no mcap file at all' * 10)
    for path, reason in [(tmp_path / 'missing', 'no such file or folder'),
                         (tmp_path / 'empty', 'not a rosbag2 bag'),
                         (tmp_path / 'notes.txt', 'not a rosbag2 bag'),
                         (fake, 'not a readable mcap file')]:
        result = facesym('score-bag', path, '--quiet')
        assert result.returncode == 2, (path, result.stderr)
        assert reason in result.stderr and 'Traceback' not in result.stderr


def test_a_bag_without_an_image_topic_gets_a_clear_error(tmp_path):
    bag = tmp_path / 'scores-only'
    writer = create_writer(bag, 'mcap')
    connection = add_topic(writer, BagTopic('/score', 'facesym_ros/msg/SymmetryScore', '', ''))
    writer.write(connection, 1, serialize_message(_score_msg()))
    writer.close()
    result = facesym('score-bag', bag, '--quiet')
    assert result.returncode == 2
    assert 'no image topic' in result.stderr and '/score (facesym_ros/msg/SymmetryScore)' in result.stderr
    result = facesym('score-bag', bag, '--topic', 'score', '--quiet')
    assert result.returncode == 2 and 'not an image' in result.stderr


def test_a_recorded_face_patch_is_never_taken_for_the_camera(tmp_path, clip):
    bag = tmp_path / 'patch-only'
    write_image_bag(bag, [image[100:300, 200:400] for image in clip[:3]], FRAME_RATE, topic='/face_patch')
    result = facesym('score-bag', bag, '--quiet')
    assert result.returncode == 2 and 'no image topic' in result.stderr
    result = facesym('score-bag', bag, '--topic', 'face_patch', '--quiet')
    assert result.returncode == 2 and 'only the face patch' in result.stderr


def test_an_unknown_encoding_is_named_and_readable_frames_are_still_scored(tmp_path, clip):
    store = typestore()
    image_type = store.types['sensor_msgs/msg/Image']
    header_type, time_type = store.types['std_msgs/msg/Header'], store.types['builtin_interfaces/msg/Time']

    def bag_of(path: Path, encodings: list[str]) -> Path:
        writer = create_writer(path, 'mcap')
        connection = add_topic(writer, BagTopic('/image_raw', 'sensor_msgs/msg/Image', '', ''))
        for index, encoding in enumerate(encodings):
            height, width = clip[index].shape[:2]
            stamp = 10**9 + index * 33_333_333
            msg = image_type(header=header_type(stamp=time_type(sec=1, nanosec=stamp - 10**9), frame_id='camera'),
                             height=height, width=width, encoding=encoding, is_bigendian=0, step=width * 3,
                             data=clip[index].reshape(-1))
            writer.write(connection, stamp, store.serialize_cdr(msg, 'sensor_msgs/msg/Image'))
        writer.close()
        return path

    result = facesym('score-bag', bag_of(tmp_path / 'all-bad', ['hsv_magic'] * 5), '--quiet')
    assert result.returncode == 2
    assert "unsupported image encoding 'hsv_magic'" in result.stderr and 'no usable image' in result.stderr

    mixed = bag_of(tmp_path / 'mixed', ['bgr8'] * 20 + ['hsv_magic'] * 2 + ['bgr8'] * 10)
    report = score_json(mixed, tmp_path)
    assert report['frames_read'] == 32
    assert report['frames_skipped'] == {"unsupported image encoding 'hsv_magic'": 2}
    assert report['problems'] == ["/image_raw: image logged 0.667 s after the first (1.667) skipped: unsupported image "
                                  "encoding 'hsv_magic'"]  # said once, at its first image, found in the bag by its time
    [trial] = report['trials']
    assert trial['frames'] == 30
    assert 'dropped_frames' in trial['quality']['flags']  # the skipped frames leave a gap the score shows


def test_a_truncated_mcap_bag_is_scored_as_far_as_it_is_readable(tmp_path, clip):
    bag = tmp_path / 'cut'
    write_image_bag(bag, clip, FRAME_RATE)
    [mcap] = bag.glob('*.mcap')
    data = mcap.read_bytes()
    mcap.write_bytes(data[:len(data) * 6 // 10])  # copied or written half-way

    report = score_json(bag, tmp_path)
    assert 20 < report['frames_read'] < 60
    assert any('damaged' in problem for problem in report['problems'])
    assert any('unreadable from byte' in problem for problem in report['problems'])
    [trial] = report['trials']
    assert trial['frames'] == report['frames_read']
    assert all(r['symmetry'] is not None for r in trial['regions'].values())

    (bag / 'metadata.yaml').unlink()  # as a killed recorder leaves it
    report = score_json(bag, tmp_path)
    assert any('metadata.yaml is missing' in problem for problem in report['problems'])
    assert 20 < report['frames_read'] < 60


# -- recording, signals ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(('storage', 'stop'), [('mcap', signal.SIGINT), ('sqlite3', signal.SIGTERM),
                                               ('sqlite3', signal.SIGKILL)])
def test_record_keeps_what_was_received_before_the_signal(rclpy_context, tmp_path, storage, stop):
    from rclpy.duration import Duration
    from rclpy.node import Node

    from facesym_ros.ros.node_base import latched_qos

    bag = tmp_path / 'recorded'
    node = Node('test_publisher', context=rclpy_context)
    publisher = node.create_publisher(SymmetryScore, 'score', latched_qos(100))
    recorder = start_recorder(bag, 'score', '--storage', storage)
    try:
        wait_for_line(recorder, 'recording /score')
        sent = 25
        for index in range(sent):
            msg = _score_msg()
            msg.frame_count = index
            publisher.publish(msg)
        assert publisher.wait_for_all_acked(Duration(seconds=10))
        time.sleep(1.5)  # past one flush period, so even a killed recorder has it on disk
        recorder.send_signal(stop)
        recorder.wait(timeout=30)
    finally:
        if recorder.poll() is None:
            recorder.kill()
        node.destroy_node()
    with open_bag(bag) as contents:
        frames = [typestore().deserialize_cdr(bytes(m.data), 'facesym_ros/msg/SymmetryScore').frame_count
                  for m in contents.messages()]
        salvaged, problems = contents.salvaged, contents.problems
    assert frames == list(range(sent))
    if stop == signal.SIGKILL:
        assert salvaged and any('metadata.yaml is missing' in p for p in problems)
    else:
        assert recorder.returncode == 0 and not salvaged
        info = yaml.safe_load((bag / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
        assert info['message_count'] == sent
        qos = info['topics_with_message_count'][0]['topic_metadata']['offered_qos_profiles']
        assert qos[0]['durability'] == 'transient_local' and qos[0]['reliability'] == 'reliable'


def test_recorded_replayed_and_offline_scores_agree(live_graph, tmp_path):
    from facesym_ros.ros.conversions import msg_to_score
    from facesym_ros.ros.graph_client import run_source_trial

    bag = tmp_path / 'session'
    recorder = start_recorder(bag)
    try:
        wait_for_line(recorder, 'waiting for publishers')
        graph, client = live_graph(overrides={'image_source': {
            'source': 'sample', 'wait_for_subscribers': str(camera_subscribers(NODES) + 1),  # + the recorder
            'frame_rate': '15.0'}})
        live = msg_to_score(run_source_trial(graph, client, expected_frames=72))
        time.sleep(1.0)
        graph.stop()
        recorder.send_signal(signal.SIGINT)
        assert recorder.wait(timeout=30) == 0
    finally:
        if recorder.poll() is None:
            recorder.kill()
    assert live.frame_count == 72

    # replay the camera and the recorded trial markers through a fresh graph, lock-step
    graph, client = live_graph(names=['face_detector', 'landmark_detector', 'optical_flow', 'symmetry_scorer'])
    graph.start()
    client.wait_for_graph(graph.specs, timeout=120)
    played = facesym('play', bag, '--topics', 'image_raw', 'trial_events', '--remap', 'trial_events:=trial_control',
                     '--step')
    assert played.returncode == 0, played.stderr
    assert 'unanswered steps 0' in played.stderr
    replayed = msg_to_score(client.wait_for_final(live.trial_id, timeout=60))

    offline = score_json(bag, tmp_path)
    assert offline['trials_from'] == 'markers'
    [bag_score] = offline['trials']
    assert bag_score['trial_id'] == replayed.trial_id == live.trial_id
    assert bag_score['frames'] == replayed.frame_count == live.frame_count
    for ours in live.regions:
        again = replayed.region(ours.region)
        scored = bag_score['regions'][ours.region]
        for key in ('vs_left', 'vs_right', 'symmetry'):
            assert getattr(again, key) == pytest.approx(getattr(ours, key), abs=1e-6)
            assert scored[key] == pytest.approx(getattr(ours, key), abs=1e-6)
    assert replayed.quality.flags == live.quality.flags == SymmetryScore.FLAG_LOW_MOTION  # the still forehead
    assert bag_score['quality']['flags'] == ['low_motion']
    assert not math.isnan(live.region('cheek').symmetry)


def test_play_rejects_unknown_topics_and_bad_rates(tmp_path, clip):
    bag = tmp_path / 'small'
    write_image_bag(bag, clip[:3], FRAME_RATE)
    result = facesym('play', bag, '--topics', 'camera_info')
    assert result.returncode == 2 and 'no topic camera_info' in result.stderr
    result = facesym('play', bag, '--rate', '0')
    assert result.returncode == 2 and '--rate must be positive' in result.stderr
    shutil.rmtree(bag)


def test_play_skips_types_it_cannot_load_and_plays_the_rest(tmp_path, clip):
    bag = tmp_path / 'foreign'
    writer = create_writer(bag, 'mcap')
    foreign = writer.add_connection('/thing', 'unknown_pkg/msg/Thing', msgdef='int32 value',
                                    rihs01='RIHS01_' + '0' * 64)
    images = add_topic(writer, BagTopic('/image_raw', 'sensor_msgs/msg/Image', '', ''))
    store = typestore()
    header = store.types['std_msgs/msg/Header'](stamp=store.types['builtin_interfaces/msg/Time'](sec=1, nanosec=0),
                                               frame_id='camera')
    image = store.types['sensor_msgs/msg/Image'](header=header, height=2, width=2, encoding='bgr8', is_bigendian=0,
                                                 step=6, data=np.zeros(12, np.uint8))
    writer.write(foreign, 1, bytes([0, 1, 0, 0, 7, 0, 0, 0]))
    writer.write(images, 2, store.serialize_cdr(image, 'sensor_msgs/msg/Image'))
    writer.close()
    result = facesym('play', bag, '--rate', '100', '--wait', '0.5')
    assert result.returncode == 0, result.stderr
    assert 'skipping /thing: its type unknown_pkg/msg/Thing is not installed here' in result.stderr
    assert '/image_raw 1' in result.stderr and 'Traceback' not in result.stderr


def test_play_waits_for_every_subscriber_to_match_and_starts_over_when_another_joins(rclpy_context, tmp_path, clip):
    """The image goes to several nodes, which match one by one: the settle time restarts at each new match, so a
    subscriber that matched late still gets the first message (a lost first image once failed a CI run)."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from facesym_ros.bag.play import BagPlayerNode, MatchSettler

    bag_path = tmp_path / 'three'
    write_image_bag(bag_path, clip[:3], FRAME_RATE)
    settle = 0.5
    with open_bag(bag_path) as bag:
        player = BagPlayerNode(bag, ['/image_raw'], {}, None, context=rclpy_context)
        listeners = [Node(f'listener_{k}', context=rclpy_context) for k in range(2)]
        executor = SingleThreadedExecutor(context=rclpy_context)
        for node in (player, *listeners):
            executor.add_node(node)
        settled = MatchSettler(player, settle)

        def spin_until(done, timeout: float = 20.0) -> bool:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.01)
                if done():
                    return True
            return False

        try:
            assert not settled()  # the first look starts the settle time
            listeners[0].create_subscription(Image, 'image_raw', lambda _: None, qos_profile_sensor_data)
            assert spin_until(lambda: settled() and player.match_counts() == ((1, 1),))
            listeners[1].create_subscription(Image, 'image_raw', lambda _: None, qos_profile_sensor_data)
            assert spin_until(lambda: player.match_counts() != ((1, 1),))
            assert not settled()  # a count changed: the settle time starts again
            assert spin_until(lambda: settled() and player.match_counts() == ((2, 2),))
        finally:
            executor.shutdown()
            for node in (player, *listeners):
                node.destroy_node()
