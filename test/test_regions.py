"""Region geometry: six regions from the landmarks, rolled with the head, on the patient's sides."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facesym_ros.config.files import SAMPLE_VIDEO
from facesym_ros.core.detection import DetectorSettings, HaarFaceDetector
from facesym_ros.core.frame import Frame
from facesym_ros.core.geometry import Box, Landmarks
from facesym_ros.core.landmarks.dlib_backend import DlibLandmarkBackend
from facesym_ros.core.regions import FaceAxes, RegionError, face_regions, region_masks
from facesym_ros.core.video import FrameSource

ARGS = {'forehead_height': 0.3, 'eye_margin': 0.15}


@pytest.fixture(scope='module')
def first_frame() -> Frame:
    return next(FrameSource.open(SAMPLE_VIDEO).frames())


@pytest.fixture(scope='module')
def face(first_frame) -> tuple[Box, Landmarks]:
    box = HaarFaceDetector(DetectorSettings()).detect(first_frame.gray)[0].box
    return box, DlibLandmarkBackend().predict(first_frame, box)


def by_name(regions):
    return {(r.region, r.side): r.polygon for r in regions}


def contains(polygon: np.ndarray, point) -> bool:
    return cv2.pointPolygonTest(polygon.astype(np.float32), (float(point[0]), float(point[1])), False) >= 0


def test_six_regions_in_the_paper_order(face):
    _, landmarks = face
    regions = face_regions(landmarks, mirrored=False, **ARGS)
    assert [(r.region, r.side) for r in regions] == [
        ('forehead', 'left'), ('forehead', 'right'), ('eye', 'left'), ('eye', 'right'),
        ('cheek', 'left'), ('cheek', 'right')]


def test_patient_left_is_image_right_unless_mirrored(face):
    _, landmarks = face
    midline_x = landmarks.points[[27, 8], 0].mean()
    plain = by_name(face_regions(landmarks, mirrored=False, **ARGS))
    mirrored = by_name(face_regions(landmarks, mirrored=True, **ARGS))
    for region in ('forehead', 'eye', 'cheek'):
        assert plain[(region, 'left')][:, 0].mean() > midline_x > plain[(region, 'right')][:, 0].mean()
        np.testing.assert_array_equal(mirrored[(region, 'left')], plain[(region, 'right')])
        np.testing.assert_array_equal(mirrored[(region, 'right')], plain[(region, 'left')])
    # the image-right eye (points 42-47) is the patient's left eye
    assert all(contains(plain[('eye', 'left')], p) for p in landmarks.points[42:48])
    assert all(contains(plain[('eye', 'right')], p) for p in landmarks.points[36:42])


def test_forehead_sits_above_the_brows_with_the_stated_height(face):
    _, landmarks = face
    regions = by_name(face_regions(landmarks, mirrored=False, **ARGS))
    axes = FaceAxes.from_landmarks(landmarks)
    face_coords = axes.to_face(landmarks.points)
    brow_top = face_coords[17:27, 1].min()
    brow_to_chin = face_coords[8, 1] - brow_top
    for side in ('left', 'right'):
        forehead = axes.to_face(regions[('forehead', side)])
        assert forehead[:, 1].max() == pytest.approx(brow_top)
        assert forehead[:, 1].min() == pytest.approx(brow_top - 0.3 * brow_to_chin)


def test_cheeks_include_the_mouth_and_stop_at_the_jaw(face):
    _, landmarks = face
    regions = by_name(face_regions(landmarks, mirrored=False, **ARGS))
    assert contains(regions[('cheek', 'right')], landmarks.points[48])  # image-left mouth corner
    assert contains(regions[('cheek', 'left')], landmarks.points[54])
    outside_jaw = landmarks.points[4] + (landmarks.points[4] - landmarks.points[30]) * 0.2
    assert not contains(regions[('cheek', 'right')], outside_jaw)


def test_a_rolled_head_gives_rolled_regions(face):
    _, landmarks = face
    centre = landmarks.points.mean(axis=0)
    angle = np.deg2rad(20.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rolled = Landmarks((landmarks.points - centre) @ rotation.T + centre, None, 'dlib')
    upright = by_name(face_regions(landmarks, mirrored=False, **ARGS))
    turned = by_name(face_regions(rolled, mirrored=False, **ARGS))
    for key, polygon in upright.items():
        expected = (polygon - centre) @ rotation.T + centre
        np.testing.assert_allclose(turned[key], expected, atol=2e-3)  # float32 landmarks
    # and an axis-aligned box would not have been right: the eye region really turned
    def top_edge_angle(polygon):
        edge = polygon[1] - polygon[0]
        return np.degrees(np.arctan2(edge[1], edge[0]))

    turn = top_edge_angle(turned[('eye', 'left')]) - top_edge_angle(upright[('eye', 'left')])
    assert turn == pytest.approx(20.0, abs=0.5)


def test_masks_are_disjoint_and_clipped_to_the_crop(face):
    box, landmarks = face
    regions = face_regions(landmarks, mirrored=False, **ARGS)
    masks = region_masks(regions, landmarks, box)
    assert len(masks) == 6
    assert all(mask.shape == (box.height, box.width) for mask in masks)
    counts = [int(mask.sum()) for mask in masks]
    assert all(count > 500 for count in counts)
    assert int(np.sum(masks, axis=0).max()) == 1  # no pixel counted twice
    # left and right of a region are about the same size on a frontal face
    for left, right in zip(counts[::2], counts[1::2], strict=True):
        assert abs(left - right) / max(left, right) < 0.15


def test_degenerate_landmarks_are_refused():
    with pytest.raises(RegionError):
        face_regions(Landmarks(np.zeros((68, 2)), None, 'dlib'), mirrored=False, **ARGS)
    with pytest.raises(ValueError):
        Landmarks(np.zeros((5, 2)), None, 'dlib')
