"""The session report as a clinician gets it: `facesym report` on a real clip, opened in headless Chromium."""

from __future__ import annotations

import dataclasses
import json
import math
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest

from facesym_ros.clinic.protocol import SessionSettings, load_protocol
from facesym_ros.clinic.report_html import SessionInfo, build_session_report, write_session_report
from facesym_ros.clinic.session_score import score_task, summarize, synkinesis_indicator
from facesym_ros.clinic.task_result import MotionTrace, TaskResult
from facesym_ros.config.files import SAMPLE_VIDEO
from facesym_ros.config.params import load_params_file, pipeline_config
from facesym_ros.core.pipeline import score_sequence
from facesym_ros.core.scoring import Quality, RegionScore, ScoringSettings, score_frames, symmetry_score
from facesym_ros.core.video import FrameSource
from helpers.browser import chromium
from helpers.cli import facesym as run_facesym

facesym = partial(run_facesym, check=True)  # these tests expect success unless they say not


# The sample clip is 2.4 s of a smile; seven tasks get a slice each.
SPANS = '0:0.3,0.3:0.6,0.6:0.9,0.9:1.2,1.2:1.6,1.6:2.0,2.0:2.4'
TASKS = ['rest', 'raise_brows', 'close_eyes_gently', 'close_eyes_tightly', 'smile', 'snarl', 'pucker']




@pytest.fixture(scope='module')
def sessions(tmp_path_factory) -> tuple[Path, Path]:
    """Two sessions of the same subject; the second compares with the first."""
    root = tmp_path_factory.mktemp('sessions')
    first, second = root / 's1', root / 's2'
    result = facesym('report', '--sample', '--tasks', SPANS, '--subject', 'P-017', '--session', 'S1',
                     '--date', '2026-03-02', '--output', str(first))
    assert 'facesym index' in result.stdout
    facesym('report', '--sample', '--tasks', SPANS, '--subject', 'P-017', '--session', 'S2',
            '--date', '2026-04-06', '--output', str(second), '--compare', str(first))
    return first, second


def test_report_json_holds_every_task_and_the_summary(sessions):
    report = json.loads((sessions[0] / 'report.json').read_text())
    assert report['subject_id'] == 'P-017' and report['session_id'] == 'S1' and report['date'] == '2026-03-02'
    assert [task['name'] for task in report['tasks']] == TASKS
    assert report['method']['symmetry_lambda'] == 3.8 and report['method']['landmark_backend'] == 'dlib'
    assert 'iBUG 300-W' in report['method']['landmark_licence']  # the model's licence in the method section
    smile = next(task for task in report['tasks'] if task['name'] == 'smile')
    assert smile['regions']['cheek']['role'] == 'primary' and smile['regions']['eye']['role'] == 'watched'
    assert 'synkinesis' in smile['regions']['eye'] and 'synkinesis' not in smile['regions']['cheek']
    summary = report['summary']
    # the sample is a smile: the cheek tasks whose cheek did not move (low_motion) are left out, and named
    excluded = {entry['task'] for entry in summary['regions']['cheek']['excluded']}
    cheek_tasks = [t for t in report['tasks'] if t['primary'] == ['cheek'] and t['name'] not in excluded]
    assert cheek_tasks and all('low_motion' in t['quality']['flags'] for t in report['tasks']
                               if t['name'] in excluded)
    mean = sum(t['regions']['cheek']['symmetry']['value'] for t in cheek_tasks) / len(cheek_tasks)
    assert summary['regions']['cheek']['value'] == pytest.approx(mean)
    # its brows never move: raise_brows says nothing, so the forehead has no mean and the index none either
    assert summary['regions']['forehead']['value'] is None
    assert summary['regions']['forehead']['excluded'] == [
        {'task': 'raise_brows', 'region': 'forehead', 'reason': 'no movement: task not done?'}]
    assert summary['facesym_index'] == {'value': None, 'reason': 'no mean SS for forehead'}
    assert {(e['task'], e['region']) for e in summary['excluded']} == {
        (e['task'], region) for region, entry in summary['regions'].items() for e in entry['excluded']}
    assert summary['baseline_task'] == 'rest' and set(summary['baseline']) == {'forehead', 'eye', 'cheek'}


