"""The paper's formulas (Eq. 4, 5), the clamp, the threshold and the quality flags, on hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facesym_ros.core.detection import TrackState
from facesym_ros.core.flow import RegionMotion, RegionSideMotion, threshold_magnitude
from facesym_ros.core.scoring import QualityFlag, ScoringSettings, movement_score, score_frames, symmetry_score
from helpers.motion import POLYGON, motion


def test_movement_score_is_sum_over_pixels_and_frame_pairs():
    # VS = sum f / (M (N - 1)): 3 pairs of a 50-pixel region summing to 30, 60, 90 -> 180 / 150
    assert movement_score([30.0, 60.0, 90.0], [50, 50, 50]) == pytest.approx(1.2)
    # regions that follow every frame: the mean of the per-pair per-pixel motion
    assert movement_score([10.0, 40.0], [10, 20]) == pytest.approx((1.0 + 2.0) / 2)
    assert math.isnan(movement_score([], []))
    assert math.isnan(movement_score([1.0], [0]))


def test_symmetry_score_formula_and_clamp():
    assert symmetry_score(0.30, 0.25, 3.8) == pytest.approx(1 - 3.8 * 0.05)
    assert symmetry_score(0.25, 0.30, 3.8) == pytest.approx(0.81)
    assert symmetry_score(0.1, 0.1, 3.8) == 1.0
    assert symmetry_score(1.0, 0.0, 3.8) == 0.0  # 1 - 3.8 < 0 is clamped
    assert symmetry_score(0.1, 0.2, -1.0) == 1.0  # > 1 is clamped too
    assert math.isnan(symmetry_score(math.nan, 0.2, 3.8))


def test_threshold_zeroes_magnitudes_below_factor_times_crop_mean():
    magnitude = np.array([[0.0, 1.0], [2.0, 9.0]], dtype=np.float32)  # mean 3
    kept, mean, threshold = threshold_magnitude(magnitude, 2.0)
    assert mean == 3.0 and threshold == 6.0
    assert kept.tolist() == [[0.0, 0.0], [0.0, 9.0]]
    kept, _, threshold = threshold_magnitude(magnitude, 1.0)  # equal to the threshold is kept
    assert threshold == 3.0 and kept.tolist() == [[0.0, 0.0], [0.0, 9.0]]
    kept, _, _ = threshold_magnitude(magnitude, 0.0)
    assert kept.tolist() == magnitude.tolist()


def test_score_frames_matches_hand_computation():
    config = ScoringSettings()
    frames = [motion(0, {}, valid=False)]  # the anchor frame: no flow into it
    frames += [motion(t, {('cheek', 'left'): 20.0 * t, ('cheek', 'right'): 5.0, ('eye', 'left'): 1.0})
               for t in (1, 2, 3)]
    result = score_frames(frames, config, trial_id='t')
    assert (result.frame_count, result.flow_pair_count) == (4, 3)
    cheek = result.region('cheek')
    assert cheek.vs_left == pytest.approx((20 + 40 + 60) / (100 * 3))
    assert cheek.vs_right == pytest.approx(15 / 300)
    assert cheek.symmetry == pytest.approx(max(0.0, 1 - 3.8 * abs(0.4 - 0.05)))
    assert result.region('eye').symmetry == pytest.approx(1 - 3.8 * 0.01)
    assert result.region('forehead').symmetry == 1.0
    assert result.quality.flags == QualityFlag.LOW_MOTION  # the forehead did not move: its 1.0 says nothing


def test_quality_flags_are_counted_and_explained():
    config = ScoringSettings(max_head_motion=0.25, min_landmark_confidence=0.3)
    frames = [motion(0, {}, valid=False),  # anchor: head offsets are measured from here
              motion(33, {}, offset=(0.0, 0.1), confidence=0.2, faces=2),
              motion(66, {}, offset=(0.3, 0.0)),
              motion(99, {}, face=False),
              # 132 is missing; the face comes back in a new box, which anchors anew
              motion(165, {}, valid=False, confidence=0.9, state=TrackState.REDETECTED)]
    result = score_frames(frames, config)
    quality = result.quality
    assert quality.frames_without_face == 1
    assert quality.frames_dropped == 1  # 66 -> 132 is two periods of 33
    assert quality.frames_low_landmark_confidence == 1
    assert quality.frames_multiple_faces == 1
    assert quality.face_box_changes == 1
    assert quality.max_head_motion == pytest.approx(0.3, abs=1e-6)
    expected = (QualityFlag.NO_FACE | QualityFlag.DROPPED_FRAMES | QualityFlag.LOW_LANDMARK_CONFIDENCE
                | QualityFlag.HEAD_MOTION | QualityFlag.MULTIPLE_FACES | QualityFlag.FACE_BOX_CHANGED
                | QualityFlag.LOW_MOTION)
    assert quality.flags == expected
    assert quality.notes == (
        '1 of 5 frames had no face',
        '1 frames missing (dropped or unpaired)',
        '1 frames with landmark confidence below 0.3',
        'head moved 0.30 inter-ocular distances (limit 0.25)',
        '1 of 5 frames showed several faces; the patient\'s was scored (the largest, of faces about as large the '
        'one nearest the centre, within patient_region if set)',
        'the face left its box 1 times',
        'low motion: forehead (VS 0.00000 / 0.00000), eye (VS 0.00000 / 0.00000), cheek (VS 0.00000 / 0.00000) '
        'moved less than 0.002 on both sides; its symmetry says nothing (was the task done?)',
    )


def test_a_trial_that_lost_most_of_its_frames_gets_no_score():
    # 6 frames of a 30 fps trial reached the scorer, 594 in between did not
    frames = [motion(round(i * 100e9 / 30), {('cheek', 'left'): 30.0, ('cheek', 'right'): 10.0}) for i in range(6)]
    result = score_frames(frames, ScoringSettings(nominal_frame_rate=30.0))
    assert all(math.isnan(region.symmetry) for region in result.regions)
    assert result.region('cheek').vs_left == pytest.approx(0.3)  # the VS are kept, for the record
    assert QualityFlag.TOO_FEW_FRAMES in result.quality.flags
    assert "only 6 of the trial's 501 frames arrived (fewer than 0.5 of them): no score" in result.quality.notes
    # with most frames there, the score stands (and the drops are flagged)
    frames = [motion(round(i * 1e9 / 30), {('cheek', 'left'): 30.0}) for i in range(10) if i != 4]
    result = score_frames(frames, ScoringSettings(nominal_frame_rate=30.0))
    assert not math.isnan(result.region('cheek').symmetry)
    assert result.quality.flags & QualityFlag.DROPPED_FRAMES and not result.quality.flags & QualityFlag.TOO_FEW_FRAMES


def test_no_flow_gives_no_score_rather_than_a_perfect_one():
    result = score_frames([motion(0, {}, valid=False), motion(33, {}, face=False)], ScoringSettings())
    assert result.flow_pair_count == 0
    assert all(math.isnan(region.symmetry) for region in result.regions)
    assert QualityFlag.TOO_FEW_FRAMES in result.quality.flags
    assert 'no frame pair with optical flow: no score' in result.quality.notes
    assert result.to_json_dict()['regions']['cheek']['symmetry'] is None


def test_nominal_frame_rate_counts_drops_the_median_cannot_see():
    # every other frame missing at 30 fps: the median interval hides it, the nominal rate does not
    frames = [motion(round(i * 2e9 / 30), {}) for i in range(10)]
    assert score_frames(frames, ScoringSettings()).quality.frames_dropped == 0
    assert score_frames(frames, ScoringSettings(nominal_frame_rate=30.0)).quality.frames_dropped == 9


def test_a_region_side_without_pixels_gets_no_score_and_a_note_naming_it():
    frames = [motion(0, {}, valid=False), motion(33, {('cheek', 'left'): 5.0})]
    frames[1] = RegionMotion(**{**frames[1].__dict__, 'regions': tuple(
        RegionSideMotion(r.region, r.side, r.magnitude_sum, 0 if (r.region, r.side) == ('eye', 'right') else 100,
                         POLYGON) for r in frames[1].regions)})
    result = score_frames(frames, ScoringSettings())
    assert math.isnan(result.region('eye').symmetry) and not math.isnan(result.region('cheek').symmetry)
    assert QualityFlag.EMPTY_REGION in result.quality.flags
    assert result.quality.notes[0] == 'no pixels of eye right inside the face crop: no score for that region'


@pytest.mark.parametrize('values', [{'symmetry_lambda': -1.0}, {'max_head_motion': 'a lot'},
                                    {'min_landmark_confidence': 2.0},
                                    {'symmetry_lambda': math.nan}, {'max_head_motion': math.inf}])
def test_invalid_scoring_settings_are_refused(values):
    with pytest.raises(ValueError):
        ScoringSettings(**values)
