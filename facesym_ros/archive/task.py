"""One input of an archive scored on a worker, by the calls the single-input commands make.

A bag is scored as `facesym score-bag BAG` scores it (score_bag with its defaults: the recorded trial markers,
else the whole bag), a session bag as `facesym session --from-bag BAG` (session_bag_report: the recorded
protocol and date), a video as `facesym score VIDEO` (score_video). The task reads its input and returns its
rows and report files; it writes nothing, so running it again (a worker lost mid-task) changes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from facesym_ros import __version__
from facesym_ros.archive.inputs import BAG, SESSION_BAG, VIDEO
from facesym_ros.core.pipeline import PipelineSettings
from facesym_ros.core.scoring import QualityFlag, ScoreResult

ROW_COLUMNS = (
    'source', 'input_kind', 'source_size', 'source_mtime_ns', 'subject_id', 'session_id', 'task', 'trial_id',
    'first_stamp_ns', 'last_stamp_ns', 'frames', 'flow_pairs', 'region', 'vs_left', 'vs_right', 'symmetry',
    'lambda', 'threshold_factor', 'quality_flags', 'quality_bits', 'quality_notes', 'input_problems', 'report',
    'software', 'settings_hash', 'method')
"""A row of trials.parquet and trials.csv: one trial and region of one input (docs/archive.md says each)."""


def settings_hash(config: PipelineSettings) -> str:
    """The method's fingerprint: the software version and every setting the inputs are scored with."""
    text = json.dumps({'software': f'facesym_ros {__version__}', 'pipeline': dataclasses.asdict(config)},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class InputResult:
    """What a worker gives back for one input: its rows, or the one-line reason it could not be scored."""

    source: str
    kind: str
    rows: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # a session's report.html and report.json
    session: tuple[str, str] | None = None  # (subject, session) of a session bag
    error: str = ''


def one_line(error: BaseException) -> str:
    text = ' '.join(str(error).split())
    return text or type(error).__name__


def score_input(source: str, kind: str, config: PipelineSettings, method_hash: str) -> InputResult:
    """Score one input on a worker; any error of the input is the result's error, never raised."""
    try:
        return _score(source, kind, config, method_hash)
    except Exception as error:  # a bad input is a failures row, never the end of the run
        return InputResult(source, kind, error=one_line(error))


ONE_THREAD = 0
"""read_ahead of every task: the archive's parallelism is across inputs, one input a core (a worker process of
one thread each), so a task reads, observes and measures in one thread and OpenCV uses one thread. The scores are
those of score-bag, facesym score and session --from-bag bit for bit (they are the same with and without the
reading thread)."""


def _one_thread() -> None:
    import cv2

    if cv2.getNumThreads() != 1:
        cv2.setNumThreads(1)


def _score(source: str, kind: str, config: PipelineSettings, method_hash: str) -> InputResult:
    _one_thread()
    if kind == VIDEO:
        from facesym_ros.core.pipeline import score_video

        scored = score_video(source, config, read_ahead=ONE_THREAD)
        result = InputResult(source, VIDEO)
        result.rows = score_rows(scored.score, result, method_hash)
        return result
    if kind != BAG:
        raise ValueError(f'unknown input kind {kind!r}')
    if _is_session_bag(source):
        from facesym_ros.clinic.report_html import session_report_files
        from facesym_ros.clinic.session_bag import session_bag_report

        scored, report = session_bag_report(source, config, read_ahead=ONE_THREAD)
        result = InputResult(source, SESSION_BAG, problems=list(scored.problems),
                             files=session_report_files(report),
                             session=(scored.record.subject_id, scored.record.session_id))
        for task in scored.tasks:
            result.rows += score_rows(task.score, result, method_hash)
        return result
    from facesym_ros.bag.score import score_bag
    from facesym_ros.bag.storage import open_bag

    with open_bag(Path(source)) as bag:
        report = score_bag(bag, config, read_ahead=ONE_THREAD)
    result = InputResult(source, BAG, problems=list(report.problems))
    for score in report.scores:
        result.rows += score_rows(score, result, method_hash)
    return result


def _is_session_bag(source: str) -> bool:
    from facesym_ros.bag.storage import open_bag
    from facesym_ros.clinic.session_record import SESSION_INFO_TOPIC

    with open_bag(Path(source)) as bag:
        return any(topic.base_name == SESSION_INFO_TOPIC for topic in bag.topics.values())


def score_rows(score: ScoreResult, result: InputResult, method_hash: str) -> list[dict]:
    """One row per region of a trial's score (NaN, no score: None). Identity and report are the driver's."""
    method = json.loads(score.method) if score.method else {}
    common = {
        'source': result.source, 'input_kind': result.kind, 'subject_id': score.labels.subject_id,
        'session_id': score.labels.session_id, 'task': score.labels.task, 'trial_id': score.trial_id,
        'first_stamp_ns': score.first_stamp_ns, 'last_stamp_ns': score.last_stamp_ns, 'frames': score.frame_count,
        'flow_pairs': score.flow_pair_count, 'lambda': score.symmetry_lambda,
        'threshold_factor': score.threshold_factor,
        'quality_flags': '|'.join(flag.name.lower() for flag in QualityFlag if flag in score.quality.flags),
        'quality_bits': int(score.quality.flags), 'quality_notes': ' | '.join(score.quality.notes),
        'input_problems': ' | '.join(result.problems), 'software': method.get('software', ''),
        'settings_hash': method_hash, 'method': score.method}
    return [{**common, 'region': region.region, 'vs_left': _value(region.vs_left),
             'vs_right': _value(region.vs_right), 'symmetry': _value(region.symmetry)} for region in score.regions]


def _value(number: float) -> float | None:
    return None if math.isnan(number) else number
