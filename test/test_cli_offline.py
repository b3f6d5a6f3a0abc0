"""`facesym score` and `facesym synth` as a user runs them: real files in, JSON and pictures out."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import cv2
import pytest

from facesym_ros.config.files import SAMPLE_VIDEO
from facesym_ros.core.video import FrameSource
from helpers.cli import facesym as run_facesym

facesym = partial(run_facesym, check=True)  # these tests expect success unless they say not


@pytest.fixture(scope='module')
def sample_score(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp('score') / 'score.json'
    result = facesym('score', '--sample', '--json', str(out))
    assert 'cheek' in result.stdout and 'quality: low motion: forehead' in result.stdout
    return json.loads(out.read_text())


def test_score_json_has_the_documented_shape(sample_score):
    assert sample_score['frames'] == 72
    assert sample_score['lambda'] == 3.8 and sample_score['threshold_factor'] == 6.0
    assert set(sample_score['regions']) == {'forehead', 'eye', 'cheek'}
    for region in sample_score['regions'].values():
        assert set(region) == {'vs_left', 'vs_right', 'symmetry'}
        assert 0.9 <= region['symmetry'] <= 1.0
        assert region['vs_left'] >= 0 and region['vs_right'] >= 0
    assert sample_score['quality']['flags'] == ['low_motion']  # a smile does not move the forehead
    assert sample_score['method']['frames'][0]['landmark_backend'] == 'dlib'


def test_a_folder_of_frames_scores_like_the_video(sample_score, tmp_path):
    for index, image in FrameSource.open(SAMPLE_VIDEO).images():
        cv2.imwrite(str(tmp_path / f'{index:03d}.png'), image)
    out = tmp_path / 'folder.json'
    facesym('score', str(tmp_path), '--json', str(out), '--frame-rate', '30')
    assert json.loads(out.read_text())['regions'] == sample_score['regions']


def test_synth_then_score_shows_the_frozen_side(sample_score, tmp_path):
    frozen = tmp_path / 'frozen'
    facesym('synth', '--sample', str(frozen), '--freeze', 'left')
    assert len(list(frozen.glob('*.png'))) == 72
    out = tmp_path / 'frozen.json'
    facesym('score', str(frozen), '--json', str(out))
    cheek = json.loads(out.read_text())['regions']['cheek']
    assert cheek['vs_left'] < 0.05 * cheek['vs_right']
    assert cheek['symmetry'] < sample_score['regions']['cheek']['symmetry'] - 0.1


def test_annotate_writes_frames_and_the_total_heat_map(tmp_path):
    facesym('score', '--sample', '--annotate', str(tmp_path))
    assert len(list(tmp_path.glob('frame_*.png'))) == 72
    total = cv2.imread(str(tmp_path / 'heatmap_total.png'))
    plain = next(FrameSource.open(SAMPLE_VIDEO).images())[1]
    assert total.shape == plain.shape
    assert (cv2.absdiff(total, plain).sum(axis=2) > 60).mean() > 0.01  # drawing and heat map are there


@pytest.mark.parametrize(('args', 'message'), [
    (['score', '/no/such/video.mp4'], 'no such file or folder'),
    (['score'], 'give an INPUT'),
    (['score', '--sample', '--params-file', '/no/such.yaml'], 'cannot read the parameter file'),
    (['score', '--sample', '--landmarks', 'san'], 'model_path must name a SAN checkpoint'),
])
def test_bad_input_is_a_clear_error(args, message):
    result = facesym(*args, check=False)
    assert result.returncode == 2
    assert message in result.stderr
    assert 'Traceback' not in result.stderr


def test_an_empty_folder_and_a_non_video_are_refused(tmp_path):
    result = facesym('score', str(tmp_path), check=False)
    assert result.returncode == 2 and 'no images' in result.stderr
    fake = tmp_path / 'notes.mp4'
    fake.write_text('not a video')
    result = facesym('score', str(fake), check=False)
    assert result.returncode == 2 and 'cannot open this as a video' in result.stderr


def test_a_parameter_file_with_a_typo_is_refused(tmp_path):
    params = tmp_path / 'params.yaml'
    params.write_text('optical_flow:\n  ros__parameters:\n    threshhold_factor: 3.0\n')
    result = facesym('score', '--sample', '--params-file', str(params), check=False)
    assert result.returncode == 2 and 'threshhold_factor' in result.stderr


@pytest.mark.parametrize('command', ['score', 'bringup'])
def test_a_parameter_file_a_node_would_refuse_is_refused_offline_too(tmp_path, command):
    """Settings only a node uses (its executor, its queue) are checked by every command that reads the file."""
    params = tmp_path / 'params.yaml'
    params.write_text('/**/face_detector:\n  ros__parameters:\n    executor: fast\n')
    args = ['--sample'] if command == 'score' else ['--source', 'none']
    result = facesym(command, *args, '--params-file', str(params), check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].endswith(f"{params}: face_detector: executor must be one of events, single_threaded, got 'fast'")


def test_parameter_file_changes_the_score(tmp_path, sample_score):
    params = tmp_path / 'params.yaml'
    params.write_text('symmetry_scorer:\n  ros__parameters:\n    symmetry_lambda: 10.0\n')
    out = tmp_path / 'score.json'
    facesym('score', '--sample', '--params-file', str(params), '--json', str(out))
    score = json.loads(out.read_text())
    assert score['lambda'] == 10.0
    eye = sample_score['regions']['eye']
    assert score['regions']['eye']['symmetry'] == pytest.approx(1 - 10.0 * abs(eye['vs_left'] - eye['vs_right']))


def test_config_file_is_generated_from_the_code():
    from facesym_ros.config.params import render_params_yaml

    repo = Path(__file__).resolve().parents[1]
    assert (repo / 'config' / 'facesym.yaml').read_text() == render_params_yaml(), \
        'config/facesym.yaml is stale: python -m facesym_ros.config.params > config/facesym.yaml'
