"""The mediapipe landmark backend: agreement with dlib, both sides alike, roll, confidence, bad model files, and
the model and licence named in every score."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import math
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from facesym_ros.bag.storage import write_image_bag
from facesym_ros.cli import main
from facesym_ros.config.files import SAMPLE_STILL, SAMPLE_VIDEO
from facesym_ros.config.params import load_params_file, pipeline_config
from facesym_ros.config.registry import NODES, camera_subscribers
from facesym_ros.core.detection import Detection, FaceTrack, TrackState
from facesym_ros.core.frame import Frame
from facesym_ros.core.geometry import Box
from facesym_ros.core.landmarks import mediapipe_model
from facesym_ros.core.landmarks.agreement import MIRROR68, group_errors, interocular, mirrored, sample_faces, unflip
from facesym_ros.core.landmarks.dlib_backend import DlibLandmarkBackend
from facesym_ros.core.landmarks.factory import LandmarkSettings
from facesym_ros.core.landmarks.mediapipe_backend import MediaPipeLandmarkBackend, eye_roll
from facesym_ros.core.pipeline import FacePipeline, score_sequence
from facesym_ros.core.regions import face_regions, region_masks
from facesym_ros.core.scoring import QualityFlag, TrialAccumulator
from facesym_ros.core.video import FrameSource
from facesym_ros.ros.conversions import msg_to_score
from facesym_ros.ros.graph_client import run_source_trial
from helpers.bags import score_json
from helpers.processes import LineReader

SAMPLES = {'clip': SAMPLE_VIDEO, 'still': SAMPLE_STILL}
EYE_BOUND, MOUTH_BOUND = 2.5, 3.5
"""Largest mean distance to dlib's points [% of the inter-ocular distance] of the eye and mouth groups, the
regions' outlines (measured: eyes 1.3-1.5, mouth 2.0-2.7 on the clip and the still)."""


@pytest.fixture(scope='module')
def mediapipe() -> MediaPipeLandmarkBackend:
    return MediaPipeLandmarkBackend()


@pytest.fixture(scope='module')
def dlib() -> DlibLandmarkBackend:
    return DlibLandmarkBackend()


@pytest.fixture(scope='module')
def clip() -> list[Frame]:
    return list(FrameSource.open(SAMPLE_VIDEO).frames())


def points(backend, samples) -> np.ndarray:
    return np.array([backend.predict(s.patch, s.box).points for s in samples], dtype=np.float64)


@pytest.mark.parametrize('which', ['clip', 'still'])
def test_the_eyes_and_the_mouth_agree_with_dlib(mediapipe, dlib, which):
    samples = sample_faces(SAMPLES[which])[::6]
    errors = group_errors(points(mediapipe, samples), points(dlib, samples))
    assert errors['eyes'] <= EYE_BOUND, errors
    assert errors['mouth'] <= MOUTH_BOUND, errors
    assert errors['all'] < 8.0, errors  # the jaw differs most (dlib's lies beside the face on the clip)


def test_the_mirrored_face_gives_the_mirrored_points(mediapipe):
    """The mapping has no side: the points of a face flipped left-right are the flipped points, relabelled, up to
    the model's own unevenness (measured: 1.6-3.4% of the inter-ocular distance on average, the axis' ends up to
    5.1%; dlib: 1.2-2.4 and 2.3%)."""
    for sample in sample_faces(SAMPLE_VIDEO)[::12] + sample_faces(SAMPLE_STILL):
        plain = mediapipe.predict(sample.patch, sample.box).points
        flipped = mirrored(sample)
        back = unflip(mediapipe.predict(flipped.patch, flipped.box).points, sample.frame.width)[MIRROR68]
        error = np.linalg.norm(back - plain, axis=1) / interocular(plain)
        assert error.mean() < 0.045, error.mean()
        assert abs(back[[27, 8], 0] - plain[[27, 8], 0]).max() < 0.065 * interocular(plain)  # the face axis


def test_the_confidence_is_the_face_presence_score(mediapipe, clip):
    face = sample_faces(SAMPLE_VIDEO)[0]
    confidence = mediapipe.predict(face.patch, face.box).confidence
    assert confidence.shape == (68,) and confidence.min() == confidence.max() > 0.99
    wall = Box(0, 0, 150, 150)  # the door and wall beside the man
    assert mediapipe.predict(clip[0].face_patch(wall), wall).confidence.max() < 0.01


class FixedBox:
    """Stands in for the face tracker: the same box on every frame, as a tracker that found it would give."""

    def __init__(self, box: Box) -> None:
        self.box = box

    def update(self, gray: np.ndarray) -> FaceTrack:
        return FaceTrack(TrackState.TRACKED, self.box, (Detection(self.box, 1.0),), 0)


