"""Per-task scores of an assessment session and the session's summary.

For each task the protocol names the primary region(s), the ones the
movement is made with, and the watched regions. From the task's ScoreResult:

- primary-region SS, exactly the paper's SS = 1 - lambda |VS_left - VS_right|,
  clamped to [0, 1];
- VS of both sides in every region;
- the weaker side: the side whose primary region(s) moved less (summed VS);
- per watched region W, the synkinesis indicator
      K = VS_W(weaker side) / (VS_W(weaker side) + VS_W(stronger side)),
  in [0, 1]. 0.5: W moves alike on both sides; above 0.5 it moves more on the
  side that is weaker in the task's movement, the pattern of synkinesis; 1:
  only the weaker side's W moves. It is undefined (null, with the reason)
  when there is no weaker side (primary VS equal or missing), when W has no
  score, or when W hardly moved on either side (VS_left + VS_right below
  `min_comovement`): a ratio of two near-zero numbers says nothing.

The session summary: per region, the mean primary SS of the tasks that
target it (the rest task excluded), and the facesym index, the mean of the
three region means. The rest task's SS is the baseline asymmetry, reported,
and subtracted only when the protocol's `subtract_baseline` says so (then
every task's VS of a region side is reduced by the rest task's, never below
0, before SS and K are computed). A score that cannot be computed stays NaN
(null in JSON) with its reason; it never becomes 1.0.

Every mean leaves out, and names, each score that means nothing: one without
a number, and one whose flags say so (core.flags.void_reason: a flag that
voids the whole score, or low motion in that region). The summary lists each
one left out (`excluded`: task, region, reason); a mean with nothing left is
NaN with the reasons, and so is the index when a region mean is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from facesym_ros.clinic.protocol import ProtocolTask, SessionSettings
from facesym_ros.core.flags import void_reason
from facesym_ros.core.regions import REGION_NAMES
from facesym_ros.core.scoring import QualityFlag, ScoreResult, symmetry_score

SIDES = ('left', 'right')
INDEX_FORMULA = ('facesym index = mean over forehead, eye and cheek of the mean primary-region SS of the tasks '
                 'that target the region (rest excluded)')
NO_SS_COUNTS = 'no SS that means something: '  # a region mean whose every score was left out
SYNKINESIS_FORMULA = 'K = VS_watched(weaker side) / (VS_watched(weaker side) + VS_watched(stronger side))'


@dataclass(frozen=True)
class Measure:
    """A number, or NaN with the reason it could not be computed."""

    value: float
    reason: str = ''

    @property
    def missing(self) -> bool:
        return math.isnan(self.value)

    def to_json(self) -> dict:
        return {'value': None if self.missing else self.value, 'reason': self.reason if self.missing else ''}


@dataclass(frozen=True)
class RegionResult:
    region: str
    role: str  # primary | watched | other | baseline
    vs_left: float
    vs_right: float
    symmetry: Measure
    synkinesis: Measure | None = None  # watched regions only


@dataclass(frozen=True)
class TaskScore:
    task: ProtocolTask
    score: ScoreResult
    regions: tuple[RegionResult, ...]
    weaker_side: str | None
    weaker_reason: str
    baseline_subtracted: bool

    def region(self, name: str) -> RegionResult:
        return next(region for region in self.regions if region.region == name)

    @property
    def quality_words(self) -> list[str]:
        return list(self.score.quality.notes)

    def void(self, region: str) -> str | None:
        """Why the region's SS of this task means nothing (core/flags.py void_reason), or None when it stands."""
        return void_reason(self.score, region)

    @property
    def quality_flags(self) -> list[str]:
        return [flag.name.lower() for flag in QualityFlag if flag in self.score.quality.flags]


@dataclass(frozen=True)
class Excluded:
    """A task's SS of a region that a mean left out, and why."""

    task: str
    region: str
    reason: str

    def to_json(self) -> dict:
        return {'task': self.task, 'region': self.region, 'reason': self.reason}


