"""Trials and rolling windows over a stream of per-frame motion.

A trial holds the frames stamped from its start to its stop, both in the time
base of the image stamps, so a trial replayed from a bag holds the same
frames as it did live. TrialController is the only way to start, stop and
reset a trial: the scorer node, the flow node and `facesym score-bag` each
drive one by stamp. TrialScorer, which it drives, decides when a score is due:

- FINAL when a stopped trial is complete: a frame stamped after the stop
  arrived (or the caller gave up waiting and calls finish());
- RUNNING while a trial is open, at most every running_period;
- WINDOW in unattended mode, over the last window_seconds, every window_period.

Trial ids are made here only (new_trial_id): `<prefix>-<UTC date-time>-<4 hex
digits>`, unique across restarts of the scorer, sessions and bags; an id given
with a command (a TrialEvent, a bag's markers) is kept. TrialController.state()
and restore() carry the open trial, its frames so far and the scheduled marks
across a restart of the scorer; TrialStateFile keeps them on disk.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import secrets
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

from facesym_ros.core.detection import FaceTracker
from facesym_ros.core.flow import GAP_FACTOR, RegionMotion, RegionMotionEstimator
from facesym_ros.core.scoring import (
    NO_LABELS,
    QualityFlag,
    ScoreResult,
    ScoringSettings,
    TrialAccumulator,
    TrialLabels,
    frame_period_of,
    score_frames,
)
from facesym_ros.core.timebase import StampClock, ns_to_seconds, seconds_to_ns


class ScoreKind(enum.IntEnum):
    """Values match SymmetryScore.KIND_*."""

    FINAL = 0
    RUNNING = 1
    WINDOW = 2


class TrialEventKind(enum.IntEnum):
    """Values match TrialEvent.START, STOP, RESET."""

    START = 0
    STOP = 1
    RESET = 2


@dataclass(frozen=True)
class TrialMark:
    """A trial event in the time base of the image stamps (what a TrialEvent message carries)."""

    stamp_ns: int
    event: TrialEventKind
    trial_id: str = ''
    labels: TrialLabels = NO_LABELS
    """START: the task, session and subject the trial is for (carried into its score)."""


def new_trial_id(prefix: str) -> str:
    """`<prefix>-<UTC date-time>-<4 hex digits>`, e.g. trial-20261125T173000Z-3f9a."""
    return f'{prefix}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}'


def frame_ahead_ns(stamps: Sequence[int]) -> int:
    """How far past the newest of these frame stamps a command 'now' must take effect: GAP_FACTOR frame periods
    (median interval), since the face detector may already be on the frame after the newest one heard of."""
    period = frame_period_of([later - earlier for earlier, later in pairwise(stamps)])
    return round(GAP_FACTOR * period) if period else 1


def command_stamp_ns(clock_ns: int, stamp_clock: StampClock, stamps: Sequence[int],
                     newest_ns: int | None = None) -> int:
    """Where a command given 'now' (clock_ns, on any clock) takes effect, in the time base of the image stamps.

    The clock is mapped onto the stamps by stamp_clock (the camera may keep a clock of its own), so the command
    takes effect at the frames that arrive after it; and never before frame_ahead_ns past the newest frame heard
    of (`stamps`, the recent ones in order, or newest_ns if later): a node may already be on the next one.
    """
    now = stamp_clock.to_stamp(clock_ns)
    if not stamps:
        return now
    newest = stamps[-1] if newest_ns is None else max(stamps[-1], newest_ns)
    return max(now, newest + frame_ahead_ns(stamps))


def order_marks(marks: Iterable[TrialMark]) -> list[TrialMark]:
    """Recorded trial marks (a bag's, maybe repeated) in the order a TrialController takes them.

    Each mark once, in stamp order. A STOP is never before its own trial's START: one stamped earlier (a trial
    stopped before it began, e.g. by Ctrl-C in the second between the START being sent and its taking effect)
    is moved to the START's stamp. At one stamp, a STOP of a trial begun before it comes first (a trial stopped
    where the next one starts); then the STARTs and RESETs in the order given (the order the scorer took them
    in), each START followed by the STOP of its trial if that is at the same stamp: an empty trial closes
    there, and never stays open over the frames after it.
    """
    unique = list(dict.fromkeys(marks))
    starts = {mark.trial_id: (mark.stamp_ns, index) for index, mark in enumerate(unique)
              if mark.event == TrialEventKind.START}

    def placed(mark: TrialMark) -> TrialMark:
        start = starts.get(mark.trial_id)
        if mark.event == TrialEventKind.STOP and start is not None and mark.stamp_ns < start[0]:
            return dataclasses.replace(mark, stamp_ns=start[0])
        return mark

    def key(item: tuple[int, TrialMark]) -> tuple[int, int, float]:
        index, mark = item
        if mark.event != TrialEventKind.STOP:
            return mark.stamp_ns, 1, index
        start = starts.get(mark.trial_id)
        if start is not None and start[0] == mark.stamp_ns:
            return mark.stamp_ns, 1, start[1] + 0.5
        return mark.stamp_ns, 0, index

    return [mark for _, mark in sorted(enumerate(placed(mark) for mark in unique), key=key)]


class TrialError(RuntimeError):
    """A trial command that does not fit the current state (start while running, stop with none)."""


@dataclass
class Trial:
    trial_id: str
    start_ns: int
    score: TrialAccumulator
    stop_ns: int | None = None
    notes: list[str] = field(default_factory=list)
    """Why the trial holds less than its span (timeout, maximum length, a restart): flagged incomplete."""
    late_frames: int = 0
    jumped_frames: int = 0
    labels: TrialLabels = field(default_factory=TrialLabels)
    frame_before_ns: int | None = None
    """The stamp of the last frame before the trial began (None: none): whether frames were coming in then."""


class TrialScorer:
    """Collects frame motion into trials and windows and scores them with core.scoring."""

    def __init__(self, config: ScoringSettings, *, running_period: float = 0.5, window_seconds: float = 0.0,
                 window_period: float = 1.0, max_trial_seconds: float = 600.0, max_stamp_jump: float = 5.0) -> None:
        self.configure(config, running_period=running_period, window_seconds=window_seconds,
                       window_period=window_period, max_trial_seconds=max_trial_seconds,
                       max_stamp_jump=max_stamp_jump)
        self.trial: Trial | None = None
        self._window: deque[RegionMotion] = deque()
        self._last_running_ns: int | None = None
        self._last_window_ns: int | None = None

    def configure(self, config: ScoringSettings, *, running_period: float = 0.5, window_seconds: float = 0.0,
                  window_period: float = 1.0, max_trial_seconds: float = 600.0, max_stamp_jump: float = 5.0) -> None:
        """New settings; a trial already running keeps the scoring settings it started with."""
        self.max_jump_ns = seconds_to_ns(max_stamp_jump)
        self.config = config
        self.running_period_ns = seconds_to_ns(running_period)
        self.window_ns = seconds_to_ns(window_seconds)
        self.window_period_ns = seconds_to_ns(window_period)
        self.max_trial_ns = seconds_to_ns(max_trial_seconds)

    @property
    def open(self) -> bool:
        """A trial has started and not yet been stopped."""
        return self.trial is not None and self.trial.stop_ns is None

    def start(self, trial_id: str, start_ns: int, labels: TrialLabels = NO_LABELS) -> Trial:
        if self.trial is not None:
            state = 'running' if self.trial.stop_ns is None else 'finishing'
            raise TrialError(f'trial {self.trial.trial_id} is still {state}; stop it first')
        self.trial = Trial(trial_id, int(start_ns), TrialAccumulator(self.config, trial_id), labels=labels)
        self._last_running_ns = None
        return self.trial

    def stop(self, stop_ns: int) -> Trial:
        if not self.open:
            raise TrialError('no trial is running')
        assert self.trial is not None
        self.trial.stop_ns = max(int(stop_ns), self.trial.start_ns)
        return self.trial

    def reset(self) -> None:
        """Drop the current trial (no score) and the rolling window."""
        self.trial = None
        self._window.clear()
        self._last_running_ns = None
        self._last_window_ns = None

    def add(self, motion: RegionMotion) -> list[tuple[ScoreKind, ScoreResult]]:
        """Take one frame (in stamp order); return the scores that became due."""
        due: list[tuple[ScoreKind, ScoreResult]] = []
        stamp = motion.stamp_ns
        trial = self.trial
        if trial is not None:
            if trial.stop_ns is None and stamp - trial.start_ns > self.max_trial_ns:
                trial.stop_ns = trial.start_ns + self.max_trial_ns
                trial.notes.append(f'trial ended after the maximum of {ns_to_seconds(self.max_trial_ns):g} s')
            if trial.stop_ns is not None and stamp > trial.stop_ns:
                due.append((ScoreKind.FINAL, self.finish()))
            elif trial.score.frame_count and trial.start_ns <= stamp <= trial.score.last_stamp_ns:
                trial.late_frames += 1  # out of order or repeated: left out
            elif stamp >= trial.start_ns:
                trial.score.add(motion)
                if trial.stop_ns is None and (self._last_running_ns is None
                                              or stamp - self._last_running_ns >= self.running_period_ns):
                    self._last_running_ns = stamp
                    due.append((ScoreKind.RUNNING, self._score(trial)))
        if self.window_ns > 0:
            self._window.append(motion)
            while self._window and self._window[0].stamp_ns <= stamp - self.window_ns:
                self._window.popleft()
            if len(self._window) >= 2 and (self._last_window_ns is None
                                           or stamp - self._last_window_ns >= self.window_period_ns):
                self._last_window_ns = stamp
                due.append((ScoreKind.WINDOW, score_frames(list(self._window), self.config, trial_id='window')))
        return due

    def finish(self) -> ScoreResult:
        """The FINAL score of the stopped trial (with the frames that arrived), closing it."""
        if self.trial is None or self.trial.stop_ns is None:
            raise TrialError('no stopped trial to finish')
        trial, self.trial = self.trial, None
        return self._score(trial, coverage=True)

    @staticmethod
    def _score(trial: Trial, *, coverage: bool = False) -> ScoreResult:
        result = dataclasses.replace(trial.score.result(), labels=trial.labels)
        incomplete, noted = _coverage(trial) if coverage else ([], [])
        notes = [*trial.notes, *incomplete, *noted]
        flags = QualityFlag.INCOMPLETE if trial.notes or incomplete else QualityFlag(0)
        if trial.late_frames:
            notes.append(f'{trial.late_frames} frames arrived out of stamp order and were left out')
        if trial.jumped_frames:
            notes.append(f'{trial.jumped_frames} frames stamped far after the trial\'s frames before them, with no '
                         'frame following, were left out (a clock jump?)')
            flags |= QualityFlag.DROPPED_FRAMES
        if notes:
            quality = dataclasses.replace(result.quality, notes=(*result.quality.notes, *notes),
                                          flags=result.quality.flags | flags)
            result = dataclasses.replace(result, quality=quality)
        return result


def _coverage(trial: Trial) -> tuple[list[str], list[str]]:
    """Whether a stopped trial's frames cover its span: (why it is incomplete, what else to note).

    Frames that begin later than the tolerance after the start, or end earlier than it before the stop,
    leave part of the trial unscored: incomplete, with the seconds they cover. The tolerance is max_uncovered,
    and at least two frame periods (a command stamped between two frames). When no frame had come in for longer
    than the tolerance before the start (a source not started yet, or stopped), the time up to the first frame
    is noted but not flagged: nothing that came in was lost. A scorer cannot tell a camera that had not started
    from a node that was down then; a node down during the trial shows as missing frames or a short end.
    """
    assert trial.stop_ns is not None
    score = trial.score
    span = ns_to_seconds(trial.stop_ns - trial.start_ns)
    if score.frame_count == 0:
        return [f'incomplete: no frame arrived in the trial\'s {span:.1f} s'], []
    tolerance = max(seconds_to_ns(score.config.max_uncovered), 2 * score.frame_period_ns())
    head = score.first_stamp_ns - trial.start_ns
    idle = trial.frame_before_ns is None or trial.start_ns - trial.frame_before_ns > tolerance
    short = []
    noted = []
    if head > tolerance and not idle:
        short.append(f'none before {ns_to_seconds(head):.1f} s')
    elif head > tolerance:
        noted.append(f'the first frame came {ns_to_seconds(head):.1f} s after the trial\'s start; no frames were '
                     'coming in when it started')
    if trial.stop_ns - score.last_stamp_ns > tolerance:
        short.append(f'none after {ns_to_seconds(score.last_stamp_ns - trial.start_ns):.1f} s')
    if not short:
        return [], noted
    covered = ns_to_seconds(score.last_stamp_ns - score.first_stamp_ns)
    return [f'incomplete: frames cover {covered:.1f} s of the trial\'s {span:.1f} s ({"; ".join(short)})'], noted


class TrialController:
    """Starts, stops and resets trials at their stamps, whatever order the commands and the frames come in.

    Commands are scheduled as TrialMarks and take effect as the frames' stamps
    pass them: a START before the first frame stamped at or after it (that
    frame anchors the regions), a STOP after the last frame stamped at or
    before it, a RESET before the first frame at or after it. The scorer node
    drives one with a TrialScorer, the flow node with its RegionMotionEstimator,
    the face detector with its FaceTracker (a trial's face is detected in its
    first frame, whatever came before); score-bag drives one with the tracker and
    one with the scorer and the estimator, as the nodes do, so live and offline
    apply a mark to the same frame.

    start/stop/reset check a command against the state after every scheduled
    mark and raise TrialError when it does not fit (start while a trial runs,
    stop with none).
    """

    def __init__(self, scorer: TrialScorer | None = None, motion: RegionMotionEstimator | None = None, *,
                 tracker: FaceTracker | None = None, id_prefix: str = 'trial') -> None:
        self.scorer = scorer
        self.motion = motion
        self.tracker = tracker
        self.id_prefix = id_prefix
        self._pending: list[TrialMark] = []
        self._held: RegionMotion | None = None
        self._last_ns: int | None = None
        self._first_frame_ns: int | None = None
        self._frame_ns: int | None = None
        self._open_id: str | None = None
        self._last_id = ''
        self._restart_note = ''

    @property
    def open_trial(self) -> str | None:
        """The trial that is running once every scheduled mark has taken effect."""
        return self._open_id

    @property
    def pending(self) -> tuple[TrialMark, ...]:
        return tuple(self._pending)

    def start(self, stamp_ns: int, trial_id: str = '', labels: TrialLabels = NO_LABELS) -> TrialMark:
        if self._open_id is not None:
            raise TrialError(f'trial {self._open_id} is still running; stop it first')
        if not trial_id:
            trial_id = new_trial_id(self.id_prefix)
            while trial_id == self._last_id:  # two starts within a second drew the same digits
                trial_id = new_trial_id(self.id_prefix)
        self._last_id = trial_id
        mark = TrialMark(int(stamp_ns), TrialEventKind.START, trial_id, labels)
        self._open_id = mark.trial_id
        return self._schedule(mark)

    def stop(self, stamp_ns: int) -> TrialMark:
        """Stop the open trial at stamp_ns; at its start if that is later (never a STOP before its own START)."""
        if self._open_id is None:
            raise TrialError('no trial is running')
        started = [mark.stamp_ns for mark in self._pending
                   if mark.event == TrialEventKind.START and mark.trial_id == self._open_id]
        trial = self.scorer.trial if self.scorer is not None else None
        if trial is not None and trial.trial_id == self._open_id:
            started.append(trial.start_ns)
        mark = TrialMark(max([int(stamp_ns), *started]), TrialEventKind.STOP, self._open_id)
        self._open_id = None
        return self._schedule(mark)

    def reset(self, stamp_ns: int) -> TrialMark:
        self._open_id = None
        return self._schedule(TrialMark(int(stamp_ns), TrialEventKind.RESET))

    def command(self, mark: TrialMark) -> TrialMark:
        """Schedule a mark that came from elsewhere (a TrialEvent message, a bag), keeping its trial id."""
        if mark.event == TrialEventKind.START:
            return self.start(mark.stamp_ns, mark.trial_id, mark.labels)
        if mark.event == TrialEventKind.STOP:
            return self.stop(mark.stamp_ns)
        return self.reset(mark.stamp_ns)

    def _schedule(self, mark: TrialMark) -> TrialMark:
        # Stable in stamp order: marks with one stamp keep the order they were given in.
        index = len(self._pending)
        while index and self._pending[index - 1].stamp_ns > mark.stamp_ns:
            index -= 1
        self._pending.insert(index, mark)
        return mark

    def before_frame(self, stamp_ns: int) -> list[ScoreResult]:
        """Apply the marks due before a frame of this stamp; return the FINAL scores that closes."""
        if self._first_frame_ns is None:
            self._first_frame_ns = stamp_ns
        finals: list[ScoreResult] = []
        while self._pending and self._due(self._pending[0], stamp_ns):
            finals += self._apply(self._pending.pop(0))
        self._frame_ns = stamp_ns
        return finals

    def add(self, motion: RegionMotion) -> list[tuple[ScoreKind, ScoreResult]]:
        """One frame's motion (in stamp order) to the scorer; the scores that became due.

        A frame stamped more than the scorer's max_stamp_jump after the frame before it is held: if the next
        frame follows it, the stream really paused and both count; if not, its stamp was wrong (a clock jump)
        and it is left out, counted in the trial, so one bad stamp can neither apply marks early, nor end a
        trial, nor stretch it.
        """
        assert self.scorer is not None, 'add() needs a TrialScorer'
        held, self._held = self._held, None
        if held is not None:
            if 0 < motion.stamp_ns - held.stamp_ns <= self.scorer.max_jump_ns:
                return self._take(held) + self._take(motion)
            self._count_jumped()
        elif self._last_ns is not None and motion.stamp_ns - self._last_ns > self.scorer.max_jump_ns:
            self._held = motion
            return []
        return self._take(motion)

    def _take(self, motion: RegionMotion) -> list[tuple[ScoreKind, ScoreResult]]:
        self._last_ns = motion.stamp_ns
        due = [(ScoreKind.FINAL, final) for final in self.before_frame(motion.stamp_ns)]
        return due + self.scorer.add(motion)

    def _drop_held(self) -> None:
        """A jumped frame that nothing followed: its stamp cannot be trusted, so it is left out and counted."""
        if self._held is not None:
            self._held = None
            self._count_jumped()

    def _count_jumped(self) -> None:
        if self.scorer is not None and self.scorer.trial is not None:
            self.scorer.trial.jumped_frames += 1

    def flush(self, note: str = '') -> list[ScoreResult]:
        """Apply every scheduled mark and close a stopped trial (no more frames are coming for it); `note`
        says why, in the score, when frames are missing."""
        finals: list[ScoreResult] = []
        self._drop_held()
        while self._pending:
            finals += self._apply(self._pending.pop(0))
        trial = self.scorer.trial if self.scorer is not None else None
        if trial is not None and trial.stop_ns is not None:
            if note:
                trial.notes.append(note)
            finals.append(self.scorer.finish())
        return finals

    def end_of_stream(self, unstopped_note: str = '') -> list[ScoreResult]:
        """No frame follows: apply the marks still scheduled (a trial started after the last frame closes
        empty, flagged incomplete, so no recorded trial is lost), stop a trial left open at its last frame
        (noting unstopped_note), and return the FINAL scores."""
        self._drop_held()
        pending, self._pending = self._pending, []
        finals: list[ScoreResult] = []
        for mark in pending:
            finals += self._apply(mark)
        self._open_id = None
        scorer = self.scorer
        if scorer is None or scorer.trial is None:
            return finals
        trial = scorer.trial
        if trial.stop_ns is None:
            if unstopped_note:
                score = trial.score
                last = ns_to_seconds(score.last_stamp_ns - trial.start_ns)
                covered = ns_to_seconds(score.last_stamp_ns - score.first_stamp_ns)
                trial.notes += [unstopped_note, f'frames cover {covered:.1f} s, the last {last:.1f} s after the '
                                                'trial\'s start' if score.frame_count else
                                                'no frame arrived after the trial\'s start']
            scorer.stop(max(trial.start_ns, trial.score.last_stamp_ns))
        return [*finals, scorer.finish()]

    def state(self) -> dict[str, Any]:
        """The open trial (its frames so far included) and the scheduled marks, as JSON-able data."""
        trial = self.scorer.trial if self.scorer is not None else None
        return {
            'open_trial': self._open_id,
            'pending': [[mark.stamp_ns, int(mark.event), mark.trial_id, mark.labels.to_json_dict()]
                        for mark in self._pending],
            'trial': None if trial is None else {
                'trial_id': trial.trial_id, 'start_ns': trial.start_ns, 'stop_ns': trial.stop_ns,
                'labels': trial.labels.to_json_dict(), 'frame_before_ns': trial.frame_before_ns,
                'notes': list(trial.notes), 'late_frames': trial.late_frames, 'score': trial.score.state()},
        }

    def restore(self, state: Mapping[str, Any], note: str = '') -> None:
        """Take up what state() described (a restarted scorer); `note` goes into the trial it continues."""
        assert self.scorer is not None, 'restore() needs a TrialScorer'
        self._open_id = state['open_trial']
        self._pending = [TrialMark(int(stamp), TrialEventKind(event), trial_id, TrialLabels(**labels))
                         for stamp, event, trial_id, labels in state['pending']]
        saved = state['trial']
        self.scorer.reset()
        if saved is not None:
            self.scorer.trial = Trial(saved['trial_id'], int(saved['start_ns']),
                                      TrialAccumulator.from_state(saved['score']), saved['stop_ns'],
                                      list(saved['notes']), int(saved['late_frames']),
                                      labels=TrialLabels(**saved['labels']),
                                      frame_before_ns=saved.get('frame_before_ns'))
        if note and self.scorer.trial is not None:
            self.scorer.trial.notes.append(note)
        elif note and any(mark.event == TrialEventKind.START for mark in self._pending):
            self._restart_note = note  # for the trial whose START is still to take effect

    @property
    def unfinished(self) -> list[str]:
        """The trials a restart takes up: the one being scored, then those of the scheduled marks, in order."""
        ids = [self.scorer.trial.trial_id] if self.scorer is not None and self.scorer.trial is not None else []
        for mark in self._pending:
            if mark.trial_id and mark.trial_id not in ids:
                ids.append(mark.trial_id)
        return ids

    @property
    def idle(self) -> bool:
        """No trial open or finishing and no mark scheduled: nothing a restart could lose."""
        return not self._pending and (self.scorer is None or self.scorer.trial is None)

    @staticmethod
    def _due(mark: TrialMark, stamp_ns: int) -> bool:
        # A frame stamped exactly at a STOP still belongs to the trial.
        return mark.stamp_ns < stamp_ns if mark.event == TrialEventKind.STOP else mark.stamp_ns <= stamp_ns

    def _apply(self, mark: TrialMark) -> list[ScoreResult]:
        finals: list[ScoreResult] = []
        scorer = self.scorer
        if mark.event == TrialEventKind.START:
            if scorer is not None:
                if scorer.trial is not None and scorer.trial.stop_ns is not None:
                    finals.append(scorer.finish())
                trial = scorer.start(mark.trial_id, mark.stamp_ns, mark.labels)
                trial.frame_before_ns = self._frame_ns
                if self._restart_note:
                    trial.notes.append(self._restart_note)
                    self._restart_note = ''
            # A node whose first frame came at or after the start found the face and anchored the regions
            # there already, as the trial wants: a START that reaches it late (relayed after that frame, as
            # in a replay) must not do it again one frame later.
            if self._first_frame_ns is None or self._first_frame_ns < mark.stamp_ns:
                if self.tracker is not None:
                    self.tracker.reset()
                if self.motion is not None:
                    self.motion.reanchor()
        elif mark.event == TrialEventKind.STOP:
            if scorer is not None:
                scorer.stop(mark.stamp_ns)
        else:
            if scorer is not None:
                scorer.reset()
            if self.motion is not None:
                self.motion.reset()
        return finals


class TrialStateFile:
    """A TrialController's state() on disk, written atomically, so a scorer that died can continue or close it."""

    VERSION = 2

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def save(self, controller: TrialController, **extra: Any) -> None:
        """Write controller.state() (and `extra` JSON-able items)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {'version': self.VERSION, 'saved_at': time.time(), **extra, **controller.state()}
        partial = self.path.with_name(f'.{self.path.name}.{os.getpid()}.tmp')
        partial.write_text(json.dumps(data))
        os.replace(partial, self.path)  # a reader sees the old file or the new one, never half of one

    def load(self) -> tuple[dict[str, Any], float] | None:
        """(state, seconds since it was saved), or None without a file; ValueError for a file it cannot read."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise ValueError(f'{self.path}: unreadable trial state ({error})') from None
        if not isinstance(data, dict) or data.get('version') != self.VERSION:
            raise ValueError(f'{self.path}: not a facesym trial state of version {self.VERSION}')
        return data, max(0.0, time.time() - float(data['saved_at']))

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
