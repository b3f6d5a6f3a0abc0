"""Core -> message -> core gives back exactly what went in: why live scores can equal offline scores bit for bit.

Messages are serialised to CDR bytes and read back in between, as DDS would carry them.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Header

from facesym_ros.config.files import SAMPLE_VIDEO
from facesym_ros.core.pipeline import FacePipeline
from facesym_ros.core.scoring import ScoringSettings, TrialLabels, score_frames
from facesym_ros.core.trials import TrialEventKind, TrialMark
from facesym_ros.core.video import FrameSource
from facesym_ros.msg import FaceDetections, FaceLandmarks, RegionMotion, SymmetryScore, TrialEvent
from facesym_ros.ros.conversions import (
    PatchPlace,
    landmarks_to_msg,
    mark_of,
    mark_to_msg,
    motion_to_msg,
    msg_to_landmarks,
    msg_to_motion,
    msg_to_score,
    msg_to_track,
    ns_to_stamp,
    score_to_msg,
    stamp_to_ns,
    track_to_msg,
)


def over_the_wire(msg):
    return deserialize_message(serialize_message(msg), type(msg))


@pytest.fixture(scope='module')
def results():
    pipeline = FacePipeline()
    return [pipeline.process(frame) for frame in list(FrameSource.open(SAMPLE_VIDEO).frames())[:20]]


def header(stamp_ns: int) -> Header:
    return Header(stamp=ns_to_stamp(stamp_ns), frame_id='camera')


def assert_motion_equal(back, original) -> None:
    for field in dataclasses.fields(original):
        if field.name in ('magnitude', 'regions'):
            continue
        assert getattr(back, field.name) == getattr(original, field.name), field.name
    assert len(back.regions) == len(original.regions) == 6
    for ours, theirs in zip(original.regions, back.regions, strict=True):
        assert (theirs.region, theirs.side, theirs.magnitude_sum, theirs.pixel_count) == (
            ours.region, ours.side, ours.magnitude_sum, ours.pixel_count)
        # Outlines are drawn, never scored (the masks are made in the flow node): carried as float32.
        np.testing.assert_array_equal(theirs.polygon, ours.polygon.astype(np.float32))


def test_stamps_round_trip_to_the_nanosecond():
    for stamp in (0, 1, 999_999_999, 1_000_000_000, 1_700_000_000_123_456_789):
        assert stamp_to_ns(ns_to_stamp(stamp)) == stamp


def test_tracks_landmarks_and_region_motion_round_trip_exactly(results):
    for result in results:
        stamp = result.frame.stamp_ns
        place = PatchPlace.of(result.patch, result.frame.width, result.frame.height)
        faces_msg = over_the_wire(track_to_msg(result.track, header(stamp), 'haar', place))
        track = msg_to_track(faces_msg)
        assert track == result.track
        # where the face patch lies: the box grown by a quarter of its side, clipped to the image
        assert PatchPlace.from_msg(faces_msg) == place
        assert place.box == result.track.box.expanded(0.25).clipped(result.frame.width, result.frame.height)
        assert place.image_size == (result.frame.width, result.frame.height)
        landmarks_msg = over_the_wire(landmarks_to_msg(result.landmarks, result.track, header(stamp), place))
        assert isinstance(landmarks_msg, FaceLandmarks) and PatchPlace.from_msg(landmarks_msg) == place
        landmarks = msg_to_landmarks(landmarks_msg)
        np.testing.assert_array_equal(landmarks.points, result.landmarks.points)
        assert landmarks.backend == result.landmarks.backend == 'dlib'
        motion = msg_to_motion(over_the_wire(motion_to_msg(result.motion, header(stamp))))
        assert_motion_equal(motion, result.motion)
    no_face = PatchPlace.of(None, 640, 480)
    assert isinstance(over_the_wire(track_to_msg(results[0].track, header(0), 'haar', no_face)), FaceDetections)
    assert PatchPlace.from_msg(over_the_wire(track_to_msg(results[0].track, header(0), 'haar', no_face))) == no_face
    assert sum(r.motion.flow_valid for r in results) == 19


def test_a_score_from_messages_equals_the_score_from_the_core_bit_for_bit(results):
    motions = [r.motion for r in results]
    from_messages = [msg_to_motion(over_the_wire(motion_to_msg(m, header(m.stamp_ns))), with_polygons=False)
                     for m in motions]
    assert score_frames(from_messages, ScoringSettings(), 't') == score_frames(motions, ScoringSettings(), 't')


def test_scores_round_trip_exactly_including_nan_and_notes(results):
    score = dataclasses.replace(score_frames([r.motion for r in results], ScoringSettings(), trial_id='trial-0001'),
                                labels=TrialLabels('smile', 'S-1', 'P-7'))
    msg = over_the_wire(score_to_msg(score, SymmetryScore.KIND_FINAL, 'camera'))
    assert msg.header.frame_id == 'camera' and stamp_to_ns(msg.header.stamp) == score.last_stamp_ns
    assert msg_to_score(msg) == score and (msg.task, msg.subject_id) == ('smile', 'P-7')
    empty = score_frames([results[0].motion], ScoringSettings(), trial_id='empty')  # no pair: NaN scores
    back = msg_to_score(over_the_wire(score_to_msg(empty, SymmetryScore.KIND_FINAL, '')))
    assert all(math.isnan(region.symmetry) for region in back.regions)
    assert back.quality == empty.quality and back.quality.notes


@pytest.mark.parametrize('event', list(TrialEventKind))
def test_trial_marks_round_trip_with_their_ids(event):
    labels = TrialLabels('raise_brows', 'S-1', 'P-7') if event == TrialEventKind.START else TrialLabels()
    mark = TrialMark(1_700_000_001_000_000_007, event, 'trial-0042' if event != TrialEventKind.RESET else '', labels)
    msg = over_the_wire(mark_to_msg(mark, 'camera'))
    assert isinstance(msg, TrialEvent) and msg.header.frame_id == 'camera' and msg.task == labels.task
    assert mark_of(msg) == mark


def test_an_unknown_trial_event_kind_is_refused():
    with pytest.raises(ValueError):
        mark_of(TrialEvent(event=7))
    assert RegionMotion  # the message type the motion round trip above serialises


def test_every_quality_flag_is_a_symmetry_score_constant_and_back():
    from facesym_ros.core.scoring import QualityFlag

    constants = {name[len('FLAG_'):]: getattr(SymmetryScore, name) for name in dir(SymmetryScore)
                 if name.startswith('FLAG_')}
    assert constants == {flag.name: flag.value for flag in QualityFlag}