@dataclass(frozen=True)
class SessionSummary:
    region_means: dict[str, Measure]
    region_tasks: dict[str, tuple[str, ...]]
    """The tasks whose SS of each region is in its mean (those left out are in `excluded`)."""
    index: Measure
    baseline: dict[str, Measure]  # the rest task's SS per region (empty without a rest task)
    baseline_task: str | None
    excluded: tuple[Excluded, ...] = ()
    """Every task's SS that a region mean (and so the index) left out, with the reason."""

    def excluded_from(self, region: str) -> tuple[Excluded, ...]:
        return tuple(entry for entry in self.excluded if entry.region == region)

    @property
    def left_out(self) -> dict[str, tuple[tuple[str, str], ...]]:
        """Per region, (task, reason) of each score its mean left out."""
        return {region: tuple((e.task, e.reason) for e in self.excluded_from(region)) for region in self.region_means}


def _missing_reason(score: ScoreResult, region: str) -> str:
    notes = [note for note in score.quality.notes if region in note or 'no score' in note]
    return '; '.join(notes or score.quality.notes) or f'no score for {region}'


def _role(task: ProtocolTask, region: str) -> str:
    if task.baseline:
        return 'baseline'
    if region in task.primary:
        return 'primary'
    return 'watched' if region in task.watch else 'other'


def _side_vs(score: ScoreResult, baseline: ScoreResult | None) -> dict[tuple[str, str], float]:
    vs = {}
    for region in REGION_NAMES:
        raw = score.region(region)
        for side, value in zip(SIDES, (raw.vs_left, raw.vs_right), strict=True):
            rest = getattr(baseline.region(region), f'vs_{side}') if baseline is not None else 0.0
            # (max(0.0, nan) would be 0.0: a missing VS must stay missing)
            vs[(region, side)] = math.nan if math.isnan(value) or math.isnan(rest) else max(0.0, value - rest)
    return vs


def weaker_side(task: ProtocolTask, vs: dict[tuple[str, str], float]) -> tuple[str | None, str]:
    """The side whose primary region(s) moved less in the task, or None and the reason."""
    totals = {side: sum(vs[(region, side)] for region in task.primary) for side in SIDES}
    if any(math.isnan(total) for total in totals.values()):
        return None, f'no VS for the primary region ({", ".join(task.primary)})'
    if totals['left'] == totals['right'] == 0.0:
        return None, f'the primary region ({", ".join(task.primary)}) did not move: no weaker side'
    if totals['left'] == totals['right']:
        return None, 'the primary region moved equally on both sides: no weaker side'
    return min(SIDES, key=totals.__getitem__), ''


def synkinesis_indicator(vs_weaker: float, vs_stronger: float, min_comovement: float, region: str) -> Measure:
    """K for one watched region (see the module docstring); NaN with the reason when undefined."""
    if math.isnan(vs_weaker) or math.isnan(vs_stronger):
        return Measure(math.nan, f'no VS for {region}')
    total = vs_weaker + vs_stronger
    if total < min_comovement or total <= 0.0:
        return Measure(math.nan, f'{region} hardly moved (VS left + right {total:.4g} < {min_comovement:g}): '
                                 'no co-movement to compare')
    return Measure(vs_weaker / total)


def score_task(task: ProtocolTask, score: ScoreResult, settings: SessionSettings,
               baseline: ScoreResult | None = None) -> TaskScore:
    """The task's indicators from its ScoreResult; `baseline` (the rest task's) only if it is subtracted."""
    subtract = settings.subtract_baseline and baseline is not None and not task.baseline
    vs = _side_vs(score, baseline if subtract else None)
    weaker, weaker_reason = (None, 'rest: no movement asked for') if task.baseline else weaker_side(task, vs)
    regions = []
    for region in REGION_NAMES:
        left, right = vs[(region, 'left')], vs[(region, 'right')]
        ss = symmetry_score(left, right, score.symmetry_lambda) if subtract else score.region(region).symmetry
        symmetry = Measure(ss, _missing_reason(score, region) if math.isnan(ss) else '')
        role = _role(task, region)
        synkinesis = None
        if role == 'watched':
            if weaker is None:
                synkinesis = Measure(math.nan, weaker_reason)
            else:
                stronger = 'right' if weaker == 'left' else 'left'
                synkinesis = synkinesis_indicator(vs[(region, weaker)], vs[(region, stronger)],
                                                  settings.min_comovement, region)
        regions.append(RegionResult(region, role, left, right, symmetry, synkinesis))
    return TaskScore(task, score, tuple(regions), weaker, weaker_reason, subtract)


