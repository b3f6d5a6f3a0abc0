"""Movement and symmetry scores (paper Eq. 4 and 5) and the quality of a trial.

    VS = sum_{t=2..N} sum_{x in region} f(x, t) / (M (N - 1))
    SS = 1 - lambda |VS_left - VS_right|, clamped to [0, 1], lambda = 3.8

computed per region side over the frames of a trial. When every frame pair
has flow and the region keeps its M pixels, this is exactly the paper's
formula. Pairs without flow (no face, the box changed, the anchor frame)
contribute nothing and are not counted in N - 1; when regions follow every
frame (regions_from = every_frame) M varies and VS is the mean over pairs of
each pair's per-pixel motion. A score that cannot be computed (no pair with
flow, or a region side with no pixels in the crop) is NaN and flagged, never
a silent 1.0.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from facesym_ros import __version__
from facesym_ros.core.detection import TrackState
from facesym_ros.core.flow import FrameMotion
from facesym_ros.core.regions import REGION_NAMES
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


NO_FLAGS = QualityFlag(0)


@dataclass(frozen=True)
class ScoringConfig(Settings):
    symmetry_lambda: float = setting(3.8, 'lambda of SS = 1 - lambda |VS_left - VS_right| (paper: 3.8)',
                                     min=0.0, max=1000.0)
    max_head_motion: float = setting(0.25, 'Rigid head motion within a trial above which the score is '
                                           'flagged [inter-ocular distances]', min=0.0, max=10.0)
    min_landmark_confidence: float = setting(0.3, 'Frames whose mean landmark confidence is below this are '
                                                  'flagged (backends with confidences only)', min=0.0, max=1.0)
    nominal_frame_rate: float = setting(0.0, 'Camera frame rate used to count dropped frames; 0 estimates it '
                                             'from the median frame interval [Hz]', min=0.0, max=1000.0)


def movement_score(magnitude_sums: Sequence[float], pixel_counts: Sequence[int]) -> float:
    """VS of one region side from its per-pair magnitude sums and pixel counts (NaN if undefined)."""
    pairs = len(magnitude_sums)
    if pairs == 0 or len(pixel_counts) != pairs or any(count <= 0 for count in pixel_counts):
        return math.nan
    if len(set(pixel_counts)) == 1:
        return math.fsum(magnitude_sums) / (pixel_counts[0] * pairs)
    return math.fsum(s / m for s, m in zip(magnitude_sums, pixel_counts, strict=True)) / pairs


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

    def region(self, name: str) -> RegionScore:
        return next(region for region in self.regions if region.region == name)

    def to_json_dict(self) -> dict:
        """The `facesym score --json` shape; NaN (no score) becomes null."""
        def number(value: float) -> float | None:
            return None if math.isnan(value) else value

        quality = self.quality
        return {
            'trial_id': self.trial_id,
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


def _dropped_frames(stamps: list[int], nominal_frame_rate: float) -> int:
    intervals = np.diff(np.array(sorted(stamps), dtype=np.int64))
    intervals = intervals[intervals > 0]
    if intervals.size == 0:
        return 0
    period = 1e9 / nominal_frame_rate if nominal_frame_rate > 0 else float(np.median(intervals))
    return int(sum(max(0, round(interval / period) - 1) for interval in intervals.tolist()))


def _max_head_motion(frames: Sequence[FrameMotion]) -> float:
    """Largest rigid displacement from the first frame of each anchor segment in the trial."""
    largest = 0.0
    reference: tuple[float, float] | None = None
    for frame in frames:
        if not frame.face_found:
            reference = None
            continue
        if not frame.flow_valid and frame.crop_box is not None:
            reference = (0.0, 0.0)  # an anchor frame: offsets restart from here
            continue
        if reference is None:
            reference = frame.head_offset
        dx = frame.head_offset[0] - reference[0]
        dy = frame.head_offset[1] - reference[1]
        largest = max(largest, math.hypot(dx, dy))
    return float(np.float32(largest))


def _quality(frames: Sequence[FrameMotion], pairs: int, empty_regions: list[str],
             config: ScoringConfig) -> Quality:
    no_face = sum(not f.face_found for f in frames)
    dropped = _dropped_frames([f.stamp_ns for f in frames], config.nominal_frame_rate)
    low_confidence = sum(0.0 <= f.landmark_confidence < config.min_landmark_confidence
                         for f in frames if f.face_found)
    multiple = sum(f.faces_in_image > 1 for f in frames)
    box_changes = sum(f.track_state == TrackState.REDETECTED for f in frames[1:])
    head_motion = _max_head_motion(frames)

    flags = QualityFlag(0)
    notes = []
    checks = [
        (no_face > 0, QualityFlag.NO_FACE, f'{no_face} of {len(frames)} frames had no face'),
        (dropped > 0, QualityFlag.DROPPED_FRAMES, f'{dropped} frames missing (dropped or unpaired)'),
        (low_confidence > 0, QualityFlag.LOW_LANDMARK_CONFIDENCE,
         f'{low_confidence} frames with landmark confidence below {config.min_landmark_confidence}'),
        (head_motion > config.max_head_motion, QualityFlag.HEAD_MOTION,
         f'head moved {head_motion:.2f} inter-ocular distances (limit {config.max_head_motion})'),
        (pairs == 0, QualityFlag.TOO_FEW_FRAMES, 'no frame pair with optical flow: no score'),
        (multiple > 0, QualityFlag.MULTIPLE_FACES, f'{multiple} frames showed several faces; the largest was scored'),
        (box_changes > 0, QualityFlag.FACE_BOX_CHANGED, f'the face left its box {box_changes} times'),
        (bool(empty_regions), QualityFlag.EMPTY_REGION,
         f'no pixels of {", ".join(empty_regions)} inside the face crop: no score for that region'),
    ]
    for failed, flag, note in checks:
        if failed:
            flags |= flag
            notes.append(note)
    return Quality(no_face, dropped, low_confidence, multiple, box_changes, head_motion, flags, tuple(notes))


def score_frames(frames: Sequence[FrameMotion], config: ScoringConfig, trial_id: str = '') -> ScoreResult:
    """Score the frames of one trial, in stamp order."""
    frames = sorted(frames, key=lambda f: f.stamp_ns)
    valid = [f for f in frames if f.flow_valid]
    regions: list[RegionScore] = []
    empty: list[str] = []
    for name in REGION_NAMES:
        vs = {}
        for side in ('left', 'right'):
            sums, counts = [], []
            for frame in valid:
                motion = next(m for m in frame.regions if m.region == name and m.side == side)
                sums.append(motion.magnitude_sum)
                counts.append(motion.pixel_count)
            vs[side] = movement_score(sums, counts)
            if valid and math.isnan(vs[side]):
                empty.append(f'{name} {side}')
        regions.append(RegionScore(name, vs['left'], vs['right'],
                                   symmetry_score(vs['left'], vs['right'], config.symmetry_lambda)))

    methods = sorted({f.method for f in frames if f.method})
    method = {'software': f'facesym_ros {__version__}', 'symmetry_lambda': config.symmetry_lambda,
              'max_head_motion': config.max_head_motion,
              'min_landmark_confidence': config.min_landmark_confidence,
              'frames': [json.loads(m) for m in methods]}
    return ScoreResult(
        trial_id=trial_id,
        first_stamp_ns=frames[0].stamp_ns if frames else 0,
        last_stamp_ns=frames[-1].stamp_ns if frames else 0,
        frame_count=len(frames),
        flow_pair_count=len(valid),
        regions=tuple(regions),
        symmetry_lambda=config.symmetry_lambda,
        threshold_factor=valid[0].threshold_factor if valid else (frames[0].threshold_factor if frames else 0.0),
        quality=_quality(frames, len(valid), empty, config),
        method=json.dumps(method, sort_keys=True),
    )
