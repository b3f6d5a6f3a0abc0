"""The whole method on a stream of frames, in one process.

FacePipeline chains the same stages the ROS graph runs in separate nodes
(face tracking, landmarks, region motion), so that `facesym score`,
`facesym score-bag` and the live graph produce identical per-frame motion and
therefore identical scores.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from facesym_ros.core.detection import DetectorSettings, FaceTrack, FaceTracker, HaarFaceDetector, TrackState
from facesym_ros.core.flow import FlowSettings, RegionMotion, RegionMotionEstimator
from facesym_ros.core.frame import Frame
from facesym_ros.core.geometry import Box, Landmarks
from facesym_ros.core.landmarks import LandmarkBackend
from facesym_ros.core.landmarks.factory import LandmarkSettings, make_landmark_backend
from facesym_ros.core.scoring import ScoreResult, ScoringSettings, TrialAccumulator
from facesym_ros.core.video import FrameSource

STAGES = ('detection', 'landmarks', 'flow')
T = TypeVar('T')
READ_AHEAD = 4
"""Frames a reading thread may observe ahead of the flow: a few frames' memory, enough to keep both busy."""


@dataclass(frozen=True)
class PipelineSettings:
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    landmarks: LandmarkSettings = field(default_factory=LandmarkSettings)
    flow: FlowSettings = field(default_factory=FlowSettings)
    scoring: ScoringSettings = field(default_factory=ScoringSettings)


@dataclass(frozen=True)
class Observation:
    """What the face side of the pipeline found in a frame, before its motion is measured."""

    frame: Frame
    track: FaceTrack
    landmarks: Landmarks | None
    patch: Frame | None
    """The face patch the landmarks saw and the flow will see (None: no face)."""


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
        return self.measure(self.observe(frame))

    def observe(self, frame: Frame) -> Observation:
        """The face side of a frame: its track, patch and landmarks (face_detector and landmark_detector live).

        observe and measure touch separate state, so one thread may observe the next frames while another
        measures the earlier ones; each must see the frames in stamp order.
        """
        t0 = time.perf_counter()
        track = self.tracker.update(frame.gray)
        t1 = time.perf_counter()
        patch = face_patch_of(frame, track)
        landmarks = predict_landmarks(self.landmarks, patch if patch is not None else frame, track)
        t2 = time.perf_counter()
        self.stage_seconds['detection'] += t1 - t0
        self.stage_seconds['landmarks'] += t2 - t1
        return Observation(frame, track, landmarks, patch)

    def measure(self, observed: Observation) -> FrameResult:
        """The region motion of an observed frame against the one measured before it (optical_flow live)."""
        t0 = time.perf_counter()
        seen = observed.patch if observed.patch is not None else observed.frame  # the frame: no face
        track = observed.track
        motion = self.motion.update(seen, track.state, track.box, track.faces_in_image, observed.landmarks)
        self.stage_seconds['flow'] += time.perf_counter() - t0
        return FrameResult(observed.frame, track, observed.landmarks, motion, observed.patch)


def score_sequence(frames: Iterable[Frame], config: PipelineSettings | None = None,
                   landmark_backend: LandmarkBackend | None = None, trial_id: str = 'sequence',
                   on_frame: Callable[[FrameResult], None] | None = None, *,
                   read_ahead: int = READ_AHEAD) -> ScoreResult:
    """Score a whole sequence as one trial (the paper's setting).

    Frames are scored as they come and not kept, so memory does not grow with
    the sequence; on_frame sees each frame's result (to draw or write it). A
    second thread reads and observes up to read_ahead frames ahead of the flow
    (0: one thread); the scores are the same either way.
    """
    pipeline = FacePipeline(config, landmark_backend)
    trial = TrialAccumulator(pipeline.config.scoring, trial_id)
    observed = (pipeline.observe(frame) for frame in frames)
    with contextlib.closing(run_ahead(observed, read_ahead)) as ahead:
        for observation in ahead:
            result = pipeline.measure(observation)
            trial.add(result.motion)
            if on_frame is not None:
                on_frame(result)
    return trial.result()


@dataclass(frozen=True)
class VideoScore:
    """`facesym score` of one video file or folder of frames: its one trial, named after the file."""

    score: ScoreResult
    frame_rate: float
    landmark_backend: str


def score_video(path: str | Path, config: PipelineSettings, frame_rate: float | None = None,
                on_frame: Callable[[FrameResult], None] | None = None, *,
                read_ahead: int = READ_AHEAD) -> VideoScore:
    """Score a video file or a folder of frames as one trial whose id is the file's stem (`facesym score`;
    read_ahead as in score_sequence: the same score either way)."""
    path = Path(path)
    source = FrameSource.open(path, frame_rate)
    backend = make_landmark_backend(config.landmarks)
    score = score_sequence(source.frames(), config, backend, trial_id=path.stem, on_frame=on_frame,
                           read_ahead=read_ahead)
    return VideoScore(score, source.frame_rate, backend.name)


def run_ahead(steps: Iterator[T], depth: int) -> Iterator[T]:
    """The items of `steps`, made in a thread of their own up to `depth` ahead of the caller (0: in its thread).

    OpenCV releases the GIL while it works, so reading and observing the next frames overlaps the flow of this
    one on a second core. The thread's exception is raised here; a caller that stops early (closes this) stops
    the thread.
    """
    if depth <= 0:
        yield from steps
        return
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def hand_on(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        error: BaseException | None = None
        try:
            for step in steps:
                if not hand_on((step, None)):
                    return
        except BaseException as raised:  # raised again in the caller's thread
            error = raised
        finally:
            close = getattr(steps, 'close', None)
            if close is not None:
                close()
        hand_on((end, error))

    thread = threading.Thread(target=produce, name='facesym-read-ahead', daemon=True)
    thread.start()
    try:
        while True:
            item, error = handoff.get()
            if item is end:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()