def score_in_box(frames, box: Box, backend='mediapipe'):
    """The scores of the frames with the shipped settings, the face taken in `box` on every frame."""
    config = pipeline_config(load_params_file())
    pipeline = FacePipeline(dataclasses.replace(config, landmarks=LandmarkSettings(backend=backend)))
    pipeline.tracker = FixedBox(box)
    trial = TrialAccumulator(pipeline.config.scoring, 'sequence')
    for frame in frames:
        trial.add(pipeline.process(frame).motion)
    return trial.result()


def test_a_box_without_a_face_is_flagged_low_confidence(clip):
    result = score_in_box(clip[:6], Box(0, 0, 150, 150))
    assert result.quality.flags & QualityFlag.LOW_LANDMARK_CONFIDENCE, result.quality.notes


def rotated(frame: Frame, centre: tuple[float, float], degrees: float) -> Frame:
    """The frame turned by `degrees` (counter-clockwise on the screen) about `centre`."""
    matrix = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    image = cv2.warpAffine(frame.bgr, matrix, (frame.width, frame.height), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    return Frame.from_bgr(image, frame.stamp_ns)


def centroids(landmarks, crop: Box) -> np.ndarray:
    regions = face_regions(landmarks, forehead_height=0.3, eye_margin=0.15, mirrored=False)
    masks = region_masks(regions, landmarks, crop)
    return np.array([(np.nonzero(mask)[1].mean() + crop.x, np.nonzero(mask)[0].mean() + crop.y) for mask in masks])


@pytest.mark.parametrize('degrees', [15, 30])
def test_regions_follow_a_rolled_face(mediapipe, degrees):
    face = sample_faces(SAMPLE_VIDEO)[0]
    centre = (face.box.x + (face.box.width - 1) / 2, face.box.y + (face.box.height - 1) / 2)
    turned = rotated(face.frame, centre, degrees)
    upright = mediapipe.predict(face.patch, face.box)
    rolled = mediapipe.predict(turned.face_patch(face.box), face.box)
    assert math.degrees(eye_roll(rolled.points) - eye_roll(upright.points)) == pytest.approx(-degrees, abs=3)
    crop = face.box.expanded(0.25)  # the whole face turned, masks uncut by the box
    matrix = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    expected = centroids(upright, crop) @ matrix[:, :2].T + matrix[:, 2]
    distance = np.linalg.norm(centroids(rolled, crop) - expected, axis=1) / interocular(upright.points)
    assert distance.max() < 0.1, distance


@pytest.mark.parametrize('degrees', [15, 30])
def test_a_rolled_clip_scores_as_the_upright_one(clip, degrees):
    """The box is the upright face's: Haar's frontal cascade finds the face rolled 15 degrees, not 30."""
    box = sample_faces(SAMPLE_VIDEO)[0].box
    centre = (box.x + (box.width - 1) / 2, box.y + (box.height - 1) / 2)
    frames = clip[::2]
    upright = score_in_box(frames, box)
    rolled = score_in_box([rotated(frame, centre, degrees) for frame in frames], box)
    for ours, theirs in zip(rolled.regions, upright.regions, strict=True):
        assert ours.symmetry == pytest.approx(theirs.symmetry, abs=0.03), (ours.region, ours, theirs)


def run(argv: list[str], capsys) -> tuple[int, list[str], str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, [line for line in captured.err.splitlines() if line.strip()], captured.out


@pytest.mark.parametrize('content', ['missing', 'garbage', 'truncated', 'empty'])
def test_a_missing_or_corrupt_model_file_is_one_line_and_exit_status_2(tmp_path, capsys, content):
    model = tmp_path / 'face_landmark.tflite'
    if content == 'garbage':
        model.write_bytes(np.random.default_rng(1).bytes(4096))
    elif content == 'truncated':
        model.write_bytes(mediapipe_model.bundled_model_path().read_bytes()[:100_000])
    elif content == 'empty':
        model.write_bytes(b'')
    status, errors, _ = run(['score', '--sample', '--landmarks', 'mediapipe', '--model', str(model)], capsys)
    assert status == 2
    assert len(errors) == 1 and errors[0].startswith('facesym score: error: '), errors
    assert str(model) in errors[0]


def test_a_model_that_was_never_installed_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(mediapipe_model, 'MODEL_DIR', tmp_path / 'models')
    status, errors, _ = run(['score', '--sample', '--landmarks', 'mediapipe'], capsys)
    assert status == 2 and len(errors) == 1, errors
    assert 'not found' in errors[0] and 'scripts/fetch_models.py' in errors[0]


def test_setup_installed_the_model_with_its_licence_and_notice(tmp_path):
    assert mediapipe_model.is_installed()
    folder = mediapipe_model.MODEL_DIR
    assert 'Apache License' in (folder / 'LICENSE').read_text()
    notice = (folder / 'NOTICE').read_text()
    assert mediapipe_model.SOURCE_PACKAGE in notice and mediapipe_model.MODEL_SHA256 in notice
    copy = tmp_path / 'copy'  # installing where it is already there changes nothing
    shutil.copytree(folder, copy)
    assert mediapipe_model.install(copy) == copy / mediapipe_model.MODEL_FILE


@pytest.mark.parametrize('backend', ['mediapipe', 'dlib'])
def test_the_score_json_names_the_backend_model_and_licence(tmp_path, capsys, backend):
    output = tmp_path / 'score.json'
    status, errors, _ = run(['score', '--sample', '--landmarks', backend, '--json', str(output)], capsys)
    assert status == 0
    method = json.loads(output.read_text())['method']['frames'][0]
    assert method['landmark_backend'] == backend
    assert not errors
    if backend == 'mediapipe':
        assert 'face_landmark.tflite' in method['landmark_model'] and 'Apache-2.0' in method['landmark_licence']
    else:
        assert 'shape_predictor_68_face_landmarks.dat' in method['landmark_model']
        assert 'iBUG 300-W' in method['landmark_licence'] and 'commercial' in method['landmark_licence']


def test_the_live_graph_and_score_bag_on_mediapipe_equal_offline_exactly(live_graph, tmp_path, clip):
    config = dataclasses.replace(pipeline_config(load_params_file()), landmarks=LandmarkSettings(backend='mediapipe'))
    offline = score_sequence(clip, config)
    source = {'source': 'sample', 'wait_for_subscribers': str(camera_subscribers(NODES)), 'frame_rate': '15.0'}
    graph, client = live_graph(overrides={'image_source': source, 'landmark_detector': {'backend': 'mediapipe'}})
    live = msg_to_score(run_source_trial(graph, client, expected_frames=72))
    bag = tmp_path / 'session'
    write_image_bag(bag, [frame.bgr for frame in clip], 30.0)
    [trial] = score_json(bag, tmp_path, '--landmarks', 'mediapipe')['trials']
    assert live.frame_count == trial['frames'] == offline.frame_count == 72
    assert live.method == offline.method and '"landmark_backend": "mediapipe"' in live.method
    for ours, theirs in zip(live.regions, offline.regions, strict=True):
        assert (ours.region, ours.vs_left, ours.vs_right, ours.symmetry) == (
            theirs.region, theirs.vs_left, theirs.vs_right, theirs.symmetry)
        bagged = trial['regions'][theirs.region]
        assert (bagged['vs_left'], bagged['vs_right'], bagged['symmetry']) == (
            theirs.vs_left, theirs.vs_right, theirs.symmetry)
    assert live.quality.flags == offline.quality.flags


def test_the_environment_has_one_opencv_and_no_mediapipe():
    """The model comes from mediapipe's wheel, but nothing of mediapipe (nor its OpenCV) is installed."""
    names = {(dist.metadata['Name'] or '').lower().replace('_', '-') for dist in importlib.metadata.distributions()}
    assert sorted(name for name in names if name.startswith('opencv')) == ['opencv-python-headless']
    assert not {name for name in names if name.startswith('mediapipe')}
    assert 'ai-edge-litert' in names


def node_start_lines(backend: str, until: str, timeout: float = 60.0, linger: float = 1.0) -> list[str]:
    """landmark_detector's console lines from its start until `linger` seconds after one containing `until`."""
    process = subprocess.Popen([sys.executable, '-m', 'facesym_ros.nodes.landmark_detector', '--ros-args', '-p',
                                f'backend:={backend}'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    reader = LineReader(process.stdout)
    try:
        if reader.wait_for(until, timeout) is not None:
            reader.drain(linger)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return reader.lines


@pytest.mark.parametrize('backend', ['dlib', 'mediapipe'])
def test_landmark_detector_says_at_start_when_its_model_is_not_for_commercial_use(backend):
    lines = node_start_lines(backend, f'landmark backend: {backend}')
    assert any(f'landmark backend: {backend}' in line for line in lines), lines
    warned = [line for line in lines if 'commercial product' in line]
    assert len(warned) == (1 if backend == 'dlib' else 0), lines
