"""Two people in view: the patient's face is scored by a stated rule, and every frame's faces are counted.

Real frames: the sample clip (the patient, 640x360, a 198 px face) pasted in the middle of a 1280x360 canvas,
and a second, equally large face beside it: the clip's first frame, mirrored and frozen. The patient-alone
canvas is the same canvas with that place left black, so the patient's face is found in the same box and its
scores must be the same to the bit.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from facesym_ros.config.files import SAMPLE_VIDEO
from facesym_ros.config.registry import NODES, camera_subscribers
from facesym_ros.core.detection import (
    Detection,
    DetectorSettings,
    FaceTracker,
    HaarFaceDetector,
    TrackState,
    choose_patient,
)
from facesym_ros.core.frame import Frame
from facesym_ros.core.geometry import Box
from facesym_ros.core.pipeline import PipelineSettings, score_sequence
from facesym_ros.core.scoring import QualityFlag
from facesym_ros.core.video import FrameSource
from facesym_ros.msg import SymmetryScore
from facesym_ros.ros.conversions import msg_to_score
from facesym_ros.ros.graph_client import run_source_trial
from helpers.cli import facesym

WIDTH, HEIGHT = 1280, 360
PATIENT_X = 346  # the clip's face (x 195..393 in the clip) is centred in the canvas
OTHER = Box(0, 0, 320, HEIGHT)  # the other face's part of the canvas: a patient_region around it


def canvas(patient: np.ndarray, other: np.ndarray | None) -> np.ndarray:
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    image[:, PATIENT_X:PATIENT_X + patient.shape[1]] = patient
    if other is not None:
        image[:, :290] = other[:, 150:440][:, ::-1]  # the first frame's face, mirrored, at x 45..245
    return image


@pytest.fixture(scope='module')
def clip() -> list[Frame]:
    return list(FrameSource.open(SAMPLE_VIDEO).frames())


@pytest.fixture(scope='module')
def two_faces(clip) -> list[Frame]:
    return [Frame.from_bgr(canvas(frame.bgr, clip[0].bgr), frame.stamp_ns) for frame in clip]


@pytest.fixture(scope='module')
def alone(clip) -> list[Frame]:
    return [Frame.from_bgr(canvas(frame.bgr, None), frame.stamp_ns) for frame in clip]


def scored(frames: list[Frame], detector: DetectorSettings | None = None):
    """The score and each frame's track."""
    tracks = []
    score = score_sequence(frames, PipelineSettings(detector=detector or DetectorSettings()),
                           on_frame=lambda result: tracks.append(result.track))
    return score, tracks


def face(x: int, side: int, y: int = 100) -> Detection:
    return Detection(Box(x, y, side, side), 1.0)


def test_the_rule_largest_then_nearest_the_centre_then_inside_the_region():
    image = Box(0, 0, 1000, 400)  # centre (500, 200)
    # clearly larger (area 1.44x) wins, wherever it is
    assert choose_patient((face(0, 240), face(400, 200)), image, 0.2) == 0
    # about as large (area within 20%): the one nearest the centre
    assert choose_patient((face(0, 210), face(400, 200)), image, 0.2) == 1
    assert choose_patient((face(0, 210), face(400, 200)), image, 0.0) == 0
    # a region: only faces whose centre lies in it, and the nearest to its centre
    left = Box(0, 0, 300, 400)
    assert choose_patient((face(400, 240), face(0, 100), face(150, 100)), left, 0.2) == 2
    assert choose_patient((face(400, 240),), left, 0.2) == -1


def test_the_patient_in_the_centre_is_scored_not_the_equal_face_beside_it(two_faces, alone):
    together, tracks = scored(two_faces)
    by_itself, alone_tracks = scored(alone)
    boxes = {track.box for track in tracks}
    assert boxes == {track.box for track in alone_tracks} and len(boxes) == 1
    (box,) = boxes
    assert PATIENT_X < box.centre[0] < PATIENT_X + 640
    # the other face is as large (the cascade even makes its box a pixel larger): size alone would pick it
    other = HaarFaceDetector(DetectorSettings()).detect(two_faces[0].gray)
    assert len(other) == 2 and OTHER.contains(other[0].box.centre) and other[0].box.area >= box.area
    for ours, theirs in zip(together.regions, by_itself.regions, strict=True):
        assert (ours.vs_left, ours.vs_right, ours.symmetry) == (theirs.vs_left, theirs.vs_right, theirs.symmetry)
    assert together.region('cheek').symmetry > 0.95


def test_every_frame_with_two_faces_is_counted(two_faces, alone):
    together, tracks = scored(two_faces)
    assert [track.faces_in_image for track in tracks] == [2] * len(two_faces)
    assert {track.state for track in tracks[1:]} == {TrackState.TRACKED}  # counted on tracked frames too
    assert together.quality.frames_multiple_faces == len(two_faces) == 72
    assert together.quality.flags & QualityFlag.MULTIPLE_FACES
    assert '72 of 72 frames showed several faces' in ' '.join(together.quality.notes)
    by_itself, alone_tracks = scored(alone)
    assert [track.faces_in_image for track in alone_tracks] == [1] * len(alone)
    assert by_itself.quality.frames_multiple_faces == 0


