"""A recorded live session scored again: `facesym session --from-bag BAG`, and the pictures of a live report.

The session bag holds the camera images, the scorer's trial events (each
START names its task, session and subject) and the session record (subject,
session, protocol text, how the session ended) on session_info. The images
go through `score-bag`'s pass (the same core, the same trial marks by stamp),
and each task's frames are collected for the report's heat map, key frame and
motion plot. The live session uses the same pass for its pictures and keeps
the scores the live graph gave, so its numbers are the ones the clinician saw.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from facesym_ros.bag.score import recorded_marks, score_bag
from facesym_ros.bag.storage import BagError, open_bag, typestore
from facesym_ros.clinic.protocol import Protocol
from facesym_ros.clinic.report_html import SessionInfo, SessionReport, build_session_report
from facesym_ros.clinic.session_record import DONE, NOT_DONE, SESSION_INFO_TOPIC, SessionRecord
from facesym_ros.clinic.task_result import TaskCollector, TaskResult
from facesym_ros.core.pipeline import READ_AHEAD, FrameResult, PipelineSettings
from facesym_ros.core.scoring import ScoreResult
from facesym_ros.core.timebase import ns_to_seconds
from facesym_ros.core.trials import TrialEventKind, TrialMark

STRING_TYPE = 'std_msgs/msg/String'


@dataclass
class SessionBagScore:
    record: SessionRecord
    protocol: Protocol
    tasks: list[TaskResult]  # the tasks that were begun, in protocol order
    rescored: dict[str, ScoreResult]  # trial id -> the score of this pass (the live one may be in tasks instead)
    problems: list[str] = field(default_factory=list)

    def largest_difference(self) -> float:
        """Largest |VS or SS of tasks - rescored| over every region (0 when they agree; NaN on both sides agrees)."""
        largest = 0.0
        for result in self.tasks:
            rescored = self.rescored.get(result.score.trial_id)
            if rescored is None:
                continue
            for mine, theirs in zip(result.score.regions, rescored.regions, strict=True):
                for a, b in ((mine.vs_left, theirs.vs_left), (mine.vs_right, theirs.vs_right),
                             (mine.symmetry, theirs.symmetry)):
                    if math.isnan(a) != math.isnan(b):
                        return math.inf
                    if not math.isnan(a):
                        largest = max(largest, abs(a - b))
        return largest

    def info(self, date: str | None = None) -> SessionInfo:
        return session_info(self.record, self.protocol, date)


def session_info(record: SessionRecord, protocol: Protocol, date: str | None = None) -> SessionInfo:
    """Who, when and how the session ended, for its report."""
    return SessionInfo(record.subject_id, record.session_id, date or record.date, protocol.settings, protocol.source,
                       status=record.status, status_note=record.reason,
                       not_done=tuple(task.name for task in protocol.tasks
                                      if record.task_status.get(task.name, NOT_DONE) == NOT_DONE))


@dataclass
class _TaskTrial:
    trial_id: str
    start_ns: int
    stop_ns: int | None
    collector: TaskCollector


def read_session_record(bag) -> SessionRecord:
    """The last session record on the bag's session_info topic."""
    topics = [t.name for t in bag.topics.values()
              if t.base_name == SESSION_INFO_TOPIC and t.msgtype == STRING_TYPE]
    store = typestore()
    texts = [store.deserialize_cdr(bytes(m.data), STRING_TYPE).data for m in bag.messages(topics)] if topics else []
    if not texts:
        raise BagError(f'{bag.path}: not a session bag (no {SESSION_INFO_TOPIC} topic with the session record); '
                       'score its trials with `facesym score-bag`')
    return SessionRecord.from_json(texts[-1], f'{bag.path}: {SESSION_INFO_TOPIC}')


