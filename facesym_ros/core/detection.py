"""Viola-Jones face detection (OpenCV Haar cascade) and the face-box tracking policy.

The paper detects the face in the first frame and computes optical flow inside
that fixed face patch. FaceTracker does the same, and checks every later frame
cheaply with the cascade inside a window around the box, downscaled so that the
box side is track_check_size pixels: the box is kept while the face is still in
it. The check scans the same number of pixels whatever the size of the face or
of the image (under 1% of a 640x480 frame by default), so it costs less than
the landmarks. Only when the check fails is the whole image
searched: a face found elsewhere replaces the box (the face moved), and when
no face is found for `lost_after_misses` frames the face counts as lost. A
stable box matters: the flow of consecutive crops is only meaningful when both
crops are the same window of the image.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facesym_ros.core.geometry import Box
from facesym_ros.core.settings import Settings, setting


class TrackState(enum.IntEnum):
    """Where the box of a frame came from; values match FaceDetections.STATE_*."""

    NO_FACE = 0
    DETECTED = 1
    TRACKED = 2
    REDETECTED = 3


@dataclass(frozen=True)
class Detection:
    box: Box
    confidence: float


@dataclass(frozen=True)
class DetectorSettings(Settings):
    """Settings of the Haar cascade and of the tracking policy."""

    cascade: str = setting('haarcascade_frontalface_default.xml',
                           'Haar cascade file: a name bundled with opencv-python, or a path')
    scale_factor: float = setting(1.1, 'Scale step between image pyramid levels of the cascade',
                                  min=1.01, max=2.0)
    min_neighbors: int = setting(5, 'Overlapping raw detections needed to accept a face', min=0, max=50)
    min_size: int = setting(60, 'Smallest face side searched for [px]', min=8, max=4096)
    track_margin: float = setting(0.25, 'Tracking window: the face box grown by this fraction of its size '
                                        'on every side', min=0.0, max=2.0)
    track_min_neighbors: int = setting(3, 'min_neighbors of the check inside the tracking window', min=0, max=50)
    track_scale_tolerance: float = setting(0.3, 'The check looks for faces this fraction smaller or larger '
                                                'than the box', min=0.0, max=0.9)
    track_check_size: int = setting(32, 'The check scans the tracking window downscaled so that the box side is '
                                        'this many pixels (never upscaled; the cascade\'s own window is 24)',
                                    min=24, max=4096)
    track_scale_factor: float = setting(1.2, 'Scale step between image pyramid levels of the check',
                                        min=1.01, max=2.0)
    track_min_iou: float = setting(0.5, 'A face found with less overlap (IoU) with the box has moved out of '
                                        'it and is detected anew', min=0.0, max=1.0)
    lost_after_misses: int = setting(3, 'Consecutive failed checks after which the face counts as lost',
                                     min=1, max=1000)


def resolve_cascade(name: str) -> Path:
    """A cascade file: a path, or the name of one bundled with opencv-python."""
    candidates = [Path(name).expanduser(), Path(cv2.data.haarcascades) / name]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f'Haar cascade {name!r} not found (looked for {", ".join(str(p) for p in candidates)})')


class HaarFaceDetector:
    """OpenCV's Viola-Jones detector; returns faces largest first."""

    def __init__(self, config: DetectorSettings) -> None:
        self.config = config
        self.cascade_path = resolve_cascade(config.cascade)
        try:
            self._cascade = cv2.CascadeClassifier(str(self.cascade_path))
        except (cv2.error, SystemError):  # OpenCV raises SystemError for a file that is not a cascade at all
            self._cascade = None
        if self._cascade is None or self._cascade.empty():
            raise ValueError(f'{self.cascade_path} is not a Haar cascade OpenCV can load')
        self.name = f'haar:{self.cascade_path.name}'
        self.pixels_scanned = 0
        """Pixels of all the images the cascade has scanned so far (a cost measure that is not a clock)."""

    def detect(self, gray: np.ndarray, region: Box | None = None, min_neighbors: int | None = None,
               min_size: int | None = None, max_size: int | None = None, *, scale: float = 1.0,
               scale_factor: float | None = None) -> list[Detection]:
        """Faces in the image (or in `region` of it), largest box first.

        With scale < 1 the image (or region) is scanned downscaled by that
        factor; sizes and the boxes returned are in the pixels of `gray`.
        """
        cfg = self.config
        offset_x = offset_y = 0
        if region is not None:
            gray = region.crop(gray)
            offset_x, offset_y = region.x, region.y
        side = cfg.min_size if min_size is None else min_size
        sx = sy = 1.0
        if scale < 1.0:
            height, width = gray.shape[:2]
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            # Every `step`-th pixel first (at least twice the final size, so the area average still smooths),
            # so the cost is bounded by the output size, not by the size of the face.
            step = max(1, int(0.5 / scale))
            gray = cv2.resize(gray[::step, ::step], size, interpolation=cv2.INTER_AREA)
            sx, sy = size[0] / width, size[1] / height
            side = max(1, int(side * min(sx, sy)))
            if max_size is not None:
                max_size = int(np.ceil(max_size * max(sx, sy)))
        kwargs = {'minSize': (side, side)}
        if max_size is not None:
            kwargs['maxSize'] = (max_size, max_size)
        self.pixels_scanned += gray.shape[0] * gray.shape[1]
        boxes, _, weights = self._cascade.detectMultiScale3(
            gray, scaleFactor=cfg.scale_factor if scale_factor is None else scale_factor,
            minNeighbors=cfg.min_neighbors if min_neighbors is None else min_neighbors,
            outputRejectLevels=True, **kwargs)
        # Confidences at float32, the precision FaceDetections carries.
        detections = [
            Detection(Box(round(int(x) / sx) + offset_x, round(int(y) / sy) + offset_y,
                          max(1, round(int(w) / sx)), max(1, round(int(h) / sy))), float(np.float32(weight)))
            for (x, y, w, h), weight in zip(np.reshape(boxes, (-1, 4)), np.ravel(weights), strict=True)
        ]
        # Largest first; ties broken by position so the order never depends on OpenCV internals.
        detections.sort(key=lambda d: (-d.box.area, d.box.y, d.box.x))
        return detections


