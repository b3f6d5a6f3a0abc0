"""What the report needs of one task: its score, motion over time, summed heat map and key frame.

TaskResult is the interface between whoever runs a session (the offline
`facesym report`, the live session runner of `facesym session`) and the
report: the runner scores each task's frames, and hands over the
ScoreResult with the pictures. TaskCollector builds one from FrameResults as
they arrive, keeping only small per-frame numbers and running sums, so a
long task is not held in memory frame by frame.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from facesym_ros.clinic.protocol import ProtocolTask
from facesym_ros.core.annotate import FlowSum, annotate, region_polygons
from facesym_ros.core.geometry import Box
from facesym_ros.core.pipeline import FrameResult
from facesym_ros.core.regions import REGION_NAMES, SIDE_NAMES
from facesym_ros.core.scoring import ScoreResult, ScoringSettings, score_frames

PICTURE_MARGIN = 0.35  # pictures show the face box grown by this fraction on every side


@dataclass(frozen=True)
class MotionTrace:
    """Per frame of a task: seconds since its first frame, and each region side's mean flow per pixel.

    A frame without flow (the anchor frame, no face) holds NaN, so a plot
    shows a gap rather than a made-up zero.
    """

    times_s: tuple[float, ...]
    motion: dict[tuple[str, str], tuple[float, ...]]

    @classmethod
    def from_motions(cls, motions: Sequence) -> MotionTrace:
        """From a task's per-frame motion (RegionMotion of core/flow.py), in stamp order."""
        if not motions:
            return cls((), {(r, s): () for r in REGION_NAMES for s in SIDE_NAMES})
        start = motions[0].stamp_ns
        values: dict[tuple[str, str], list[float]] = {(r, s): [] for r in REGION_NAMES for s in SIDE_NAMES}
        for motion in motions:
            per_side = {(side.region, side.side): side for side in motion.regions} if motion.flow_valid else {}
            for key, series in values.items():
                side = per_side.get(key)
                series.append(side.magnitude_sum / side.pixel_count if side and side.pixel_count else math.nan)
        return cls(tuple((m.stamp_ns - start) / 1e9 for m in motions), {k: tuple(v) for k, v in values.items()})

    def primary_motion(self, regions: Sequence[str]) -> np.ndarray:
        """Per frame, the summed motion of both sides of `regions` (NaN without flow)."""
        total = np.zeros(len(self.times_s))
        for region in regions:
            for side in SIDE_NAMES:
                total = total + np.asarray(self.motion[(region, side)], dtype=float)
        return total


@dataclass(frozen=True)
class FacePicture:
    """A face as the report draws it: the picture (BGR, unannotated) and the region sides in its pixels."""

    image: np.ndarray
    polygons: tuple[tuple[str, str, np.ndarray], ...]  # (region, side, N x 2 points)


@dataclass(frozen=True)
class TaskResult:
    """One task of a session, ready to report.

    heatmap and key_frame are BGR images (None: not available, the report
    says so); key_face is the key frame unannotated, with its region sides, for
    the report's face maps; span is the task's (start, stop) in seconds of the
    source, when known.
    """

    task: ProtocolTask
    score: ScoreResult
    trace: MotionTrace
    heatmap: np.ndarray | None = None
    key_frame: np.ndarray | None = None
    key_frame_time_s: float | None = None
    span: tuple[float, float] | None = None
    extra: dict = field(default_factory=dict)
    key_face: FacePicture | None = None


def _picture_area(image: np.ndarray, result: FrameResult) -> Box | None:
    """The face box and some margin, inside the image (None: the whole image)."""
    box = result.track.box
    return None if box is None else box.expanded(PICTURE_MARGIN).clipped(image.shape[1], image.shape[0])


def _face_picture(image: np.ndarray, result: FrameResult) -> np.ndarray:
    """The image cut to the face box and some margin, for a printed page."""
    area = _picture_area(image, result)
    return image if area is None else area.crop(image).copy()


def face_picture(result: FrameResult) -> FacePicture:
    """The frame cut as _face_picture cuts it, with its region sides moved into the cut's pixels."""
    area = _picture_area(result.frame.bgr, result)
    offset = np.zeros(2) if area is None else np.array([area.x, area.y], dtype=float)
    return FacePicture(_face_picture(result.frame.bgr, result),
                       tuple((region, side, np.asarray(polygon, dtype=float) - offset)
                             for region, side, polygon in region_polygons(result.motion)))


class TaskCollector:
    """Collects one task's frames (FrameResults of the core pipeline) into a TaskResult."""

    def __init__(self, task: ProtocolTask, span: tuple[float, float] | None = None) -> None:
        self.task = task
        self.span = span
        self.motions: list = []
        self.flow_sum = FlowSum()
        self.reference: FrameResult | None = None
        self.peak: tuple[float, FrameResult] | None = None

    def add(self, result: FrameResult) -> None:
        motion = result.motion
        self.flow_sum.add(motion)
        # The score needs the numbers only; the magnitude map is in the running sum already.
        self.motions.append(dataclasses.replace(motion, magnitude=None))
        if self.reference is None and motion.regions:
            self.reference = result
        if motion.flow_valid:
            sides = [s for s in motion.regions if s.region in self.task.primary and s.pixel_count]
            level = sum(s.magnitude_sum / s.pixel_count for s in sides)
            if self.peak is None or level > self.peak[0]:
                self.peak = (level, result)

    def result(self, config: ScoringSettings, score: ScoreResult | None = None) -> TaskResult:
        """The TaskResult; scored here with `config` unless the caller has the ScoreResult already."""
        score = score or score_frames(self.motions, config, trial_id=self.task.name)
        heatmap = key_frame = key_time = key_face = None
        if self.reference is not None:
            picture = self.flow_sum.image(self.reference, title='')
            heatmap = _face_picture(picture, self.reference)
        if self.peak is not None:
            result = self.peak[1]
            frame = annotate(result.frame.bgr, result.track.box, None, region_polygons(result.motion))
            key_frame = _face_picture(frame, result)
            key_face = face_picture(result)
            key_time = (result.frame.stamp_ns - self.motions[0].stamp_ns) / 1e9
        return TaskResult(self.task, score, MotionTrace.from_motions(self.motions), heatmap, key_frame, key_time,
                          self.span, key_face=key_face)
