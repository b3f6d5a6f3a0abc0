"""Graded synthetic asymmetry: `synth --keep-motion ALPHA` keeps a fraction of one half's motion."""

from __future__ import annotations

import itertools
import subprocess
import sys

import cv2
import numpy as np
import pytest

from facesym_ros.config.files import SAMPLE_VIDEO
from facesym_ros.config.params import load_params_file, pipeline_config
from facesym_ros.core.landmarks.factory import make_landmark_backend
from facesym_ros.core.pipeline import score_sequence
from facesym_ros.core.synth import freeze_half, frozen_half_mask, keep_motion_half
from facesym_ros.core.video import FrameSource

ALPHAS = (1.0, 0.75, 0.5, 0.25, 0.0)


@pytest.fixture(scope='module')
def clip():
    config = pipeline_config(load_params_file())
    return list(FrameSource.open(SAMPLE_VIDEO).frames()), config, make_landmark_backend(config.landmarks)


def test_cheek_symmetry_falls_as_less_motion_is_kept(clip):
    """The sample is a smile: the cheek moves. Keeping less of the right half's motion lowers the cheek SS."""
    frames, config, backend = clip
    series = []
    for alpha in ALPHAS:
        cheek = score_sequence(keep_motion_half(frames, 'right', alpha, backend), config, backend).region('cheek')
        series.append(cheek.symmetry)
        print(f'keep-motion {alpha:4.2f}: cheek SS {cheek.symmetry:.4f} '
              f'(VS left {cheek.vs_left:.5f}, right {cheek.vs_right:.5f})')
    assert all(later < earlier for earlier, later in itertools.pairwise(series)), series
    assert series[0] - series[-1] > 0.1


def test_the_ends_are_the_original_and_the_frozen_half(clip):
    frames, _, backend = clip
    head = frames[:6]
    for kept, original in zip(keep_motion_half(head, 'left', 1.0, backend), head, strict=True):
        assert np.array_equal(kept.bgr, original.bgr)
    for kept, frozen in zip(keep_motion_half(head, 'left', 0.0, backend), freeze_half(head, 'left', backend),
                            strict=True):
        assert np.array_equal(kept.bgr, frozen.bgr)


def test_half_the_motion_moves_features_half_way(clip):
    """A warp, not a blend: features of the kept half travel about half of their displacement."""
    frames, _, backend = clip
    first, last = frames[0], frames[40]
    kept = list(keep_motion_half([first, last], 'right', 0.5, backend))[1]
    mask = frozen_half_mask(first, 'right', backend)

    def displacement(frame) -> np.ndarray:
        flow = cv2.calcOpticalFlowFarneback(first.gray, frame.gray, None, 0.5, 4, 21, 3, 7, 1.5, 0)
        return np.hypot(flow[..., 0], flow[..., 1])

    full, half = displacement(last), displacement(kept)
    moving = mask & (full > 1.0)  # pixels of the right half that moved more than a pixel
    assert moving.sum() > 500
    ratio = float(np.median(half[moving]) / np.median(full[moving]))
    print(f'median displacement kept at alpha 0.5: {ratio:.2f} of the original')
    assert 0.35 < ratio < 0.65


def test_keep_motion_through_the_command(tmp_path):
    out = tmp_path / 'graded'
    result = subprocess.run([sys.executable, '-m', 'facesym_ros.cli', 'synth', '--sample', str(out),
                             '--freeze', 'right', '--keep-motion', '0.5'], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert 'keeping 0.5 of its motion' in result.stderr
    assert len(list(out.glob('*.png'))) == 72
    bad = subprocess.run([sys.executable, '-m', 'facesym_ros.cli', 'synth', '--sample', str(tmp_path / 'x'),
                          '--freeze', 'right', '--keep-motion', '1.5'], capture_output=True, text=True,
                         timeout=300, check=False)
    assert bad.returncode == 2 and 'fraction of motion kept must be in [0, 1]' in bad.stderr
