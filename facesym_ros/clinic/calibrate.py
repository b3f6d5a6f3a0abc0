"""λ of SS = 1 - λ d (d = |VS_left - VS_right|) fitted to expert grades.

The paper fixes λ = 3.8 for its camera, face size and threshold; another rig
needs its own. An expert grades the symmetry of scored recordings on the SS
scale; each row of GRADES.csv names a score file (a `facesym score --json`
file, or a session's report.json), what in it was graded (a region, or a task
of a session, optionally `task:region`), and the expert's SS in [0, 1].

Only rows whose expert grade is strictly between 0 and 1 are fitted: SS is
clamped, so a grade of 0 or 1 says only that 1 - λ d is at or beyond the
clamp, not where, and a straight-line fit to it would pull λ towards the
clamp. The fit is least squares on the unclamped line through the origin,
1 - SS = λ d, so λ = Σ d (1 - SS) / Σ d². Its 95% interval comes from a
bootstrap over rows (percentiles of 2000 resamples, fixed seed, so the same
grades always give the same interval). The fit is refused when fewer than
MIN_ROWS rows are usable, or when the grades or d do not vary: then the data
cannot tell λ from noise.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facesym_ros.config.params import owner_of
from facesym_ros.core.regions import REGION_NAMES
from facesym_ros.core.scoring import ScoringSettings

MIN_ROWS = 5
BOOTSTRAP_SAMPLES = 2000
SEED = 0
LAMBDA_MAX = next(f.metadata['max'] for f in ScoringSettings.__dataclass_fields__.values()
                  if f.name == 'symmetry_lambda')


@dataclass(frozen=True)
class GradeRow:
    line: int
    source: str
    target: str
    region: str
    vs_left: float
    vs_right: float
    expert: float

    @property
    def d(self) -> float:
        return abs(self.vs_left - self.vs_right)


@dataclass(frozen=True)
class LambdaFit:
    label: str  # a region, or 'all'
    symmetry_lambda: float
    low: float
    high: float
    rows_used: int
    rows_total: int
    rmse: float  # of the fitted SS against the expert grades, usable rows


def _region_entry(payload: dict, target: str, where: str) -> tuple[str, dict]:
    """(region, {'vs_left', 'vs_right'}) that `target` names in a score or session report payload."""
    if payload.get('report') == 'facesym session':
        task_name, _, region = target.partition(':')
        task = next((t for t in payload.get('tasks', []) if t.get('name') == task_name), None)
        if task is None:
            names = ', '.join(t.get('name', '?') for t in payload.get('tasks', []))
            raise ValueError(f'{where}: no task {task_name!r} in this session report (tasks: {names})')
        if not region:
            if len(task['primary']) != 1:
                raise ValueError(f'{where}: task {task_name!r} has several primary regions; '
                                 f'write {task_name}:REGION')
            region = task['primary'][0]
        regions = task['score']['regions']  # the raw VS of the scorer, before any baseline subtraction
    else:
        region = target
        regions = payload.get('regions')
        if not isinstance(regions, dict):
            raise ValueError(f'{where}: not a facesym score JSON (no regions) nor a session report.json')
    if region not in REGION_NAMES or region not in regions:
        raise ValueError(f'{where}: unknown region {region!r} (regions: {", ".join(REGION_NAMES)})')
    return region, regions[region]


def read_grades(path: str | Path) -> list[GradeRow]:
    """The rows of GRADES.csv (SCORE_JSON, REGION or TASK[:REGION], EXPERT_SS), with each row's VS looked up.

    A first line whose third field is not a number is a header. Relative paths
    are relative to the CSV's folder.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f'{path}: cannot read the grades: {error.strerror or error}') from None
    rows: list[GradeRow] = []
    payloads: dict[Path, dict] = {}
    for line, fields in enumerate(csv.reader(text.splitlines()), start=1):
        if not fields or all(not f.strip() for f in fields) or fields[0].lstrip().startswith('#'):
            continue
        where = f'{path} line {line}'
        if len(fields) != 3:
            raise ValueError(f'{where}: expected 3 fields (score JSON, region or task, expert SS), got {len(fields)}')
        source, target, grade = (f.strip() for f in fields)
        try:
            expert = float(grade)
        except ValueError:
            if not rows and line == 1:
                continue  # a header
            raise ValueError(f'{where}: expert SS must be a number in [0, 1], got {grade!r}') from None
        if not 0.0 <= expert <= 1.0:
            raise ValueError(f'{where}: expert SS must be a number in [0, 1], got {grade!r}')
        file = Path(source) if Path(source).is_absolute() else path.parent / source
        if file not in payloads:
            try:
                payloads[file] = json.loads(file.read_text())
            except FileNotFoundError:
                raise ValueError(f'{where}: {source}: no such score file') from None
            except (OSError, json.JSONDecodeError) as error:
                raise ValueError(f'{where}: {source}: cannot read it as JSON: {error}') from None
        region, entry = _region_entry(payloads[file], target, where)
        vs_left, vs_right = entry.get('vs_left'), entry.get('vs_right')
        rows.append(GradeRow(line, source, target, region, math.nan if vs_left is None else float(vs_left),
                             math.nan if vs_right is None else float(vs_right), expert))
    if not rows:
        raise ValueError(f'{path}: no grade rows')
    return rows


