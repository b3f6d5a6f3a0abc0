"""The whole method on a stream of frames, in one process.

FacePipeline chains the same stages the ROS graph runs in separate nodes
(face tracking, landmarks, region motion), so that `facesym score`,
`facesym score-bag` and the live graph produce identical per-frame motion and
therefore identical scores.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from facesym_ros.core.detection import DetectorConfig, FaceTrack, FaceTracker, HaarFaceDetector, TrackState
from facesym_ros.core.flow import FlowConfig, FrameMotion, RegionMotionEstimator
from facesym_ros.core.frame import Frame
from facesym_ros.core.geometry import Landmarks
from facesym_ros.core.landmarks import LandmarkBackend
from facesym_ros.core.landmarks.factory import LandmarkConfig, make_landmark_backend
from facesym_ros.core.scoring import ScoreResult, ScoringConfig, score_frames

STAGES = ('detection', 'landmarks', 'flow')


@dataclass(frozen=True)
class PipelineConfig:
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    landmarks: LandmarkConfig = field(default_factory=LandmarkConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)


@dataclass(frozen=True)
class FrameResult:
    frame: Frame
    track: FaceTrack
    landmarks: Landmarks | None
    motion: FrameMotion


def predict_landmarks(backend: LandmarkBackend, frame: Frame, track: FaceTrack) -> Landmarks | None:
    """Landmarks of the tracked face, or None when the frame has no face."""
    if track.state == TrackState.NO_FACE or track.box is None:
        return None
    return backend.predict(frame, track.box)


class FacePipeline:
    """Face tracking, landmarks and region motion for a stream of frames."""

    def __init__(self, config: PipelineConfig | None = None, landmark_backend: LandmarkBackend | None = None):
        self.config = config or PipelineConfig()
        self.detector = HaarFaceDetector(self.config.detector)
        self.tracker = FaceTracker(self.detector)
        self.landmarks = landmark_backend or make_landmark_backend(self.config.landmarks)
        self.motion = RegionMotionEstimator(self.config.flow, self.landmarks.name)
        self.stage_seconds = dict.fromkeys(STAGES, 0.0)

    def start_trial(self, stamp_ns: int) -> None:
        """Anchor the regions at the first frame stamped at or after stamp_ns."""
        self.motion.anchor_at(stamp_ns)

    def process(self, frame: Frame) -> FrameResult:
        t0 = time.perf_counter()
        track = self.tracker.update(frame.gray)
        t1 = time.perf_counter()
        landmarks = predict_landmarks(self.landmarks, frame, track)
        t2 = time.perf_counter()
        motion = self.motion.update(frame, track.state, track.box, len(track.detections), landmarks)
        t3 = time.perf_counter()
        for stage, seconds in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            self.stage_seconds[stage] += seconds
        return FrameResult(frame, track, landmarks, motion)


def score_sequence(frames: Iterable[Frame], config: PipelineConfig | None = None,
                   landmark_backend: LandmarkBackend | None = None, trial_id: str = 'sequence',
                   results: list[FrameResult] | None = None) -> ScoreResult:
    """Score a whole sequence as one trial (the paper's setting); optionally keep per-frame results."""
    pipeline = FacePipeline(config, landmark_backend)
    motions = []
    for frame in frames:
        result = pipeline.process(frame)
        motions.append(result.motion)
        if results is not None:
            results.append(result)
    return score_frames(motions, pipeline.config.scoring, trial_id=trial_id)