def test_the_first_task_scores_like_facesym_score_on_its_frames(sessions):
    """The rest span (frames 0-8) through the report equals the core's score of those frames."""
    report = json.loads((sessions[0] / 'report.json').read_text())
    frames = list(FrameSource.open(SAMPLE_VIDEO).frames())[:9]
    direct = score_sequence(frames, pipeline_config(load_params_file()))
    rest = report['tasks'][0]
    assert rest['score']['frames'] == 9
    for region in direct.regions:
        assert rest['regions'][region.region]['vs_left'] == pytest.approx(region.vs_left, abs=1e-12)
        assert rest['regions'][region.region]['symmetry']['value'] == pytest.approx(region.symmetry, abs=1e-12)


def test_the_report_renders_in_chromium_with_every_score(sessions, tmp_path):
    page = sessions[0] / 'report.html'
    assert 'http://' not in page.read_text() and 'https://' not in page.read_text()  # self-contained
    shot = tmp_path / 'report.png'
    chromium(f'--screenshot={shot}', '--window-size=1100,2400', page.as_uri(), tmp=tmp_path)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (2400, 1100)
    assert float(image.astype(float).std()) > 20  # not blank: text, tables, pictures
    dom = chromium('--dump-dom', page.as_uri(), tmp=tmp_path).stdout
    report = json.loads((sessions[0] / 'report.json').read_text())
    assert 'P-017' in dom and 'S1' in dom and '2026-03-02' in dom
    # heat map, key frame, plot per task; the summary plot; the first page's face map
    assert dom.count('data:image/png;base64,') == 3 * len(TASKS) + 2
    for task in report['tasks']:
        row = dom.split(f'<tr id="task-{task["name"]}">')[1].split('</tr>')[0]
        assert task['name'] in row
        for region, entry in task['regions'].items():
            if entry['role'] in ('primary', 'baseline'):
                value = entry['symmetry']['value']
                assert (f'{value:.3f}' if value is not None else 'n/a') in row, (task['name'], region)
            assert f'{entry["vs_left"]:.4f}' in row and f'{entry["vs_right"]:.4f}' in row
            if 'synkinesis' in entry:
                k = entry['synkinesis']['value']
                assert (f'K {k:.3f}' if k is not None else 'K <span class="na"') in row, (task['name'], region)
    index = report['summary']['facesym_index']['value']
    assert (f'{index:.3f}' if index is not None else 'no facesym index') in dom.split('id="facesym-index"')[1][:200]


def test_compare_adds_the_trend_of_earlier_sessions(sessions, tmp_path):
    second = json.loads((sessions[1] / 'report.json').read_text())
    assert [entry['session_id'] for entry in second['history']] == ['S1', 'S2']
    page = (sessions[1] / 'report.html').read_text()
    assert 'trend across sessions' in page or 'Trend' in page
    assert page.count('data:image/png;base64,') == 3 * len(TASKS) + 3  # plus the trend plot


def test_bad_report_arguments_are_one_line_errors(tmp_path):
    cases = [
        (['--tasks', '0:1,1:2'], '2 task spans for 7 tasks'),
        (['--tasks', '0:1,x'], "task span 'x' is not START:STOP"),
        (['--tasks', '0:0.3,0.2:0.6,0.6:0.9,0.9:1.2,1.2:1.6,1.6:2.0,2.0:2.4'], 'starts at 0.2 s, before'),
        (['--tasks', '0:0.3,0.3:0.6,0.6:0.9,0.9:1.2,1.2:1.6,1.6:2.0,9:10'], "no frames in the span of task 'pucker'"),
        (['--tasks', SPANS, '--compare', str(tmp_path)], 'no report.json of an earlier session'),
        (['--tasks', SPANS, '--date', '2.3.2026'], '--date must be YYYY-MM-DD'),
    ]
    for args, message in cases:
        result = facesym('report', '--sample', '--subject', 'P', '--session', 'S', '-o', str(tmp_path / 'r'),
                         *args, check=False)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


# ----- the indicators on scores with known numbers -------------------------------------------------------

def _score(vs: dict[str, tuple[float, float]], lam: float = 3.8):
    """A ScoreResult of the core with the given VS per region (SS by the core's own formula)."""

    base = score_frames([], ScoringSettings(symmetry_lambda=lam))
    regions = tuple(RegionScore(r, left, right, symmetry_score(left, right, lam)) for r, (left, right) in vs.items())
    return dataclasses.replace(base, regions=regions, flow_pair_count=10, frame_count=11, quality=Quality())


