"""What a bag says against what its storage holds (issue 17, class 6): a metadata.yaml that gives a topic another
type than its MCAP schema or sqlite3 topics table is named, and the bag is read as its storage holds it; never a
SerdeError traceback, never markers dropped without a word."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facesym_ros.bag.score import pick_image_topic, recorded_marks
from facesym_ros.bag.storage import IMAGE_TYPES, create_writer, open_bag, typestore
from facesym_ros.config.files import SAMPLE_VIDEO
from facesym_ros.core.timebase import NS_PER_SECOND as NS
from facesym_ros.core.video import FrameSource
from helpers.bags import score_json

FRAME_RATE = 30.0
START_NS = 1_700_000_000 * NS
TYPES = {'/image_raw': 'sensor_msgs/msg/Image', '/trial_events': 'facesym_ros/msg/TrialEvent'}
LIES = ['sensor_msgs/msg/CompressedImage', 'sensor_msgs/msg/Image', 'facesym_ros/msg/TrialEvent',
        'std_msgs/msg/String', 'sensor_msgs/msg/CameraInfo', 'facesym_ros/msg/SymmetryScore', 'no_pkg/msg/Unknown']


def marked_bag(path: Path, storage: str, images: list[np.ndarray], events: list[tuple[float, int, str]], *,
               cut_markers: int = 0) -> Path:
    """Images on /image_raw and TrialEvents on /trial_events (seconds after the first image), as recorded;
    cut_markers: the markers lose that many bytes at their end (bytes that are no TrialEvent)."""
    store = typestore()
    Header, Time = store.types['std_msgs/msg/Header'], store.types['builtin_interfaces/msg/Time']  # noqa: N806
    Image, Event = store.types[TYPES['/image_raw']], store.types[TYPES['/trial_events']]  # noqa: N806
    writer = create_writer(path, storage)
    try:
        cameras = writer.add_connection('/image_raw', TYPES['/image_raw'], typestore=store)
        markers = writer.add_connection('/trial_events', TYPES['/trial_events'], typestore=store)
        messages = []
        for index, image in enumerate(images):
            stamp = START_NS + round(index * NS / FRAME_RATE)
            height, width = image.shape[:2]
            msg = Image(header=Header(stamp=Time(sec=stamp // NS, nanosec=stamp % NS), frame_id='camera'),
                        height=height, width=width, encoding='bgr8', is_bigendian=0, step=width * 3,
                        data=np.ascontiguousarray(image).reshape(-1))
            messages.append((stamp, cameras, store.serialize_cdr(msg, TYPES['/image_raw'])))
        for seconds, event, trial_id in events:
            stamp = START_NS + round(seconds * NS)
            msg = Event(header=Header(stamp=Time(sec=stamp // NS, nanosec=stamp % NS), frame_id=''), event=event,
                        trial_id=trial_id, task='', session_id='', subject_id='')
            data = store.serialize_cdr(msg, TYPES['/trial_events'])
            messages.append((stamp, markers, data[:len(data) - cut_markers]))
        for stamp, connection, data in sorted(messages, key=lambda m: m[0]):
            writer.write(connection, stamp, data)
    finally:
        writer.close()
    return path


def lie(bag: Path, topic: str, msgtype: str) -> None:
    """Make metadata.yaml give `topic` the type `msgtype` (its storage files keep the truth)."""
    meta = bag / 'metadata.yaml'
    text = meta.read_text()
    pattern = re.compile(rf'(name: {re.escape(topic)}\n(?:\s+.*\n)*?\s+type: )(\S+)')
    changed, count = pattern.subn(lambda m: m.group(1) + msgtype, text, count=1)
    assert count == 1, text
    meta.write_text(changed)


@pytest.fixture(scope='module')
def bags(tmp_path_factory) -> dict[str, Path]:
    clip = [image for _, image in FrameSource.open(SAMPLE_VIDEO).images()][:30]
    root = tmp_path_factory.mktemp('typed')
    events = [(0.1, 0, 'smile'), (0.8, 1, 'smile')]
    return {storage: marked_bag(root / storage, storage, clip, events) for storage in ('mcap', 'sqlite3')}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(['mcap', 'sqlite3']), st.lists(st.tuples(st.sampled_from(sorted(TYPES)),
                                                                st.sampled_from(LIES)), min_size=1, max_size=2))
def test_any_type_metadata_yaml_lies_about_is_named_and_the_storages_type_is_read(bags, tmp_path, storage, lies):
    bag = tmp_path / f'lying-{storage}'
    shutil.rmtree(bag, ignore_errors=True)
    shutil.copytree(bags[storage], bag)
    said = dict(TYPES)
    for topic, msgtype in lies:
        lie(bag, topic, msgtype)
        said[topic] = msgtype
    with open_bag(bag) as contents:
        assert {name: topic.msgtype for name, topic in contents.topics.items()} == TYPES  # the storage's truth
        for topic, msgtype in said.items():
            named = [p for p in contents.problems if topic in p and 'metadata.yaml' in p]
            assert bool(named) == (msgtype != TYPES[topic]), contents.problems
            if named:
                assert msgtype in named[0] and TYPES[topic] in named[0] and bag.name in named[0]
        assert pick_image_topic(contents, None).name == '/image_raw'
        assert [mark.trial_id for mark in recorded_marks(contents)] == ['smile', 'smile']


@pytest.mark.parametrize(('storage', 'topic', 'msgtype'), [
    ('mcap', '/image_raw', IMAGE_TYPES[1]),  # the issue's: a SerdeError traceback, exit 1
    ('sqlite3', '/image_raw', IMAGE_TYPES[1]),
    ('mcap', '/trial_events', 'std_msgs/msg/String'),  # the issue's: the markers dropped without a word
])
def test_the_issues_lying_metadata_scores_as_recorded_and_names_the_lie(bags, tmp_path, storage, topic, msgtype):
    bag = tmp_path / f'lying-{storage}'
    shutil.copytree(bags[storage], bag)
    lie(bag, topic, msgtype)
    report = score_json(bag, tmp_path)
    assert report['trials_from'] == 'markers' and [t['trial_id'] for t in report['trials']] == ['smile']
    assert any(f'gives {topic} the type {msgtype}' in problem for problem in report['problems']), report['problems']
    assert report['frames_skipped'] == {}


def test_markers_whose_bytes_are_no_trial_event_are_named_not_a_traceback(tmp_path):
    clip = [image for _, image in FrameSource.open(SAMPLE_VIDEO).images()][:3]
    bag = marked_bag(tmp_path / 'cut', 'mcap', clip, [(0.0, 0, 'smile'), (0.05, 1, 'smile')], cut_markers=20)
    with open_bag(bag) as contents:
        assert recorded_marks(contents) == []
        assert any('/trial_events: a trial marker that is not a readable facesym_ros/msg/TrialEvent' in problem
                   for problem in contents.problems), contents.problems
