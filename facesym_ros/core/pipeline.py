"""The whole method on a stream of frames, in one process.

FacePipeline chains the same stages the ROS graph runs in separate nodes
(face tracking, landmarks, region motion), so that `facesym score`,
`facesym score-bag` and the live graph produce identical per-frame motion and
therefore identical scores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from facesym_ros.core.detection import DetectorSettings, FaceTrack, FaceTracker, HaarFaceDetector, TrackState
from facesym_ros.core.flow import FlowSettings, RegionMotion, RegionMotionEstimator
from facesym_ros.core.frame import Frame
from facesym_ros.core.geometry import Box, Landmarks
from facesym_ros.core.landmarks import LandmarkBackend
from facesym_ros.core.landmarks.factory import LandmarkSettings, make_landmark_backend
from facesym_ros.core.scoring import ScoreResult, ScoringSettings, TrialAccumulator

STAGES = ('detection', 'landmarks', 'flow')


@dataclass(frozen=True)
class PipelineSettings:
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    landmarks: LandmarkSettings = field(default_factory=LandmarkSettings)
    flow: FlowSettings = field(default_factory=FlowSettings)
    scoring: ScoringSettings = field(default_factory=ScoringSettings)


@dataclass(frozen=True)
class FrameResult:
    frame: Frame
    track: FaceTrack
    landmarks: Landmarks | None
    motion: RegionMotion
    patch: Frame | None = None
    """The face patch the landmarks and the flow saw (None: no face)."""


def scored_box(track: FaceTrack) -> Box | None:
    """The box of the face the pipeline scores in a frame; None: the frame has no face."""
    return None if track.state == TrackState.NO_FACE else track.box


def predict_landmarks(backend: LandmarkBackend, frame: Frame, track: FaceTrack) -> Landmarks | None:
    """Landmarks of the tracked face, or None when the frame has no face; `frame` may be its face patch."""
    box = scored_box(track)
    return None if box is None else backend.predict(frame, box)


def face_patch_of(frame: Frame, track: FaceTrack) -> Frame | None:
    """What the landmarks and the flow see of a frame: the patch around the tracked face (None: no face).

    The live graph sends only this patch from face_detector to landmark_detector and optical_flow; the core cuts
    the same patch, so both compute on the same pixels.
    """
    box = scored_box(track)
    return None if box is None else frame.face_patch(box)


class FacePipeline:
    """Face tracking, landmarks and region motion for a stream of frames."""

    def __init__(self, config: PipelineSettings | None = None, landmark_backend: LandmarkBackend | None = None):
        self.config = config or PipelineSettings()
        self.detector = HaarFaceDetector(self.config.detector)
        self.tracker = FaceTracker(self.detector)
        self.landmarks = landmark_backend or make_landmark_backend(self.config.landmarks)
        self.motion = RegionMotionEstimator(self.config.flow, self.landmarks.name)
        self.stage_seconds = dict.fromkeys(STAGES, 0.0)

    def process(self, frame: Frame) -> FrameResult:
        t0 = time.perf_counter()
        track = self.tracker.update(frame.gray)
        t1 = time.perf_counter()
        patch = face_patch_of(frame, track)
        seen = patch if patch is not None else frame  # what the landmarks and the flow see (the frame: no face)
        landmarks = predict_landmarks(self.landmarks, seen, track)
        t2 = time.perf_counter()
        motion = self.motion.update(seen, track.state, track.box, track.faces_in_image, landmarks)
        t3 = time.perf_counter()
        for stage, seconds in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            self.stage_seconds[stage] += seconds
        return FrameResult(frame, track, landmarks, motion, patch)


def score_sequence(frames: Iterable[Frame], config: PipelineSettings | None = None,
                   landmark_backend: LandmarkBackend | None = None, trial_id: str = 'sequence',
                   on_frame: Callable[[FrameResult], None] | None = None) -> ScoreResult:
    """Score a whole sequence as one trial (the paper's setting).

    Frames are scored as they come and not kept, so memory does not grow with
    the sequence; on_frame sees each frame's result (to draw or write it).
    """
    pipeline = FacePipeline(config, landmark_backend)
    trial = TrialAccumulator(pipeline.config.scoring, trial_id)
    for frame in frames:
        result = pipeline.process(frame)
        trial.add(result.motion)
        if on_frame is not None:
            on_frame(result)
    return trial.result()
