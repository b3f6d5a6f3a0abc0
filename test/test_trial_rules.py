"""Issue 17's classes in the core, each tried over many cases (Hypothesis): frames in time order, one image
geometry per trial, a number only where most frames had the face."""

from __future__ import annotations

import dataclasses
import math
import random

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facesym_ros.core.scoring import QualityFlag, ScoringSettings, TrialAccumulator, score_frames
from facesym_ros.core.video import FrameSource, SourceError, frame_order
from helpers.cli import facesym
from helpers.motion import motion

FAST = settings(max_examples=150, deadline=None)
SUMS = {('cheek', 'left'): 30.0, ('cheek', 'right'): 20.0, ('eye', 'left'): 5.0, ('eye', 'right'): 5.0,
        ('forehead', 'left'): 3.0, ('forehead', 'right'): 3.0}

# -- frames in time order ----------------------------------------------------------------------------------------

names = st.fixed_dictionaries({
    'prefix': st.sampled_from(['frame_', 'img', 'cam0-', '', 'Take 2 ']),
    'suffix': st.sampled_from(['.png', '.jpg', '_left.png']),
    'width': st.integers(0, 6),
    'count': st.integers(2, 60),
    'mixed_widths': st.booleans(),
})


@FAST
@given(names, st.randoms(use_true_random=False))
def test_a_folder_reads_in_the_order_of_its_frame_numbers_whatever_the_padding(spec, rng: random.Random):
    rng_width = [rng.randint(0, 6) if spec['mixed_widths'] else spec['width'] for _ in range(spec['count'])]
    numbers = sorted(rng.sample(range(10 * spec['count'] + 10), spec['count']))
    files = [f'{spec["prefix"]}{n:0{w}d}{spec["suffix"]}' for n, w in zip(numbers, rng_width, strict=True)]
    listing = files[:]
    rng.shuffle(listing)  # what a file system lists is in no particular order
    assert frame_order(listing) == files


@FAST
@given(st.integers(2, 40), st.randoms(use_true_random=False), st.sampled_from(['pattern', 'unnumbered', 'twice']))
def test_a_folder_whose_names_give_no_single_order_is_refused_naming_the_file(count, rng: random.Random, fault):
    files = [f'frame_{n}.png' for n in range(count)]
    odd = {'pattern': f'other_{rng.randrange(count)}.png', 'unnumbered': 'cover.png',
           'twice': f'frame_{rng.randrange(count):03d}.png'}[fault]
    listing = [*files, odd]
    rng.shuffle(listing)
    with pytest.raises(SourceError, match=r'cover\.png|other_|same number|two patterns'):
        frame_order(listing)


def test_the_issues_folder_frame_0_to_39_reads_frame_2_before_frame_10(tmp_path):
    for index in range(40):
        image = np.full((8, 8, 3), index, np.uint8)  # each frame's pixel value is its number
        cv2.imwrite(str(tmp_path / f'frame_{index}.png'), image)
    source = FrameSource.open(tmp_path)
    assert [int(image[0, 0, 0]) for _index, image in source.images()] == list(range(40))


def test_a_single_frame_needs_no_number():
    assert frame_order(['still.png']) == ['still.png']


# -- one image geometry per trial ---------------------------------------------------------------------------------

sizes = st.tuples(st.integers(16, 4096), st.integers(16, 4096))


@FAST
@given(st.integers(2, 60), st.data(), sizes, sizes)
def test_a_trial_whose_image_size_changes_at_any_frame_is_flagged_and_voided(count, data, first, other):
    cut = data.draw(st.integers(1, count - 1), label='cut')
    frames = [dataclasses.replace(motion(i * 33_000_000, SUMS), image_size=first if i < cut else other)
              for i in range(count)]
    result = score_frames(frames, ScoringSettings())
    if first == other:
        assert QualityFlag.IMAGE_CHANGED not in result.quality.flags
        return
    assert QualityFlag.IMAGE_CHANGED in result.quality.flags
    assert any(f'{other[0]}x{other[1]}' in note and f'the first {first[0]}x{first[1]}' in note
               for note in result.quality.notes)


def test_the_issues_480_to_496_change_is_flagged_and_survives_a_restart_of_the_scorer():
    accumulator = TrialAccumulator(ScoringSettings())
    for i in range(20):
        accumulator.add(dataclasses.replace(motion(i * 33_000_000, SUMS), image_size=(480, 480)))
    accumulator = TrialAccumulator.from_state(accumulator.state())  # a scorer restart keeps the first size
    for i in range(20, 40):
        accumulator.add(dataclasses.replace(motion(i * 33_000_000, SUMS), image_size=(496, 496)))
    result = accumulator.result()
    assert QualityFlag.IMAGE_CHANGED in result.quality.flags
    assert any(note.startswith('image size changed: 20 of 40 frames were 496x496, the first 480x480')
               for note in result.quality.notes)


def test_a_size_not_given_is_no_change():
    frames = [dataclasses.replace(motion(i * 33_000_000, SUMS), image_size=(640, 360) if i % 2 else (0, 0))
              for i in range(10)]
    assert QualityFlag.IMAGE_CHANGED not in score_frames(frames, ScoringSettings()).quality.flags


# -- a number only where most frames had the face -----------------------------------------------------------------

@FAST
@given(st.integers(3, 80), st.floats(0.0, 1.0), st.floats(0.05, 0.95), st.randoms(use_true_random=False))
def test_a_score_only_when_enough_of_the_trials_frames_had_the_face(count, without, fraction, rng: random.Random):
    faceless = set(rng.sample(range(count), round(without * count)))
    frames = [motion(i * 33_000_000, SUMS, face=i not in faceless) for i in range(count)]
    result = score_frames(frames, ScoringSettings(min_frame_fraction=fraction))
    with_face = count - len(faceless)
    scored = [not math.isnan(region.symmetry) for region in result.regions]
    if result.flow_pair_count and with_face >= fraction * count:
        assert all(scored)
        assert QualityFlag.TOO_FEW_FRAMES not in result.quality.flags
    else:
        assert not any(scored)  # no number beside a no_face flag on most frames
        assert QualityFlag.TOO_FEW_FRAMES in result.quality.flags


def test_the_issues_upside_down_face_found_in_11_of_40_frames_prints_no_number():
    frames = [motion(i * 33_000_000, SUMS, face=i % 4 == 0 or i == 39) for i in range(40)]
    result = score_frames(frames, ScoringSettings())
    assert result.quality.frames_without_face == 29
    assert QualityFlag.NO_FACE | QualityFlag.TOO_FEW_FRAMES in result.quality.flags
    assert all(math.isnan(region.symmetry) for region in result.regions)
    assert "only 11 of the trial's 40 frames had the face (29 of the 40 that came had none)" \
           " (fewer than 0.5 of them): no score" in result.quality.notes


def test_facesym_score_refuses_a_folder_of_ambiguous_names_in_one_line_with_status_2(tmp_path):
    for name in ('frame_1.png', 'frame_01.png', 'frame_2.png'):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8, 3), np.uint8))
    result = facesym('score', tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'facesym score: error: frame_1.png and frame_01.png: two frames with the same number, so their order is '
        'not known; keep one of them']
