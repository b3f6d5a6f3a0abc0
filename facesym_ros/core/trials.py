"""Trials and rolling windows over a stream of per-frame motion.

A trial holds the frames stamped from its start to its stop, both in the time
base of the image stamps, so a trial replayed from a bag holds the same
frames as it did live. The scorer node, `facesym score-bag` and the tests all
use this class, which decides when a score is due:

- FINAL when a stopped trial is complete: a frame stamped after the stop
  arrived (or the caller gave up waiting and calls finish());
- RUNNING while a trial is open, at most every running_period;
- WINDOW in unattended mode, over the last window_seconds, every window_period.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import deque
from dataclasses import dataclass, field

from facesym_ros.core.flow import FrameMotion
from facesym_ros.core.scoring import ScoreResult, ScoringConfig, TrialAccumulator, score_frames

NS = 1_000_000_000


class ScoreKind(enum.IntEnum):
    """Values match SymmetryScore.KIND_*."""

    FINAL = 0
    RUNNING = 1
    WINDOW = 2


class TrialError(RuntimeError):
    """A trial command that does not fit the current state (start while running, stop with none)."""


@dataclass
class Trial:
    trial_id: str
    start_ns: int
    score: TrialAccumulator
    stop_ns: int | None = None
    notes: list[str] = field(default_factory=list)
    late_frames: int = 0


class TrialScorer:
    """Collects frame motion into trials and windows and scores them with core.scoring."""

    def __init__(self, config: ScoringConfig, *, running_period: float = 0.5, window_seconds: float = 0.0,
                 window_period: float = 1.0, max_trial_seconds: float = 600.0) -> None:
        self.config = config
        self.running_period_ns = round(running_period * NS)
        self.window_ns = round(window_seconds * NS)
        self.window_period_ns = round(window_period * NS)
        self.max_trial_ns = round(max_trial_seconds * NS)
        self.trial: Trial | None = None
        self._window: deque[FrameMotion] = deque()
        self._last_running_ns: int | None = None
        self._last_window_ns: int | None = None

    @property
    def open(self) -> bool:
        """A trial has started and not yet been stopped."""
        return self.trial is not None and self.trial.stop_ns is None

    def start(self, trial_id: str, start_ns: int) -> Trial:
        if self.trial is not None:
            state = 'running' if self.trial.stop_ns is None else 'finishing'
            raise TrialError(f'trial {self.trial.trial_id} is still {state}; stop it first')
        self.trial = Trial(trial_id, int(start_ns), TrialAccumulator(self.config, trial_id))
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

    def add(self, motion: FrameMotion) -> list[tuple[ScoreKind, ScoreResult]]:
        """Take one frame (in stamp order); return the scores that became due."""
        due: list[tuple[ScoreKind, ScoreResult]] = []
        stamp = motion.stamp_ns
        trial = self.trial
        if trial is not None:
            if trial.stop_ns is None and stamp - trial.start_ns > self.max_trial_ns:
                trial.stop_ns = trial.start_ns + self.max_trial_ns
                trial.notes.append(f'trial ended after the maximum of {self.max_trial_ns / NS:g} s')
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
        return self._score(trial)

    @staticmethod
    def _score(trial: Trial) -> ScoreResult:
        result = trial.score.result()
        notes = [*trial.notes]
        if trial.late_frames:
            notes.append(f'{trial.late_frames} frames arrived out of stamp order and were left out')
        if notes:
            quality = dataclasses.replace(result.quality, notes=(*result.quality.notes, *notes))
            result = dataclasses.replace(result, quality=quality)
        return result