def own_marks(marks: Sequence[TrialMark], session_id: str) -> list[TrialMark]:
    """The marks of the session's own trials (its STARTs name it), and the RESETs from its first START on.

    A bag recorded before sessions kept only their own events can hold the scorer's latched events of an
    earlier session: left out, so no trial of it is built from this session's frames and none of its marks
    keeps a trial of this session from starting."""
    own = {mark.trial_id for mark in marks
           if mark.event == TrialEventKind.START and mark.labels.session_id == session_id}
    begun = min((mark.stamp_ns for mark in marks if mark.trial_id in own), default=None)
    return [mark for mark in marks if mark.trial_id in own or (
        mark.event == TrialEventKind.RESET and begun is not None and mark.stamp_ns >= begun)]


def score_session_bag(path: str | Path, config: PipelineSettings, *, protocol: Protocol | None = None,
                      live_scores: Mapping[str, ScoreResult] | None = None,
                      read_ahead: int = READ_AHEAD) -> SessionBagScore:
    """Each begun task's TaskResult; scored from the bag, or with the live score of its trial where one is given
    (read_ahead as in score_bag: the same scores either way)."""
    with open_bag(Path(path)) as bag:
        record = read_session_record(bag)
        protocol = protocol or record.protocol()
        problems: list[str] = []
        trials: list[_TaskTrial] = []
        recorded = recorded_marks(bag)
        marks = own_marks(recorded, record.session_id)
        problems += [f'trial {mark.trial_id} belongs to session {mark.labels.session_id!r}, not {record.session_id!r}: '
                     'left out' for mark in recorded if mark.event == TrialEventKind.START and mark not in marks]
        for mark in marks:
            if mark.event == TrialEventKind.START:
                try:
                    task = protocol.task(mark.labels.task)
                except (KeyError, ValueError):
                    problems.append(f'trial {mark.trial_id}: task {mark.labels.task!r} is not in the protocol')
                    continue
                trials.append(_TaskTrial(mark.trial_id, mark.stamp_ns, None, TaskCollector(task)))
            elif mark.event == TrialEventKind.STOP:
                trial = next((t for t in trials if t.trial_id == mark.trial_id), None)
                if trial is not None:
                    trial.stop_ns = mark.stamp_ns
        first_ns: list[int] = []

        def collect(result: FrameResult) -> None:
            stamp = result.frame.stamp_ns
            if not first_ns:
                first_ns.append(stamp)
            for trial in trials:
                if trial.start_ns <= stamp and (trial.stop_ns is None or stamp <= trial.stop_ns):
                    trial.collector.add(result)

        report = score_bag(bag, config, use_markers=True, on_frame=collect, markers=marks, read_ahead=read_ahead)
        problems[:0] = report.problems
    scores = {score.trial_id: score for score in report.scores}
    results = []
    for trial in trials:
        score = (live_scores or {}).get(trial.trial_id) or scores.get(trial.trial_id)
        if score is None:
            problems.append(f'trial {trial.trial_id} ({trial.collector.task.name}) has no score')
            continue
        origin = first_ns[0] if first_ns else trial.start_ns
        end = trial.stop_ns if trial.stop_ns is not None else score.last_stamp_ns
        trial.collector.span = (round(ns_to_seconds(trial.start_ns - origin), 3), round(ns_to_seconds(end - origin), 3))
        result = trial.collector.result(config.scoring, score)
        status = record.task_status.get(trial.collector.task.name, DONE)
        result.extra['status'] = status
        results.append(result)
    order = {task.name: index for index, task in enumerate(protocol.tasks)}
    results.sort(key=lambda r: order[r.task.name])
    begun = {r.task.name for r in results}
    for task in protocol.tasks:
        if task.name not in begun:
            record.task_status[task.name] = NOT_DONE
    return SessionBagScore(record, protocol, results, scores, problems)


def session_bag_report(path: str | Path, config: PipelineSettings, *, protocol: Protocol | None = None,
                       date: str | None = None, previous: Sequence[dict] = (),
                       read_ahead: int = READ_AHEAD) -> tuple[SessionBagScore, SessionReport]:
    """`facesym session --from-bag`: the session bag scored again and its report (date: the recorded one unless
    given; previous: earlier sessions' report.json payloads, for the trend)."""
    scored = score_session_bag(path, config, protocol=protocol, read_ahead=read_ahead)
    return scored, build_session_report(scored.tasks, scored.info(date), previous)