def test_a_patient_region_around_the_other_face_scores_that_face(two_faces, alone):
    region = DetectorSettings(patient_region=(OTHER.x, OTHER.y, OTHER.width, OTHER.height))
    other, tracks = scored(two_faces, region)
    assert all(track.box is not None and OTHER.contains(track.box.centre) for track in tracks)
    assert other.quality.frames_multiple_faces == 72  # the patient is still in view
    # the frozen face did not move: every region is flagged, unlike the patient's smile
    assert other.quality.flags & QualityFlag.LOW_MOTION
    assert other.region('cheek').vs_left < 0.001 and other.region('cheek').vs_right < 0.001
    patient, _ = scored(alone)
    assert patient.region('cheek').vs_left > 0.01


def test_the_census_finds_a_face_that_comes_into_view_while_the_patient_is_tracked(clip, two_faces):
    tracker = FaceTracker(HaarFaceDetector(DetectorSettings()))
    alone_first = Frame.from_bgr(canvas(clip[0].bgr, None), 0)
    assert tracker.update(alone_first.gray).faces_in_image == 1
    track = tracker.update(two_faces[1].gray)
    assert track.state == TrackState.TRACKED and track.faces_in_image == 2
    assert track.detections[track.selected].box.iou(track.box) > 0.5  # the patient is the one selected


def test_a_blanked_box_is_not_searched_and_the_image_is_left_alone(clip):
    detector = HaarFaceDetector(DetectorSettings())
    gray = clip[0].gray.copy()
    (face,) = detector.detect(gray)
    assert detector.detect(gray, blank=face.box.expanded(-0.1)) == []
    assert np.array_equal(gray, clip[0].gray)  # blanked in a copy, at full scale too


@pytest.mark.parametrize(('region', 'message'), [
    ('1,2,3', 'must be X,Y,WIDTH,HEIGHT'),
    ('0,0,-5,10', 'patient_region must hold integers >= 0'),
    ('10,10,0,0', 'with a positive width and height'),
    ('700,0,100,100', 'patient_region [700, 0, 100, 100] lies outside the 640x360 image'),
])
def test_a_bad_patient_region_is_a_one_line_error(region, message):
    result = facesym('score', '--sample', f'--patient-region={region}')
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in result.stderr, result.stderr
    assert message in lines[0]


def test_a_bad_patient_region_in_the_parameter_file_is_a_one_line_error(tmp_path):
    params = tmp_path / 'params.yaml'
    params.write_text('/**/face_detector:\n  ros__parameters:\n    patient_region: [0, 0, 320]\n')
    result = facesym('score', '--sample', '--params-file', str(params))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert 'patient_region must be a list of 4 integers, got [0, 0, 320]' in result.stderr


@pytest.fixture(scope='module')
def two_faces_folder(tmp_path_factory, two_faces):
    folder = tmp_path_factory.mktemp('two_faces')
    for index, frame in enumerate(two_faces):
        cv2.imwrite(str(folder / f'{index:03d}.png'), frame.bgr)
    return folder


def test_facesym_score_takes_the_patient_region(two_faces_folder, tmp_path, alone):
    out = tmp_path / 'score.json'
    facesym('score', two_faces_folder, '--json', out, check=True)
    patient = json.loads(out.read_text())
    alone_score, _ = scored(alone)
    assert patient['regions']['cheek']['vs_left'] == pytest.approx(alone_score.region('cheek').vs_left, abs=1e-9)
    assert patient['quality']['frames_multiple_faces'] == 72
    region = f'{OTHER.x},{OTHER.y},{OTHER.width},{OTHER.height}'
    facesym('score', two_faces_folder, '--json', out, '--patient-region', region, check=True)
    other = json.loads(out.read_text())
    assert other['regions']['cheek']['vs_left'] < 0.001 and 'low_motion' in other['quality']['flags']
    assert other['quality']['frames_multiple_faces'] == 72


def test_the_live_graph_counts_and_scores_like_the_offline_pipeline(live_graph, two_faces_folder, two_faces):
    graph, client = live_graph(overrides={'image_source': {
        'source': str(two_faces_folder), 'wait_for_subscribers': str(camera_subscribers(NODES)),
        'frame_rate': '15.0'}})
    live = msg_to_score(run_source_trial(graph, client, expected_frames=72))
    offline, _ = scored(two_faces)
    assert live.frame_count == 72
    assert live.quality.frames_multiple_faces == offline.quality.frames_multiple_faces == 72
    for ours, theirs in zip(live.regions, offline.regions, strict=True):
        assert ours.vs_left == pytest.approx(theirs.vs_left, abs=1e-6)
        assert ours.vs_right == pytest.approx(theirs.vs_right, abs=1e-6)
    assert live.quality.flags & SymmetryScore.FLAG_MULTIPLE_FACES