def usable(rows: list[GradeRow]) -> list[GradeRow]:
    """Rows the fit uses: expert grade strictly inside (0, 1) and a VS on both sides."""
    return [row for row in rows if 0.0 < row.expert < 1.0 and math.isfinite(row.d)]


def fit_lambda(rows: list[GradeRow], label: str = 'all', *, seed: int = SEED,
               samples: int = BOOTSTRAP_SAMPLES) -> LambdaFit:
    """Least-squares λ on the unclamped line and its bootstrap 95% interval; ValueError when not identifiable."""
    used = usable(rows)
    where = '' if label == 'all' else f' for the {label}'
    if len(used) < MIN_ROWS:
        raise ValueError(f'only {len(used)} usable rows{where} (expert SS strictly between 0 and 1, VS known) '
                         f'of {len(rows)}; at least {MIN_ROWS} are needed to fit λ')
    d = np.array([row.d for row in used])
    y = 1.0 - np.array([row.expert for row in used])
    if np.ptp(y) == 0.0:
        raise ValueError(f'the expert grades{where} do not vary (all {used[0].expert:g} in {len(used)} rows): '
                         'λ cannot be told from noise')
    if np.ptp(d) == 0.0:
        raise ValueError(f'd = |VS_left - VS_right|{where} does not vary (all {d[0]:.4g} in {len(used)} rows): '
                         'λ cannot be told from noise')
    lam = float(d @ y / (d @ d))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(used), size=(samples, len(used)))
    dd, yy = d[picks], y[picks]
    denominator = (dd * dd).sum(axis=1)
    keep = denominator > 0
    boot = (dd * yy).sum(axis=1)[keep] / denominator[keep]
    low, high = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
    if not 0.0 <= lam <= LAMBDA_MAX:
        raise ValueError(f'fitted λ {lam:.4g}{where} is outside the scorer\'s range 0 .. {LAMBDA_MAX:g}')
    rmse = float(np.sqrt(np.mean((1.0 - lam * d - (1.0 - y)) ** 2)))
    return LambdaFit(label, lam, low, high, len(used), len(rows), rmse)


def calibrate(rows: list[GradeRow], per_region: bool = False) -> list[LambdaFit]:
    """One λ for all rows, or one per region graded."""
    if not per_region:
        return [fit_lambda(rows)]
    regions = [region for region in REGION_NAMES if any(row.region == region for row in rows)]
    return [fit_lambda([row for row in rows if row.region == region], region) for region in regions]


def params_with_lambda(template: str, symmetry_lambda: float, comment: str) -> str:
    """The parameter file text with symmetry_scorer's symmetry_lambda set (added if the file lacks it).

    Edited as text, so every other line and comment of the file stays as it was.
    """
    lines = template.splitlines()
    nodes: list[str | None] = []
    node = None
    for line in lines:
        if line and not line[0].isspace() and not line.startswith('#') and line.rstrip().endswith(':'):
            node = line.rstrip()[:-1].strip().split('/')[-1]
        nodes.append(node)
    scorer = owner_of(ScoringSettings)
    in_scorer = [i for i, n in enumerate(nodes) if n == scorer]
    value = f'symmetry_lambda: {symmetry_lambda!r}'
    target = next((i for i in in_scorer if lines[i].strip().startswith('symmetry_lambda:')), None)
    if target is not None:
        indent = lines[target][:len(lines[target]) - len(lines[target].lstrip())]
        lines[target:target + 1] = [f'{indent}# {comment}', f'{indent}{value}']
        return '\n'.join(lines) + '\n'
    params = next((i for i in in_scorer if lines[i].strip() == 'ros__parameters:'), None)
    if params is not None:
        indent = lines[params][:len(lines[params]) - len(lines[params].lstrip())] + '  '
        lines[params + 1:params + 1] = [f'{indent}# {comment}', f'{indent}{value}']
        return '\n'.join(lines) + '\n'
    return '\n'.join([*lines, '', f'{scorer}:', '  ros__parameters:', f'    # {comment}',
                      f'    {value}']) + '\n'