def test_synkinesis_indicator_is_the_weaker_sides_share_and_null_when_undefined():
    assert synkinesis_indicator(0.03, 0.01, 0.001, 'eye').value == pytest.approx(0.75)
    assert synkinesis_indicator(0.02, 0.02, 0.001, 'eye').value == pytest.approx(0.5)
    tiny = synkinesis_indicator(0.0002, 0.0001, 0.001, 'eye')
    assert math.isnan(tiny.value) and 'hardly moved' in tiny.reason
    smile = load_protocol().task('smile')
    # the patient's right cheek moves less: right is weaker; the right eye co-moves more than the left
    task = score_task(smile, _score({'forehead': (0.0, 0.0), 'eye': (0.01, 0.03), 'cheek': (0.06, 0.02)}),
                      SessionSettings())
    assert task.weaker_side == 'right'
    assert task.region('eye').synkinesis.value == pytest.approx(0.75)
    assert math.isnan(task.region('forehead').synkinesis.value)
    assert task.region('cheek').symmetry.value == pytest.approx(1 - 3.8 * 0.04)


def test_a_missing_score_is_left_out_of_the_mean_and_named(tmp_path):
    protocol = load_protocol()
    good = _score({'forehead': (0.02, 0.01), 'eye': (0.03, 0.02), 'cheek': (0.05, 0.03)})
    empty = score_frames([], ScoringSettings())  # no frame pair with flow: NaN everywhere, flagged
    tasks = [TaskResult(task, empty if task.name == 'smile' else good, MotionTrace.from_motions([]))
             for task in protocol.tasks]
    summary = summarize([score_task(t.task, t.score, SessionSettings()) for t in tasks])
    # the smile is left out of the cheek's mean, and named with its reason; the other cheek tasks count
    assert summary.region_means['cheek'].value == pytest.approx(1 - 3.8 * 0.02)
    assert [(e.task, e.region, e.reason) for e in summary.excluded] == [('smile', 'cheek', 'too few frames')]
    assert summary.region_means['eye'].value == pytest.approx(1 - 3.8 * 0.01)
    # a region whose every score is void has no mean, and then the index has none
    only_smile = summarize([score_task(t.task, t.score, SessionSettings()) for t in tasks
                            if t.task.name not in ('snarl', 'pucker')])
    assert math.isnan(only_smile.region_means['cheek'].value) and 'smile' in only_smile.region_means['cheek'].reason
    assert math.isnan(only_smile.index.value) and 'cheek' in only_smile.index.reason
    report = build_session_report(tasks, SessionInfo('P', 'S', '2026-01-01', SessionSettings()))
    page = write_session_report(tmp_path, report)
    payload = json.loads((tmp_path / 'report.json').read_text())
    smile = next(t for t in payload['tasks'] if t['name'] == 'smile')
    assert smile['regions']['cheek']['symmetry'] == {'value': None,
                                                     'reason': 'no frame pair with optical flow: no score'}
    assert payload['summary']['excluded'] == [{'task': 'smile', 'region': 'cheek', 'reason': 'too few frames'}]
    assert 'too_few_frames' in smile['quality']['flags']
    text = page.read_text()
    assert 'no frame pair with optical flow' in text and '1.000' not in text.split('id="task-smile"')[1][:400]


def test_baseline_subtraction_only_when_the_setting_says_so():
    protocol = load_protocol()
    rest = _score({'forehead': (0.01, 0.0), 'eye': (0.0, 0.0), 'cheek': (0.02, 0.0)})
    smile = _score({'forehead': (0.01, 0.0), 'eye': (0.0, 0.0), 'cheek': (0.06, 0.01)})
    pairs = [(protocol.task('rest'), rest), (protocol.task('smile'), smile)]
    plain = score_task(*pairs[1], SessionSettings())
    subtracted = score_task(*pairs[1], SessionSettings(subtract_baseline=True), baseline=rest)
    assert plain.region('cheek').symmetry.value == pytest.approx(1 - 3.8 * 0.05)
    assert subtracted.region('cheek').vs_left == pytest.approx(0.04)
    assert subtracted.region('cheek').symmetry.value == pytest.approx(1 - 3.8 * 0.03)
    assert subtracted.baseline_subtracted and not plain.baseline_subtracted
    assert np.isclose(subtracted.region('forehead').vs_left, 0.0)
