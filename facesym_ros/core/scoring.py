"""Movement and symmetry scores (paper Eq. 4 and 5) and the quality of a trial.

    VS = sum_{t=2..N} sum_{x in region} f(x, t) / (M (N - 1))
    SS = 1 - lambda |VS_left - VS_right|, clamped to [0, 1], lambda = 3.8

computed per region side over the frames of a trial. When every frame pair
has flow and the region keeps its M pixels, this is exactly the paper's
formula. Pairs without flow (no face, the box changed, the anchor frame, a
pair that spans missing frames) contribute nothing and are not counted in
N - 1, so VS is the mean over the real consecutive pairs; when regions follow every
frame (regions_from = every_frame) M varies and VS is the mean over pairs of
each pair's per-pixel motion. A score that cannot be computed (no pair with
flow, or a region side with no pixels in the crop) is NaN and flagged, never
a silent 1.0. A region that moved less than min_movement on both sides is
flagged low_motion (its SS of about 1 says nothing), and a trial that lost
more than allowed of its frames (min_frame_fraction) gets no score at all: of
the trial's frames (those that came and those missing) at least that fraction
must have come with the face, or every SS is null and flagged too_few_frames.
One trial is one face in one image geometry: a frame of another image size
(image_changed) or whose face no longer looks like the first (face_changed,
core.identity) voids the whole score.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facesym_ros import __version__
from facesym_ros.core.detection import TrackState
from facesym_ros.core.flow import RegionMotion
from facesym_ros.core.regions import REGION_NAMES, SIDE_NAMES
from facesym_ros.core.settings import Settings, setting


class QualityFlag(enum.IntFlag):
    """Values match SymmetryScore.FLAG_*."""

    NO_FACE = 1
    DROPPED_FRAMES = 2
    LOW_LANDMARK_CONFIDENCE = 4
    HEAD_MOTION = 8
    TOO_FEW_FRAMES = 16
    MULTIPLE_FACES = 32
    FACE_BOX_CHANGED = 64
    EMPTY_REGION = 128
    LOW_MOTION = 256
    INCOMPLETE = 512
    SMALL_FACE = 1024
    LATE_ANCHOR = 2048
    FACE_CHANGED = 4096
    IMAGE_CHANGED = 8192


NO_FLAGS = QualityFlag(0)


@dataclass(frozen=True)
class ScoringSettings(Settings):
    symmetry_lambda: float = setting(3.8, 'lambda of SS = 1 - lambda |VS_left - VS_right| (paper: 3.8)',
                                     min=0.0, max=1000.0)
    max_head_motion: float = setting(0.25, 'Rigid head motion within a trial above which the score is '
                                           'flagged [inter-ocular distances]', min=0.0, max=10.0)
    min_landmark_confidence: float = setting(0.3, 'Frames whose mean landmark confidence is below this are '
                                                  'flagged (backends with confidences only)', min=0.0, max=1.0)
    nominal_frame_rate: float = setting(0.0, 'Camera frame rate used to count dropped frames; 0 estimates it '
                                             'from the median frame interval [Hz]', min=0.0, max=1000.0)
    min_movement: float = setting(0.002, 'A region whose VS is below this on both sides did not move: its SS '
                                         'says nothing and is flagged low_motion [reference px/frame per pixel]',
                                  min=0.0, max=10.0)
    max_face_upscale: float = setting(2.0, 'A face resampled by more than this to the reference scale (its '
                                           'eyes closer than reference_interocular / this) is flagged small_face: '
                                           'its motion is partly lost in its pixels', min=1.0, max=100.0)
    min_frame_fraction: float = setting(0.5, 'Fewest of the trial\'s frames (frames with the face / frames that '
                                             'came + missing) that give a score; below it every SS is null and '
                                             'flagged too_few_frames', min=0.0, max=1.0)
    max_uncovered: float = setting(1.0, 'A trial\'s final score is flagged incomplete, with the seconds its frames '
                                        'cover, when they begin this much after its start or end this much before '
                                        'its stop (two frame periods at least) [s]', min=0.0, max=3600.0)


class _MovementSum:
    """Running VS of one region side: sums kept in frame order, so every consumer gets the same bits."""

    def __init__(self) -> None:
        self.pairs = 0
        self.magnitude = 0.0
        self.per_pixel = 0.0
        self.first_count: int | None = None
        self.constant_count = True
        self.empty = False

    def add(self, magnitude_sum: float, pixel_count: int) -> None:
        self.pairs += 1
        if pixel_count <= 0:
            self.empty = True
            return
        self.magnitude += magnitude_sum
        self.per_pixel += magnitude_sum / pixel_count
        if self.first_count is None:
            self.first_count = pixel_count
        elif pixel_count != self.first_count:
            self.constant_count = False

    def state(self) -> list:
        return [self.pairs, self.magnitude, self.per_pixel, self.first_count, self.constant_count, self.empty]

    @classmethod
    def from_state(cls, state: list) -> _MovementSum:
        total = cls()
        (total.pairs, total.magnitude, total.per_pixel, total.first_count, total.constant_count,
         total.empty) = state
        return total

    def value(self) -> float:
        if self.pairs == 0 or self.empty or self.first_count is None:
            return math.nan
        if self.constant_count:
            return self.magnitude / (self.first_count * self.pairs)
        return self.per_pixel / self.pairs


def movement_score(magnitude_sums: Sequence[float], pixel_counts: Sequence[int]) -> float:
    """VS of one region side from its per-pair magnitude sums and pixel counts (NaN if undefined)."""
    if len(magnitude_sums) != len(pixel_counts):
        raise ValueError('one pixel count per magnitude sum')
    total = _MovementSum()
    for magnitude_sum, pixel_count in zip(magnitude_sums, pixel_counts, strict=True):
        total.add(magnitude_sum, pixel_count)
    return total.value()


def symmetry_score(vs_left: float, vs_right: float, symmetry_lambda: float) -> float:
    """SS = 1 - lambda |VS_left - VS_right|, clamped to [0, 1] (NaN if either VS is)."""
    if math.isnan(vs_left) or math.isnan(vs_right):
        return math.nan
    return min(1.0, max(0.0, 1.0 - symmetry_lambda * abs(vs_left - vs_right)))


@dataclass(frozen=True)
class RegionScore:
    region: str
    vs_left: float
    vs_right: float
    symmetry: float


@dataclass(frozen=True)
class Quality:
    frames_without_face: int = 0
    frames_dropped: int = 0
    frames_low_landmark_confidence: int = 0
    frames_multiple_faces: int = 0
    face_box_changes: int = 0
    max_head_motion: float = 0.0
    flags: QualityFlag = NO_FLAGS
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrialLabels:
    """What a trial is for, as the operator gave it: the protocol task, the session and the subject (an opaque
    id, never a name). All empty outside an assessment session."""

    task: str = ''
    session_id: str = ''
    subject_id: str = ''

    def to_json_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


NO_LABELS = TrialLabels()


@dataclass(frozen=True)
class ScoreResult:
    trial_id: str
    first_stamp_ns: int
    last_stamp_ns: int
    frame_count: int
    flow_pair_count: int
    regions: tuple[RegionScore, ...]
    symmetry_lambda: float
    threshold_factor: float
    quality: Quality
    method: str = field(default='')
    labels: TrialLabels = field(default_factory=TrialLabels)

    def region(self, name: str) -> RegionScore:
        return next(region for region in self.regions if region.region == name)

    def to_json_dict(self) -> dict:
        """The `facesym score --json` shape; NaN (no score) becomes null."""
        def number(value: float) -> float | None:
            return None if math.isnan(value) else value

        quality = self.quality
        return {
            'trial_id': self.trial_id,
            **self.labels.to_json_dict(),
            'frames': self.frame_count,
            'flow_pairs': self.flow_pair_count,
            'first_stamp_ns': self.first_stamp_ns,
            'last_stamp_ns': self.last_stamp_ns,
            'lambda': self.symmetry_lambda,
            'threshold_factor': self.threshold_factor,
            'regions': {r.region: {'vs_left': number(r.vs_left), 'vs_right': number(r.vs_right),
                                   'symmetry': number(r.symmetry)} for r in self.regions},
            'quality': {
                'flags': [flag.name.lower() for flag in QualityFlag if flag in quality.flags],
                'notes': list(quality.notes),
                'frames_without_face': quality.frames_without_face,
                'frames_dropped': quality.frames_dropped,
                'frames_low_landmark_confidence': quality.frames_low_landmark_confidence,
                'frames_multiple_faces': quality.frames_multiple_faces,
                'face_box_changes': quality.face_box_changes,
                'max_head_motion': quality.max_head_motion,
            },
            'method': json.loads(self.method) if self.method else {},
        }


def frame_period_of(intervals: Sequence[int], nominal_frame_rate: float = 0.0) -> float:
    """The camera's frame period: of nominal_frame_rate, else the median interval seen (0 with none)."""
    if nominal_frame_rate > 0:
        return 1e9 / nominal_frame_rate
    positive = [interval for interval in intervals if interval > 0]
    return float(np.median(positive)) if positive else 0.0