def score_session(tasks: Sequence[tuple[ProtocolTask, ScoreResult]], settings: SessionSettings) -> list[TaskScore]:
    """Every task's indicators; the rest task's score is the baseline when the settings subtract it."""
    baseline = next((score for task, score in tasks if task.baseline), None)
    if settings.subtract_baseline and baseline is None:
        raise ValueError('subtract_baseline is set, but the session has no baseline (rest) task')
    return [score_task(task, score, settings, baseline) for task, score in tasks]


def left_out_because(task_score: TaskScore, region: str) -> str | None:
    """Why a task's SS of `region` stays out of every mean (core.flags.void_reason, or why it has no number);
    None when it counts."""
    symmetry = task_score.region(region).symmetry
    reason = task_score.void(region)
    if reason is None and symmetry.missing:
        reason = symmetry.reason or 'no score'
    return reason


def summarize(task_scores: Sequence[TaskScore]) -> SessionSummary:
    """Per-region mean primary SS and the facesym index (INDEX_FORMULA), over the scores that mean something:
    each one left out is named in `excluded` with its reason; a mean with none left is NaN with the reasons."""
    means: dict[str, Measure] = {}
    targeting: dict[str, tuple[str, ...]] = {}
    excluded: list[Excluded] = []
    for region in REGION_NAMES:
        tasks = [ts for ts in task_scores if not ts.task.baseline and region in ts.task.primary]
        kept = []
        for ts in tasks:
            reason = left_out_because(ts, region)
            if reason is None:
                kept.append(ts)
            else:
                excluded.append(Excluded(ts.task.name, region, reason))
        targeting[region] = tuple(ts.task.name for ts in tasks)
        counted = [ts.region(region).symmetry.value for ts in kept]
        if not tasks:
            means[region] = Measure(math.nan, f'no task targets the {region}')
        elif not counted:
            means[region] = Measure(math.nan, NO_SS_COUNTS + '; '.join(
                f'{entry.task}: {entry.reason}' for entry in excluded if entry.region == region))
        else:
            means[region] = Measure(sum(counted) / len(counted))
    missing_regions = [region for region, mean in means.items() if mean.missing]
    if missing_regions:
        index = Measure(math.nan, 'no mean SS for ' + ', '.join(missing_regions))
    else:
        index = Measure(sum(mean.value for mean in means.values()) / len(means))
    rest = next((ts for ts in task_scores if ts.task.baseline), None)
    baseline = {region: rest.region(region).symmetry for region in rest.task.primary} if rest else {}
    return SessionSummary(means, targeting, index, baseline, rest.task.name if rest else None, tuple(excluded))


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value


def task_json(task_score: TaskScore) -> dict:
    """A task's indicators as report.json holds them (NaN: null plus the reason)."""
    task = task_score.task
    regions = {}
    for region in task_score.regions:
        entry = {'role': region.role, 'vs_left': _number(region.vs_left), 'vs_right': _number(region.vs_right),
                 'symmetry': region.symmetry.to_json()}
        if region.synkinesis is not None:
            entry['synkinesis'] = region.synkinesis.to_json()
        regions[region.region] = entry
    return {
        'name': task.name, 'instruction': task.instruction,
        'duration': task.duration, 'primary': list(task.primary), 'watch': list(task.watch),
        'baseline': task.baseline,
        'weaker_side': task_score.weaker_side, 'weaker_side_reason': task_score.weaker_reason,
        'baseline_subtracted': task_score.baseline_subtracted,
        'regions': regions,
        'quality': {'flags': task_score.quality_flags, 'notes': task_score.quality_words},
        'score': task_score.score.to_json_dict(),
    }


def summary_json(summary: SessionSummary) -> dict:
    return {
        'regions': {region: {**mean.to_json(), 'tasks': list(summary.region_tasks[region]),
                             'excluded': [entry.to_json() for entry in summary.excluded_from(region)]}
                    for region, mean in summary.region_means.items()},
        'excluded': [entry.to_json() for entry in summary.excluded],
        'facesym_index': summary.index.to_json(),
        'index_formula': INDEX_FORMULA,
        'synkinesis_formula': SYNKINESIS_FORMULA,
        'baseline_task': summary.baseline_task,
        'baseline': {region: measure.to_json() for region, measure in summary.baseline.items()},
    }