@dataclass(frozen=True)
class FaceTrack:
    """The detector's result for one frame.

    detections are the faces found in this frame, largest first: all faces of
    the image after a whole-image search, only the confirmed face on TRACKED
    frames. selected indexes the one scored (-1 if none); box is the stable
    face box to use (None: no face).
    """

    state: TrackState
    box: Box | None
    detections: tuple[Detection, ...]
    selected: int


class FaceTracker:
    """Detect once, then keep the box while the face stays in it (the paper's fixed face patch)."""

    def __init__(self, detector: HaarFaceDetector) -> None:
        self.detector = detector
        self._box: Box | None = None
        self._misses = 0

    def reset(self) -> None:
        self._box = None
        self._misses = 0

    def update(self, gray: np.ndarray) -> FaceTrack:
        height, width = gray.shape[:2]
        if self._box is None:
            return self._full_detection(gray)

        cfg = self.detector.config
        side = max(self._box.width, self._box.height)
        window = self._box.expanded(cfg.track_margin).clipped(width, height)
        found: list[Detection] = []
        if window is not None:
            found = self.detector.detect(
                gray, region=window, min_neighbors=cfg.track_min_neighbors,
                min_size=max(1, int(side * (1.0 - cfg.track_scale_tolerance))),
                max_size=int(np.ceil(side * (1.0 + cfg.track_scale_tolerance))),
                scale=min(1.0, cfg.track_check_size / side), scale_factor=cfg.track_scale_factor)
        if found and found[0].box.iou(self._box) >= cfg.track_min_iou:
            # The relaxed check can also fire on parts of the face; it confirms this face, it is no census.
            self._misses = 0
            return FaceTrack(TrackState.TRACKED, self._box, (found[0],), 0)

        # Not in its box: look at the whole image. A face found elsewhere has moved (or it is another
        # person's, larger face: the largest is scored, and the box change is reported either way).
        everywhere = tuple(self.detector.detect(gray))
        if everywhere:
            self._misses = 0
            if everywhere[0].box.iou(self._box) >= cfg.track_min_iou:
                return FaceTrack(TrackState.TRACKED, self._box, everywhere, 0)
            self._box = everywhere[0].box
            return FaceTrack(TrackState.REDETECTED, self._box, everywhere, 0)

        self._misses += 1
        if self._misses < cfg.lost_after_misses:
            # A missed check (an expression the cascade dislikes) keeps the box for a few frames.
            return FaceTrack(TrackState.TRACKED, self._box, (), -1)
        self.reset()
        return FaceTrack(TrackState.NO_FACE, None, (), -1)

    def _full_detection(self, gray: np.ndarray) -> FaceTrack:
        detections = tuple(self.detector.detect(gray))
        self._misses = 0
        if not detections:
            return FaceTrack(TrackState.NO_FACE, None, (), -1)
        self._box = detections[0].box
        return FaceTrack(TrackState.DETECTED, self._box, detections, 0)
