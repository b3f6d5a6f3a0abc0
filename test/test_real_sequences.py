"""The method on a real face: symmetric scores high; freezing the moving half (paper 4.1) scores it low."""

from __future__ import annotations

import numpy as np
import pytest

from facesym_ros.config.files import SAMPLE_VIDEO
from facesym_ros.core.frame import Frame
from facesym_ros.core.landmarks.dlib_backend import DlibLandmarkBackend
from facesym_ros.core.pipeline import score_sequence
from facesym_ros.core.scoring import QualityFlag
from facesym_ros.core.synth import freeze_half
from facesym_ros.core.video import FrameSource


@pytest.fixture(scope='module')
def clips() -> dict[str, list[Frame]]:
    frames = list(FrameSource.open(SAMPLE_VIDEO).frames())
    flipped = [Frame.from_bgr(np.ascontiguousarray(f.bgr[:, ::-1]), f.stamp_ns) for f in frames]
    return {'clip': frames, 'flipped clip': flipped}


@pytest.fixture(scope='module')
def backend() -> DlibLandmarkBackend:
    return DlibLandmarkBackend()


def symmetry(result) -> dict[str, float]:
    return {region.region: region.symmetry for region in result.regions}


@pytest.mark.parametrize('name', ['clip', 'flipped clip'])
def test_symmetric_smile_scores_at_least_0_9_everywhere(clips, name):
    result = score_sequence(clips[name])
    assert result.frame_count == 72 and result.flow_pair_count == 71
    assert min(symmetry(result).values()) >= 0.9, symmetry(result)
    assert result.quality.flags == QualityFlag.LOW_MOTION, result.quality.notes
    assert result.quality.notes[0].startswith('low motion: forehead (')  # a smile: only the forehead is still
    # it did see the smile: the cheeks and eyes moved
    assert result.region('cheek').vs_left > 0.002 and result.region('cheek').vs_right > 0.002


@pytest.mark.parametrize('name', ['clip', 'flipped clip'])
@pytest.mark.parametrize('frozen', ['left', 'right'])
def test_freezing_the_moving_half_lowers_the_score_where_the_face_moves(clips, backend, name, frozen):
    original = score_sequence(clips[name])
    asymmetric = score_sequence(list(freeze_half(clips[name], frozen, backend)))
    moving = 'right' if frozen == 'left' else 'left'
    for region in ('cheek', 'eye'):
        still_side = getattr(asymmetric.region(region), f'vs_{frozen}')
        moving_side = getattr(asymmetric.region(region), f'vs_{moving}')
        assert still_side < 0.05 * moving_side, (region, still_side, moving_side)
    # clearly lower where the smile moves the face, and higher again unfrozen
    assert asymmetric.region('cheek').symmetry < original.region('cheek').symmetry - 0.1
    assert asymmetric.region('cheek').symmetry < 0.85
    assert asymmetric.region('eye').symmetry < original.region('eye').symmetry - 0.05
    # the forehead barely moves in a smile, frozen or not
    assert asymmetric.region('forehead').symmetry > 0.95


def test_flipping_the_image_swaps_the_sides(clips):
    plain = score_sequence(clips['clip'])
    flipped = score_sequence(clips['flipped clip'])
    for region in ('eye', 'cheek'):
        a, b = plain.region(region), flipped.region(region)
        assert a.vs_left == pytest.approx(b.vs_right, rel=0.35)
        assert a.vs_right == pytest.approx(b.vs_left, rel=0.35)
