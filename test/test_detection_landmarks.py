"""Viola-Jones detection, the fixed-box tracking policy and dlib landmarks on real faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facesym_ros.config.files import SAMPLE_STILL, SAMPLE_VIDEO
from facesym_ros.core.detection import DetectorSettings, FaceTracker, HaarFaceDetector, TrackState
from facesym_ros.core.frame import Frame
from facesym_ros.core.landmarks.dlib_backend import DlibLandmarkBackend
from facesym_ros.core.video import FrameSource


@pytest.fixture(scope='module')
def clip() -> list[Frame]:
    return list(FrameSource.open(SAMPLE_VIDEO).frames())


@pytest.fixture(scope='module')
def still() -> Frame:
    return Frame.from_bgr(cv2.imread(str(SAMPLE_STILL)), 0)


@pytest.fixture(scope='module')
def detector() -> HaarFaceDetector:
    return HaarFaceDetector(DetectorSettings())


@pytest.fixture(scope='module')
def dlib_backend() -> DlibLandmarkBackend:
    return DlibLandmarkBackend()


def test_haar_finds_the_face_in_both_samples(clip, still, detector):
    video_faces = detector.detect(clip[0].gray)
    assert len(video_faces) == 1
    box = video_faces[0].box
    assert 150 < box.width < 260 and box.width == box.height
    assert 250 < box.x + box.width / 2 < 350 and 130 < box.y + box.height / 2 < 230  # the man's face
    still_faces = detector.detect(still.gray)
    assert still_faces, 'no face in astronaut.png'
    assert still_faces[0].confidence > 0


def test_largest_face_first_when_there_are_several(clip, still, detector):
    canvas = np.zeros((512, 1100, 3), np.uint8)
    canvas[:, 512 + 60:1024 + 60] = still.bgr  # astronaut, larger face
    small = cv2.resize(clip[0].bgr, None, fx=0.6, fy=0.6)
    canvas[40:40 + small.shape[0], :small.shape[1]] = small[:, :512 + 60]
    frame = Frame.from_bgr(canvas, 0)
    faces = detector.detect(frame.gray)
    assert len(faces) >= 2
    assert faces[0].box.area >= faces[1].box.area
    track = FaceTracker(detector).update(frame.gray)
    assert track.state == TrackState.DETECTED and track.selected == 0
    assert track.box == max((face.box for face in faces), key=lambda box: box.area)
    assert len(track.detections) == len(faces)  # the others are reported, not hidden


def test_box_stays_fixed_while_the_face_stays_in_it(clip, detector):
    tracker = FaceTracker(detector)
    tracks = [tracker.update(frame.gray) for frame in clip]
    assert tracks[0].state == TrackState.DETECTED
    assert {t.state for t in tracks[1:]} == {TrackState.TRACKED}
    assert {t.box for t in tracks} == {tracks[0].box}  # one crop for the whole clip, as in the paper


def test_face_that_moves_out_of_its_box_is_detected_anew(clip, detector):
    tracker = FaceTracker(detector)
    first = tracker.update(clip[0].gray)
    shifted = np.roll(clip[1].gray, 150, axis=1)
    track = tracker.update(shifted)
    assert track.state == TrackState.REDETECTED
    assert track.box.x == pytest.approx(first.box.x + 150, abs=15)


@pytest.mark.parametrize('upscale', [1, 2, 3])
def test_face_check_and_census_scan_a_bounded_number_of_pixels(clip, upscale):
    """The per-frame check and census cost the same whatever the face's size: the check's cascade scans the
    tracking window downscaled to a fixed face size, under 1% of a 640x480 frame (the whole window at full
    resolution was 27% of it at the sample's 193 px face, 240% at three times that); the census scans the
    whole frame downscaled so that the face is census_size pixels (the sample: 142x80, 5% of its frame)."""
    config = DetectorSettings()
    tracker = FaceTracker(HaarFaceDetector(config))
    grays = [cv2.resize(frame.gray, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)
             for frame in clip[:24]]
    first = tracker.update(grays[0])
    assert first.state == TrackState.DETECTED
    scanned = tracker.detector.pixels_scanned
    tracks = [tracker.update(gray) for gray in grays[1:]]
    assert {t.state for t in tracks} == {TrackState.TRACKED} and {t.box for t in tracks} == {first.box}
    assert {t.faces_in_image for t in tracks} == {1}
    per_frame = (tracker.detector.pixels_scanned - scanned) / len(tracks)
    check = (config.track_check_size * (1 + 2 * config.track_margin) + 2) ** 2
    assert check <= 0.01 * 640 * 480
    scale = config.census_size / first.box.width
    census = (clip[0].width * upscale * scale + 1) * (clip[0].height * upscale * scale + 1)
    assert census <= 0.06 * clip[0].width * clip[0].height
    assert per_frame <= check + census


def test_face_lost_after_misses_then_found_again(clip, detector):
    config = DetectorSettings(lost_after_misses=3)
    tracker = FaceTracker(HaarFaceDetector(config))
    blank = np.full_like(clip[0].gray, 128)
    states = [tracker.update(clip[0].gray).state] + [tracker.update(blank).state for _ in range(4)]
    assert states == [TrackState.DETECTED, TrackState.TRACKED, TrackState.TRACKED, TrackState.NO_FACE,
                      TrackState.NO_FACE]
    assert tracker.update(clip[1].gray).state == TrackState.DETECTED


@pytest.mark.parametrize('values', [{'scale_factor': 1.0}, {'min_size': 0}, {'track_min_iou': 1.5},
                                    {'min_neighbors': 2.5}])
def test_invalid_detector_settings_are_refused(values):
    with pytest.raises(ValueError):
        DetectorSettings(**values)


def test_missing_cascade_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match=r'no_such_cascade\.xml'):
        HaarFaceDetector(DetectorSettings(cascade='no_such_cascade.xml'))


@pytest.mark.parametrize('sample', ['video', 'still'])
def test_dlib_landmarks_on_a_real_face(sample, clip, still, detector, dlib_backend):
    frame = clip[0] if sample == 'video' else still
    box = detector.detect(frame.gray)[0].box
    landmarks = dlib_backend.predict(frame, box)
    points = landmarks.points
    assert points.shape == (68, 2) and points.dtype == np.float32
    assert landmarks.confidence is None and landmarks.backend == 'dlib'
    margin = 0.25 * box.width  # Haar boxes cut the chin and brows close
    assert (points[:, 0] > box.x - margin).all() and (points[:, 0] < box.x2 + margin).all()
    assert (points[:, 1] > box.y - margin).all() and (points[:, 1] < box.y2 + margin).all()
    eyes, mouth, brows = points[36:48], points[48:68], points[17:27]
    assert eyes[:, 1].max() < mouth[:, 1].min()  # eyes above the mouth
    assert brows[:, 1].mean() < eyes[:, 1].mean()  # brows above the eyes
    assert points[36:42, 0].mean() < points[42:48, 0].mean()  # 36-41 is the image-left eye
    assert points[8, 1] == points[:, 1].max()  # the chin is the lowest point
