"""`facesym calibrate`: λ recovered from grades made with a known λ; degenerate grades refused with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facesym_ros.clinic.calibrate import calibrate, fit_lambda, params_with_lambda, read_grades
from facesym_ros.config.files import default_params_file
from facesym_ros.config.params import load_params_file
from helpers.cli import facesym


def write_grades(folder: Path, lambdas: dict[str, float], rows: int = 40, noise: float = 0.03,
                 seed: int = 1) -> Path:
    """Score JSON files (the `facesym score --json` shape) and expert grades 1 - λ d + noise, clamped like a grade."""
    rng = np.random.default_rng(seed)
    lines = ['score_json,region,expert_ss']
    for index in range(rows):
        regions = {}
        for region in ('forehead', 'eye', 'cheek'):
            right = float(rng.uniform(0.0, 0.05))
            left = right + float(rng.uniform(0.0, 0.3))
            regions[region] = {'vs_left': left, 'vs_right': right, 'symmetry': None}
        file = folder / f'score_{index:03d}.json'
        file.write_text(json.dumps({'frames': 72, 'lambda': 3.8, 'regions': regions}))
        for region, lam in lambdas.items():
            d = regions[region]['vs_left'] - regions[region]['vs_right']
            grade = float(np.clip(1.0 - lam * d + rng.normal(0.0, noise), 0.0, 1.0))
            lines.append(f'{file.name},{region},{grade:.4f}')
    grades = folder / 'grades.csv'
    grades.write_text('\n'.join(lines) + '\n')
    return grades


def test_one_lambda_is_recovered_within_its_interval(tmp_path):
    grades = write_grades(tmp_path, {'forehead': 4.5, 'eye': 4.5, 'cheek': 4.5})
    rows = read_grades(grades)
    fit = fit_lambda(rows)
    print(f'true λ 4.5: fitted {fit.symmetry_lambda:.3f}, 95% interval {fit.low:.3f} .. {fit.high:.3f}, '
          f'{fit.rows_used} of {fit.rows_total} rows')
    assert fit.low <= 4.5 <= fit.high
    assert fit.high - fit.low < 0.5
    assert fit.rows_used < fit.rows_total  # grades clamped at 0 are left out
    assert fit_lambda(rows) == fit  # fixed seed: the same interval every time


def test_per_region_lambdas_are_recovered(tmp_path):
    truth = {'forehead': 2.5, 'eye': 4.0, 'cheek': 6.0}
    fits = calibrate(read_grades(write_grades(tmp_path, truth, noise=0.02)), per_region=True)
    for fit in fits:
        print(f'{fit.label}: true {truth[fit.label]}, fitted {fit.symmetry_lambda:.3f} '
              f'({fit.low:.3f} .. {fit.high:.3f}, {fit.rows_used} rows)')
        assert fit.low <= truth[fit.label] <= fit.high
    assert [fit.label for fit in fits] == ['forehead', 'eye', 'cheek']


def test_calibrate_writes_a_parameter_file_the_scorer_reads(tmp_path):
    grades = write_grades(tmp_path, {'cheek': 5.0})
    out = tmp_path / 'params.yaml'
    result = facesym('calibrate', str(grades), '--output', str(out))
    assert result.returncode == 0, result.stderr
    assert 'cheek' not in result.stdout.split('\n', 2)[2] or 'all' in result.stdout
    lam = load_params_file(out)['symmetry_scorer']['symmetry_lambda']
    assert 4.5 < lam < 5.5
    original = default_params_file().read_text().splitlines()
    written = out.read_text().splitlines()
    assert len(written) == len(original) + 1  # one comment line added, one value changed, nothing else
    assert sum(a != b for a, b in zip(original, [w for w in written if 'fitted by facesym calibrate' not in w],
                                      strict=True)) == 1
    score = facesym('score', '--sample', '--params-file', str(out), '--json', str(tmp_path / 'score.json'))
    assert score.returncode == 0, score.stderr
    assert json.loads((tmp_path / 'score.json').read_text())['lambda'] == lam


def test_a_file_without_the_parameter_gets_it_added():
    text = params_with_lambda('optical_flow:\n  ros__parameters:\n    threshold_factor: 6.0\n', 4.2, 'fitted')
    assert 'symmetry_scorer:\n  ros__parameters:\n    # fitted\n    symmetry_lambda: 4.2' in text
    text = params_with_lambda('symmetry_scorer:\n  ros__parameters:\n    max_head_motion: 0.3\n', 4.2, 'fitted')
    assert text.splitlines()[2:4] == ['    # fitted', '    symmetry_lambda: 4.2']


def _csv(folder: Path, grades: list[float], ds: list[float]) -> Path:
    lines = []
    for index, (grade, d) in enumerate(zip(grades, ds, strict=True)):
        file = folder / f's{index}.json'
        file.write_text(json.dumps({'regions': {'eye': {'vs_left': 0.01 + d, 'vs_right': 0.01, 'symmetry': 1.0}}}))
        lines.append(f'{file.name},eye,{grade}')
    path = folder / 'grades.csv'
    path.write_text('\n'.join(lines) + '\n')
    return path


@pytest.mark.parametrize(('grades', 'ds', 'message'), [
    ([0.9, 0.8, 0.7, 0.6], [0.02, 0.05, 0.08, 0.1], 'only 4 usable rows'),
    ([1.0, 1.0, 0.0, 0.0, 0.5, 0.6, 0.7], [0.0, 0.01, 0.3, 0.4, 0.1, 0.1, 0.08], 'only 3 usable rows'),
    ([0.8] * 6, [0.02, 0.05, 0.08, 0.1, 0.12, 0.03], 'expert grades do not vary'),
    ([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [0.05] * 6, 'does not vary'),
    ([0.9, 0.8, 0.7, 1.2, 0.5], [0.05] * 5, 'expert SS must be a number in [0, 1]'),
])
def test_degenerate_grades_are_refused_with_the_reason(tmp_path, grades, ds, message):
    result = facesym('calibrate', str(_csv(tmp_path, grades, ds)))
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('facesym calibrate: error:') and message in lines[0], lines


def test_bad_rows_name_the_line(tmp_path):
    (tmp_path / 'g.csv').write_text('missing.json,eye,0.5\n')
    result = facesym('calibrate', str(tmp_path / 'g.csv'))
    assert result.returncode == 2 and 'line 1: missing.json: no such score file' in result.stderr
    (tmp_path / 's.json').write_text(json.dumps({'regions': {'eye': {'vs_left': 0.1, 'vs_right': 0.0}}}))
    (tmp_path / 'g.csv').write_text('s.json,eyes,0.5\n')
    result = facesym('calibrate', str(tmp_path / 'g.csv'))
    assert result.returncode == 2 and "line 1: unknown region 'eyes'" in result.stderr
    result = facesym('calibrate', str(tmp_path / 'g.csv'), '--per-region', '--output', str(tmp_path / 'p.yaml'))
    assert result.returncode == 2 and 'scorer has one' in result.stderr


def test_rows_can_name_tasks_of_a_session_report(tmp_path):
    """A session's report.json: the row names a task; its primary region's raw VS are used."""
    rng = np.random.default_rng(3)
    lines = []
    for index in range(8):
        d = 0.02 + 0.02 * index
        report = {'report': 'facesym session', 'session_id': f'S{index}', 'tasks': [
            {'name': 'smile', 'primary': ['cheek'],
             'score': {'regions': {'cheek': {'vs_left': 0.01 + d, 'vs_right': 0.01}}}}]}
        (tmp_path / f'r{index}.json').write_text(json.dumps(report))
        lines.append(f'r{index}.json,smile,{1 - 3.0 * d + rng.normal(0, 0.01):.4f}')
    (tmp_path / 'g.csv').write_text('\n'.join(lines) + '\n')
    rows = read_grades(tmp_path / 'g.csv')
    assert {row.region for row in rows} == {'cheek'}
    assert fit_lambda(rows).symmetry_lambda == pytest.approx(3.0, abs=0.15)
