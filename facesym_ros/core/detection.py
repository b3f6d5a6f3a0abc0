"""Viola-Jones face detection (OpenCV Haar cascade), the choice of the patient's face and the box tracking policy.

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

Which face is the patient's (choose_patient), whenever the whole image is
searched (a trial's first frame, after the face was lost, when it left its
box): of the faces whose centre lies in `patient_region` (the whole image
when unset), the largest; of faces about as large as it (box area within
`patient_size_tolerance` of the largest's), the one nearest the centre of
`patient_region` (of its part inside the image; of the image). A face that
stays in its box stays the patient's, whatever faces come into view later.

Every frame's count of faces (FaceTrack.faces_in_image) takes the faces whose
side is at least COUNTED_FACE_FRACTION of the patient's. On frames whose box
the check confirmed, a census finds the others: the cascade over the whole
image, downscaled so that the box side is `census_size` pixels (a 640x480
frame with a 193 px face: 146x109 pixels), with the patient's box blanked, so
that it pays for the background and the other faces only (1.5 to 2 ms a frame
at 640x480). Its cost, like the check's, does not grow with the face.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facesym_ros.core.geometry import Box
from facesym_ros.core.settings import Settings, setting

COUNTED_FACE_FRACTION = 0.6
"""Faces whose box side is at least this fraction of the patient's are counted in faces_in_image."""
CENSUS_BLANK_MARGIN = 0.1
"""The census blanks the patient's box less this fraction of its side on every side (a face beside the
patient whose box overlaps the patient's that little is still found)."""


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
    track_min_neighbors: int = setting(3, 'min_neighbors of the downscaled scans: the check inside the tracking '
                                          'window and the census', min=0, max=50)
    track_scale_tolerance: float = setting(0.3, 'The check looks for faces this fraction smaller or larger '
                                                'than the box', min=0.0, max=0.9)
    track_check_size: int = setting(32, 'The check scans the tracking window downscaled so that the box side is '
                                        'this many pixels (never upscaled; the cascade\'s own window is 24)',
                                    min=24, max=4096)
    track_scale_factor: float = setting(1.2, 'Scale step between image pyramid levels of the check and the census',
                                        min=1.01, max=2.0)
    track_min_iou: float = setting(0.5, 'A face found with less overlap (IoU) with the box has moved out of '
                                        'it and is detected anew', min=0.0, max=1.0)
    lost_after_misses: int = setting(3, 'Consecutive failed checks after which the face counts as lost',
                                     min=1, max=1000)
    census_size: int = setting(44, 'The census that counts the faces in view scans the whole image downscaled so '
                                   'that the face box side is this many pixels (never upscaled; at least 40, so a '
                                   'face 0.6 of its size still fills the cascade\'s 24-pixel window)',
                               min=40, max=4096)
    patient_region: tuple = setting((0, 0, 0, 0), 'Where the patient is: [x, y, width, height] in image pixels; '
                                                   'only faces whose centre lies inside are the patient\'s. '
                                                   '[0, 0, 0, 0]: the whole image', min=0, max=65535)
    patient_size_tolerance: float = setting(0.2, 'Faces whose box area is within this fraction of the largest '
                                                 'one\'s count as equally large; of those, the one nearest the '
                                                 'centre of patient_region (of the image) is the patient\'s',
                                            min=0.0, max=0.9)

    def __post_init__(self) -> None:
        super().__post_init__()
        x, y, width, height = self.patient_region
        if (width == 0) != (height == 0) or (width == 0 and (x or y)):
            raise ValueError(f'patient_region must be [x, y, width, height] with a positive width and height, or '
                             f'[0, 0, 0, 0] for the whole image; got {list(self.patient_region)}')

    @property
    def region(self) -> Box | None:
        """patient_region as a Box; None: the whole image."""
        return Box(*self.patient_region) if self.patient_region[2] else None


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
               scale_factor: float | None = None, blank: Box | None = None) -> list[Detection]:
        """Faces in the image (or in `region` of it), largest box first.

        With scale < 1 the image (or region) is scanned downscaled by that
        factor; sizes and the boxes returned are in the pixels of `gray`.
        `blank` (in those pixels too) is filled with its mean grey first, so
        that the cascade rejects its windows at once: a face already known
        is not found, nor paid for, again.
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
        if blank is not None:
            x1, y1 = (max(0, round((blank.x - offset_x) * sx)), max(0, round((blank.y - offset_y) * sy)))
            x2, y2 = (max(0, round((blank.x2 - offset_x) * sx)), max(0, round((blank.y2 - offset_y) * sy)))
            if scale >= 1.0:
                gray = gray.copy()  # a view of the caller's image otherwise
            patch = gray[y1:y2, x1:x2]
            if patch.size:
                patch[...] = int(patch.mean())
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
        return largest_first(detections)


def largest_first(detections: list[Detection]) -> list[Detection]:
    """Largest box first; ties broken by position so the order never depends on OpenCV internals."""
    return sorted(detections, key=lambda d: (-d.box.area, d.box.y, d.box.x))


def patient_area(config: DetectorSettings, width: int, height: int) -> Box:
    """The part of an image of this size where the patient's face may be: patient_region, or the whole image.

    A patient_region that lies wholly outside the image is an error (ValueError): no face could ever be scored.
    """
    region = config.region
    if region is None:
        return Box(0, 0, width, height)
    area = region.clipped(width, height)
    if area is None:
        raise ValueError(f'patient_region {list(config.patient_region)} lies outside the {width}x{height} image')
    return area


def choose_patient(detections: tuple[Detection, ...], area: Box, size_tolerance: float) -> int:
    """Index of the patient's face among detections, -1 if none: of the faces whose centre lies in `area`, the
    largest; of those whose box area is within size_tolerance of the largest's, the one nearest the centre of
    `area` (ties: the first)."""
    candidates = [index for index, d in enumerate(detections) if area.contains(d.box.centre)]
    if not candidates:
        return -1
    largest = max(detections[index].box.area for index in candidates)
    alike = [index for index in candidates if detections[index].box.area >= (1.0 - size_tolerance) * largest]
    cx, cy = area.centre

    def distance(index: int) -> float:
        x, y = detections[index].box.centre
        return (x - cx) ** 2 + (y - cy) ** 2

    return min(alike, key=lambda index: (distance(index), index))


@dataclass(frozen=True)
class FaceTrack:
    """The detector's result for one frame.

    detections are the faces found in this frame, largest first: every face of
    the image after a whole-image search; on frames whose box the check
    confirmed, that face and the other faces the census found. selected
    indexes the patient's (-1 if none); box is the stable face box to use
    (None: no face).
    """

    state: TrackState
    box: Box | None
    detections: tuple[Detection, ...]
    selected: int

    @property
    def faces_in_image(self) -> int:
        """The faces in view: those whose side is at least COUNTED_FACE_FRACTION of the box's (all without a box)."""
        if self.box is None:
            return len(self.detections)
        least = COUNTED_FACE_FRACTION * max(self.box.width, self.box.height)
        return sum(max(d.box.width, d.box.height) >= least for d in self.detections)


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
        cfg = self.detector.config
        area = patient_area(cfg, width, height)
        if self._box is None:
            return self._full_detection(gray, area)

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
            # The relaxed check can also fire on parts of the face; it confirms this face, the census counts.
            self._misses = 0
            return self._with_census(gray, found[0])

        # Not in its box: look at the whole image. A face still in its box stays the patient; otherwise the
        # patient is chosen anew (the face moved, or another person's face is now the patient's by the rule),
        # and the box change is reported.
        everywhere = tuple(self.detector.detect(gray))
        chosen = choose_patient(everywhere, area, cfg.patient_size_tolerance)
        if chosen >= 0:
            self._misses = 0
            staying = [index for index, d in enumerate(everywhere)
                       if area.contains(d.box.centre) and d.box.iou(self._box) >= cfg.track_min_iou]
            if staying:
                return FaceTrack(TrackState.TRACKED, self._box, everywhere, staying[0])
            self._box = everywhere[chosen].box
            return FaceTrack(TrackState.REDETECTED, self._box, everywhere, chosen)

        self._misses += 1
        if self._misses < cfg.lost_after_misses:
            # A missed check (an expression the cascade dislikes) keeps the box for a few frames.
            return FaceTrack(TrackState.TRACKED, self._box, everywhere, -1)
        self.reset()
        return FaceTrack(TrackState.NO_FACE, None, everywhere, -1)

    def _with_census(self, gray: np.ndarray, confirmed: Detection) -> FaceTrack:
        """The confirmed face and the other faces in view, of at least COUNTED_FACE_FRACTION of its size."""
        cfg = self.detector.config
        box = self._box
        assert box is not None
        side = max(box.width, box.height)
        # The patient's face, known already, is blanked (all but a margin of its box): the census costs the
        # scan of the background, and of the other faces.
        census = self.detector.detect(
            gray, min_neighbors=cfg.track_min_neighbors,
            min_size=max(cfg.min_size, int(np.ceil(COUNTED_FACE_FRACTION * side))),
            scale=min(1.0, cfg.census_size / side), scale_factor=cfg.track_scale_factor,
            blank=box.expanded(-CENSUS_BLANK_MARGIN))
        faces = largest_first([confirmed, *(d for d in census if not box.contains(d.box.centre))])
        return FaceTrack(TrackState.TRACKED, box, tuple(faces), faces.index(confirmed))

    def _full_detection(self, gray: np.ndarray, area: Box) -> FaceTrack:
        detections = tuple(self.detector.detect(gray))
        self._misses = 0
        chosen = choose_patient(detections, area, self.detector.config.patient_size_tolerance)
        if chosen < 0:
            return FaceTrack(TrackState.NO_FACE, None, detections, -1)
        self._box = detections[chosen].box
        return FaceTrack(TrackState.DETECTED, self._box, detections, chosen)