def _dropped_frames(intervals: list[int], nominal_frame_rate: float) -> int:
    positive = [interval for interval in intervals if interval > 0]
    if not positive:
        return 0
    period = frame_period_of(positive, nominal_frame_rate)
    return int(sum(max(0, round(interval / period) - 1) for interval in positive))


class TrialAccumulator:
    """The score of a trial so far, updated frame by frame (frames in stamp order).

    Adding a frame costs the same however long the trial is, so the live
    scorer can publish a running score after every frame; score_frames feeds
    the same class, so a batch score equals the running one bit for bit.
    """

    def __init__(self, config: ScoringSettings, trial_id: str = '') -> None:
        self.config = config
        self.trial_id = trial_id
        self._sides = {(region, side): _MovementSum() for region in REGION_NAMES for side in SIDE_NAMES}
        self.frame_count = 0
        self.flow_pairs = 0
        self.first_stamp_ns = 0
        self.last_stamp_ns = 0
        self._intervals: list[int] = []
        self._threshold_factor: float | None = None
        self._methods: set[str] = set()
        self._no_face = self._low_confidence = self._multiple = self._box_changes = self._gaps = 0
        self._late_anchors = 0
        self._face_before = False
        self._head_motion = 0.0
        self._max_upscale = 1.0
        self._reference: tuple[float, float] | None = None
        self._face_changed = 0
        self._image_size: list[int] | None = None
        self._other_size = 0
        self._other_size_seen: list[int] | None = None

    _STATE_FIELDS = ('trial_id', 'frame_count', 'flow_pairs', 'first_stamp_ns', 'last_stamp_ns', '_intervals',
                     '_threshold_factor', '_no_face', '_low_confidence', '_multiple', '_box_changes',
                     '_head_motion')
    _LATER_STATE_FIELDS = ('_gaps', '_max_upscale', '_late_anchors', '_face_before', '_face_changed',
                           '_image_size', '_other_size', '_other_size_seen')
    """Saved since the trial state file's version 2 began; a file without them keeps their start values."""

    def state(self) -> dict[str, Any]:
        """Everything the score so far depends on, as JSON-able data (floats keep every bit through JSON)."""
        state = {name: getattr(self, name) for name in (*self._STATE_FIELDS, *self._LATER_STATE_FIELDS)}
        state.update(config=dataclasses.asdict(self.config), methods=sorted(self._methods),
                     reference=self._reference, sides=[[region, side, total.state()]
                                                       for (region, side), total in self._sides.items()])
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> TrialAccumulator:
        """The accumulator state() described; adding further frames continues it bit for bit."""
        accumulator = cls(ScoringSettings(**state['config']), state['trial_id'])
        for name in cls._STATE_FIELDS:
            setattr(accumulator, name, state[name])
        for name in cls._LATER_STATE_FIELDS:
            setattr(accumulator, name, state.get(name, getattr(accumulator, name)))
        accumulator._intervals = list(state['_intervals'])
        accumulator._methods = set(state['methods'])
        accumulator._reference = tuple(state['reference']) if state['reference'] is not None else None
        for region, side, total in state['sides']:
            accumulator._sides[(region, side)] = _MovementSum.from_state(total)
        return accumulator

    def add(self, frame: RegionMotion) -> None:
        if self.frame_count and frame.stamp_ns < self.last_stamp_ns:
            raise ValueError('frames must be added in stamp order')
        if self.frame_count:
            self._intervals.append(frame.stamp_ns - self.last_stamp_ns)
            self._box_changes += frame.track_state == TrackState.REDETECTED
            # A whole-image detection while the face was there: the detector started over (a trial start that
            # reached it late, or a restart), so the box and the regions are not the trial's first frame's.
            self._late_anchors += frame.track_state == TrackState.DETECTED and self._face_before
        else:
            self.first_stamp_ns = frame.stamp_ns
            # Flow into the trial's first frame: the flow node had not begun the trial there (its start reached
            # it late), so its regions are anchored at a later frame, not at this one.
            self._late_anchors += frame.flow_valid
        self._face_before = frame.face_found
        self.frame_count += 1
        self.last_stamp_ns = frame.stamp_ns
        if frame.method:
            self._methods.add(frame.method)
        self._multiple += frame.faces_in_image > 1
        # Reported: the factor of the first pair with flow (of the first frame while there is none).
        if (frame.flow_valid and self.flow_pairs == 0) or self._threshold_factor is None:
            self._threshold_factor = frame.threshold_factor
        self._gaps += frame.gap
        self._face_changed += frame.face_changed
        self._check_image_size(frame.image_size)
        if frame.flow_valid:
            self._max_upscale = max(self._max_upscale, frame.magnitude_scale)
            self.flow_pairs += 1
            for motion in frame.regions:
                self._sides[(motion.region, motion.side)].add(motion.magnitude_sum, motion.pixel_count)
        self._track_quality(frame)

    def _check_image_size(self, size: tuple[int, int]) -> None:
        """One image geometry per trial: count the frames whose image size is not the first frame's."""
        if not size[0] or not size[1]:
            return  # a publisher that does not say it
        if self._image_size is None:
            self._image_size = [int(size[0]), int(size[1])]
        elif list(size) != self._image_size:
            self._other_size += 1
            self._other_size_seen = [int(size[0]), int(size[1])]

    def _track_quality(self, frame: RegionMotion) -> None:
        if not frame.face_found:
            self._no_face += 1
            self._reference = None
            return
        if 0.0 <= frame.landmark_confidence < self.config.min_landmark_confidence:
            self._low_confidence += 1
        if not frame.flow_valid and not frame.gap and frame.crop_box is not None:
            self._reference = (0.0, 0.0)  # an anchor frame: head offsets restart from here
            return
        if self._reference is None:
            self._reference = frame.head_offset
        dx = frame.head_offset[0] - self._reference[0]
        dy = frame.head_offset[1] - self._reference[1]
        self._head_motion = max(self._head_motion, math.hypot(dx, dy))

    def frame_period_ns(self) -> float:
        """The frame period dropped frames are counted with (nominal_frame_rate or the median interval; 0 with
        fewer than two frames)."""
        return frame_period_of(self._intervals, self.config.nominal_frame_rate)

    def result(self) -> ScoreResult:
        config = self.config
        regions = []
        empty = []
        still = []
        dropped = _dropped_frames(self._intervals, config.nominal_frame_rate)
        enough = self.frame_count - self._no_face >= config.min_frame_fraction * (self.frame_count + dropped)
        for name in REGION_NAMES:
            vs = {side: self._sides[(name, side)].value() for side in SIDE_NAMES}
            empty += [f'{name} {side}' for side, value in vs.items() if self.flow_pairs and math.isnan(value)]
            if all(value < config.min_movement for value in vs.values()):
                still.append(f'{name} (VS {vs["left"]:.5f} / {vs["right"]:.5f})')
            symmetry = symmetry_score(vs['left'], vs['right'], config.symmetry_lambda) if enough else math.nan
            regions.append(RegionScore(name, vs['left'], vs['right'], symmetry))
        method = {'software': f'facesym_ros {__version__}', 'symmetry_lambda': config.symmetry_lambda,
                  'max_head_motion': config.max_head_motion,
                  'min_landmark_confidence': config.min_landmark_confidence,
                  'min_movement': config.min_movement,
                  'frames': [json.loads(m) for m in sorted(self._methods)]}
        return ScoreResult(
            trial_id=self.trial_id, first_stamp_ns=self.first_stamp_ns, last_stamp_ns=self.last_stamp_ns,
            frame_count=self.frame_count, flow_pair_count=self.flow_pairs, regions=tuple(regions),
            symmetry_lambda=config.symmetry_lambda, threshold_factor=self._threshold_factor or 0.0,
            quality=self._quality(empty, still, dropped, enough), method=json.dumps(method, sort_keys=True))

    def _quality(self, empty_regions: list[str], still_regions: list[str], dropped: int, enough: bool) -> Quality:
        config = self.config
        head_motion = float(np.float32(self._head_motion))
        checks = [
            (self._no_face > 0, QualityFlag.NO_FACE, f'{self._no_face} of {self.frame_count} frames had no face'),
            (dropped > 0 or self._gaps > 0, QualityFlag.DROPPED_FRAMES,
             f'{dropped} frames missing (dropped or unpaired)'
             + (f'; {self._gaps} frame pairs spanned the gaps and got no flow' if self._gaps else '')),
            (self._low_confidence > 0, QualityFlag.LOW_LANDMARK_CONFIDENCE,
             f'{self._low_confidence} frames with landmark confidence below {config.min_landmark_confidence}'),
            (head_motion > config.max_head_motion, QualityFlag.HEAD_MOTION,
             f'head moved {head_motion:.2f} inter-ocular distances (limit {config.max_head_motion})'),
            (self.flow_pairs == 0, QualityFlag.TOO_FEW_FRAMES, 'no frame pair with optical flow: no score'),
            (self.flow_pairs > 0 and not enough, QualityFlag.TOO_FEW_FRAMES,
             (f'only {self.frame_count} of the trial\'s {self.frame_count + dropped} frames arrived'
              if not self._no_face else
              f'only {self.frame_count - self._no_face} of the trial\'s {self.frame_count + dropped} frames had '
              f'the face ({self._no_face} of the {self.frame_count} that came had none)')
             + f' (fewer than {config.min_frame_fraction:g} of them): no score'),
            (self._multiple > 0, QualityFlag.MULTIPLE_FACES,
             f'{self._multiple} of {self.frame_count} frames showed several faces; the patient\'s was scored (the '
             'largest, of faces about as large the one nearest the centre, within patient_region if set)'),
            (self._box_changes > 0, QualityFlag.FACE_BOX_CHANGED, f'the face left its box {self._box_changes} times'),
            (bool(empty_regions), QualityFlag.EMPTY_REGION,
             f'no pixels of {", ".join(empty_regions)} inside the face crop: no score for that region'),
            (self._max_upscale > config.max_face_upscale, QualityFlag.SMALL_FACE,
             f'small face: resampled x{self._max_upscale:.1f} to the reference scale (limit '
             f'{config.max_face_upscale:g}); motion this small in the camera is partly lost in its pixels'),
            (self._late_anchors > 0, QualityFlag.LATE_ANCHOR,
             'late anchor: the face box or the regions were set anew after the trial\'s first frame '
             f'({self._late_anchors} times; its start reached the graph late, or face_detector restarted): this '
             'score is not that of the recording; score the recording again'),
            (self._face_changed > 0, QualityFlag.FACE_CHANGED,
             f'another face? {self._face_changed} of {self.frame_count} frames did not look like the trial\'s '
             'first face: no score of this trial means anything'),
            (self._other_size > 0, QualityFlag.IMAGE_CHANGED,
             f'image size changed: {self._other_size} of {self.frame_count} frames were '
             f'{"x".join(map(str, self._other_size_seen or ()))}, the first '
             f'{"x".join(map(str, self._image_size or ()))}: no score of this trial means anything'),
            (self.flow_pairs > 0 and bool(still_regions), QualityFlag.LOW_MOTION,
             f'low motion: {", ".join(still_regions)} moved less than {config.min_movement:g} on both sides; '
             'its symmetry says nothing (was the task done?)'),
        ]
        flags = QualityFlag(0)
        notes = []
        for failed, flag, note in checks:
            if failed:
                flags |= flag
                notes.append(note)
        return Quality(self._no_face, dropped, self._low_confidence, self._multiple, self._box_changes,
                       head_motion, flags, tuple(notes))


def score_frames(frames: Sequence[RegionMotion], config: ScoringSettings, trial_id: str = '') -> ScoreResult:
    """Score the frames of one trial (sorted by stamp first)."""
    accumulator = TrialAccumulator(config, trial_id)
    for frame in sorted(frames, key=lambda f: f.stamp_ns):
        accumulator.add(frame)
    return accumulator.result()
