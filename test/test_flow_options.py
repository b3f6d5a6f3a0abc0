"""The flow options beyond the paper, each against the paper's setting on real frames."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from facesym_ros.config.files import SAMPLE_VIDEO
from facesym_ros.core.flow import FlowSettings
from facesym_ros.core.frame import Frame
from facesym_ros.core.pipeline import FacePipeline, PipelineSettings
from facesym_ros.core.video import FrameSource


@pytest.fixture(scope='module')
def clip() -> list[Frame]:
    return list(FrameSource.open(SAMPLE_VIDEO).frames())[20:44]  # the smile's onset


def motions(frames: list[Frame], **flow: object) -> list:
    pipeline = FacePipeline(PipelineSettings(flow=FlowSettings(**flow)))
    return [pipeline.process(frame).motion for frame in frames]


def side_sums(motion) -> np.ndarray:
    return np.array([side.magnitude_sum for side in motion.regions])


def test_native_face_scale_is_the_papers_unscaled_crop(clip):
    native = motions(clip[:4], face_scale='native')
    reference = motions(clip[:4], face_scale='reference', reference_interocular=140.0, analysis_interocular=140.0)
    for motion in native[1:]:
        assert motion.magnitude_scale == 1.0
        assert motion.magnitude.shape == (motion.crop_box.height, motion.crop_box.width)
    for motion in reference[1:]:
        assert motion.magnitude_scale == pytest.approx(2.0, rel=0.1)  # the sample's eyes are ~70 px apart
        assert motion.magnitude.shape[1] == round(motion.crop_box.width * motion.magnitude_scale)
        # the regions are drawn in image pixels whatever scale the flow saw
        for ours, theirs in zip(native[1].regions, motion.regions, strict=True):
            np.testing.assert_allclose(ours.polygon, theirs.polygon)


def test_remove_rigid_motion_ignores_a_head_that_shifts_as_a_whole(clip):
    still = clip[0]
    shifted = [Frame.from_bgr(cv2.warpAffine(still.bgr, np.float32([[1, 0, 1.5 * i], [0, 1, 0]]),
                                             (still.width, still.height), borderMode=cv2.BORDER_REPLICATE),
                              still.stamp_ns + i * 33_000_000) for i in range(6)]
    plain = motions(shifted)
    rigid = motions(shifted, remove_rigid_motion=True)
    assert all(m.flow_valid for m in plain[1:]) and all(m.flow_valid for m in rigid[1:])
    plain_total = sum(m.crop_mean_magnitude for m in plain[1:])
    rigid_total = sum(m.crop_mean_magnitude for m in rigid[1:])
    assert plain_total / 5 == pytest.approx(1.5, rel=0.25)  # 1.5 px a frame, seen as motion
    assert rigid_total < 0.4 * plain_total  # what is left is where the flow is not uniform (edges, flat skin)


def test_regions_from_every_frame_follow_the_landmarks(clip):
    anchored = motions(clip)
    following = motions(clip, regions_from='every_frame')
    first = [side.polygon for side in anchored[1].regions]
    for motion in anchored[2:]:
        assert all(np.array_equal(a, b.polygon) for a, b in zip(first, motion.regions, strict=True))
    moved = sum(not np.array_equal(a.polygon, b.polygon)
                for motion in following[2:] for a, b in zip(following[1].regions, motion.regions, strict=True))
    assert moved > 0
    # the paper's setting and this one see the same flow; only the masks differ
    assert [m.crop_mean_magnitude for m in following] == [m.crop_mean_magnitude for m in anchored]


@pytest.mark.parametrize('values', [{'threshold_factor': float('nan')}, {'pyr_scale': float('nan')},
                                    {'winsize': 2}, {'regions_from': 'sometimes'}])
def test_invalid_flow_settings_are_refused_with_the_setting_named(values):
    [(name, _)] = values.items()
    with pytest.raises(ValueError, match=name):
        dataclasses.replace(FlowSettings(), **values)
