"""Dense optical flow in the face crop and the per-frame motion of the six regions.

Per frame pair the method (paper section 4.3) computes Farneback flow between
the previous and the current face crop, sets every magnitude below
threshold_factor x the mean magnitude of the crop to zero, and sums the
remaining magnitudes inside each region side. RegionMotionEstimator keeps the
state this needs over a stream of frames: the previous crop, and the anchor,
the frame whose landmarks define the regions (the first frame, as in the
paper; again after the face box changed or a trial started).

Two departures from the paper are available as options, both off by default:
`normalize_face_size` scales magnitudes to a reference inter-ocular distance
so that scores of near and far faces compare; `remove_rigid_motion` subtracts
the crop's median flow vector, so a head that shifts as a whole adds no motion.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from facesym_ros.core.detection import TrackState
from facesym_ros.core.frame import Frame
from facesym_ros.core.geometry import Box, Landmarks
from facesym_ros.core.regions import STABLE_POINTS, FaceAxes, RegionError, face_regions, region_masks
from facesym_ros.core.settings import Settings, setting


@dataclass(frozen=True)
class FlowSettings(Settings):
    """Settings of the optical flow, the threshold and the region geometry."""

    threshold_factor: float = setting(6.0, 'Flow magnitudes below this factor x the mean magnitude of the face '
                                           'crop are set to zero (paper: 6)', min=0.0, max=100.0)
    pyr_scale: float = setting(0.5, 'Farneback: scale between pyramid levels', min=0.1, max=0.9)
    levels: int = setting(3, 'Farneback: number of pyramid levels', min=1, max=10)
    winsize: int = setting(15, 'Farneback: averaging window size [px]', min=3, max=101)
    iterations: int = setting(3, 'Farneback: iterations per pyramid level', min=1, max=50)
    poly_n: int = setting(5, 'Farneback: pixel neighbourhood of the polynomial expansion', min=3, max=11)
    poly_sigma: float = setting(1.2, 'Farneback: Gaussian sigma of the polynomial expansion', min=0.5, max=5.0)
    regions_from: str = setting('first_frame', 'Landmarks that define the regions: the anchor frame\'s '
                                               '(first_frame, as in the paper) or every frame\'s own',
                                choices=('first_frame', 'every_frame'))
    forehead_height: float = setting(0.3, 'Forehead height as a fraction of the brow-to-chin distance',
                                     min=0.05, max=1.0)
    eye_margin: float = setting(0.15, 'Eye region extends this many inter-ocular distances below the eye',
                                min=0.0, max=1.0)
    mirrored: bool = setting(False, 'Images are mirrored left-right (patient\'s left on the image left)')
    normalize_face_size: bool = setting(False, 'Scale flow magnitudes to reference_interocular (off: the paper)')
    reference_interocular: float = setting(64.0, 'Inter-ocular distance magnitudes are scaled to when '
                                                 'normalize_face_size is on [px]', min=1.0, max=4096.0)
    remove_rigid_motion: bool = setting(False, 'Subtract the median flow vector of the crop before taking '
                                               'magnitudes (off: the paper)')

    def method(self, landmark_backend: str) -> str:
        """JSON of everything that shapes the per-frame motion; travels with every RegionMotion."""
        return json.dumps({'landmark_backend': landmark_backend, **asdict(self)}, sort_keys=True)


def farneback_magnitude(previous: np.ndarray, current: np.ndarray, config: FlowSettings) -> np.ndarray:
    """Flow magnitude [px/frame] per pixel of two same-size grayscale crops (float32)."""
    flow = cv2.calcOpticalFlowFarneback(
        previous, current, None, config.pyr_scale, config.levels, config.winsize,
        config.iterations, config.poly_n, config.poly_sigma, 0)
    if config.remove_rigid_motion:
        flow = flow - np.median(flow.reshape(-1, 2), axis=0).astype(np.float32)
    return cv2.magnitude(flow[..., 0], flow[..., 1])


def threshold_magnitude(magnitude: np.ndarray, threshold_factor: float) -> tuple[np.ndarray, float, float]:
    """Zero magnitudes below threshold_factor x the crop mean; return (magnitudes, mean, threshold).

    mean and threshold are rounded to float32, the precision RegionMotion
    carries, and the comparison uses exactly the float32 threshold reported.
    """
    mean = np.float32(np.mean(magnitude, dtype=np.float64))
    threshold = np.float32(float(threshold_factor) * float(mean))
    kept = np.where(magnitude >= threshold, magnitude, np.float32(0.0))
    return kept, float(mean), float(threshold)


@dataclass(frozen=True)
class RegionSideMotion:
    region: str
    side: str
    magnitude_sum: float
    pixel_count: int
    polygon: np.ndarray

    @property
    def mean_magnitude(self) -> float:
        return self.magnitude_sum / self.pixel_count if self.pixel_count else 0.0


@dataclass(frozen=True)
class RegionMotion:
    """What RegionMotion carries for one frame; see msg/RegionMotion.msg for the fields.

    Float fields hold exactly the values the message can carry (float32 where
    the message has float32), so a score computed from messages equals one
    computed from these objects. `magnitude` (the thresholded magnitude map of
    the crop, for heat maps) is not part of the message.
    """

    stamp_ns: int
    previous_stamp_ns: int
    face_found: bool
    flow_valid: bool
    crop_box: Box | None
    crop_mean_magnitude: float
    threshold_factor: float
    threshold: float
    magnitude_scale: float
    regions: tuple[RegionSideMotion, ...]
    head_offset: tuple[float, float]
    landmark_confidence: float
    track_state: TrackState
    faces_in_image: int
    method: str
    magnitude: np.ndarray | None = None


def _f32(value: float) -> float:
    return float(np.float32(value))


@dataclass
class _Anchor:
    crop: Box
    axes: FaceAxes
    stable_points: np.ndarray
    regions: tuple
    masks: list[np.ndarray]
    magnitude_scale: float


class RegionMotionEstimator:
    """Turns a stream of (frame, face box, landmarks) into per-frame region motion."""

    def __init__(self, config: FlowSettings, landmark_backend: str) -> None:
        self.config = config
        self.landmark_backend = landmark_backend
        self.method = config.method(landmark_backend)
        self._anchor: _Anchor | None = None
        self._previous: tuple[int, np.ndarray] | None = None

    def set_landmark_backend(self, name: str) -> None:
        """Name the landmark model in the method string (the live graph learns it from the messages)."""
        if name != self.landmark_backend:
            self.landmark_backend = name
            self.method = self.config.method(name)

    def reset(self) -> None:
        """Forget the anchor and the previous frame."""
        self._anchor = None
        self._previous = None

    def reanchor(self) -> None:
        """The next frame defines the regions anew (a trial starts with it); no flow leads into it."""
        self._anchor = None

    def update(self, frame: Frame, track_state: TrackState, box: Box | None, faces_in_image: int,
               landmarks: Landmarks | None) -> RegionMotion:
        confidence = landmarks.mean_confidence if landmarks is not None else None
        common = dict(
            stamp_ns=frame.stamp_ns, threshold_factor=_f32(self.config.threshold_factor),
            landmark_confidence=-1.0 if confidence is None else _f32(confidence),
            track_state=track_state, faces_in_image=faces_in_image, method=self.method)
        crop = box.clipped(frame.width, frame.height) if box is not None else None
        if crop is None or landmarks is None:
            self._anchor = None
            self._previous = None
            return RegionMotion(previous_stamp_ns=0, face_found=False, flow_valid=False, crop_box=None,
                               crop_mean_magnitude=0.0, threshold=0.0, magnitude_scale=1.0, regions=(),
                               head_offset=(0.0, 0.0), **common)

        current = crop.crop(frame.gray)
        if self._anchor is None or self._anchor.crop != crop or self._previous is None:
            return self._start_anchor(frame, crop, current, landmarks, common)

        anchor = self._anchor
        previous_stamp, previous = self._previous
        self._previous = (frame.stamp_ns, current)
        regions, masks = anchor.regions, anchor.masks
        if self.config.regions_from == 'every_frame':
            try:
                regions = face_regions(landmarks, **self._region_args())
                masks = region_masks(regions, landmarks, crop)
            except RegionError:
                return self._invalid(crop, regions, anchor.magnitude_scale, common)

        magnitude = farneback_magnitude(previous, current, self.config)
        if anchor.magnitude_scale != 1.0:
            magnitude = magnitude * np.float32(anchor.magnitude_scale)
        kept, mean, threshold = threshold_magnitude(magnitude, self.config.threshold_factor)
        sides = tuple(
            RegionSideMotion(side.region, side.side, float(kept[mask].sum(dtype=np.float64)), int(mask.sum()),
                             side.polygon)
            for side, mask in zip(regions, masks, strict=True))
        return RegionMotion(
            previous_stamp_ns=previous_stamp, face_found=True, flow_valid=True, crop_box=crop,
            crop_mean_magnitude=mean, threshold=threshold, magnitude_scale=anchor.magnitude_scale,
            regions=sides, head_offset=self._head_offset(anchor, landmarks), magnitude=kept, **common)

    def _region_args(self) -> dict:
        cfg = self.config
        return {'forehead_height': cfg.forehead_height, 'eye_margin': cfg.eye_margin, 'mirrored': cfg.mirrored}

    def _start_anchor(self, frame: Frame, crop: Box, current: np.ndarray, landmarks: Landmarks,
                      common: dict) -> RegionMotion:
        """This frame defines the regions; no flow leads into it."""
        self._previous = (frame.stamp_ns, current)
        try:
            axes = FaceAxes.from_landmarks(landmarks)
            regions = face_regions(landmarks, **self._region_args())
            masks = region_masks(regions, landmarks, crop)
        except RegionError:
            self._anchor = None
            return self._invalid(crop, (), 1.0, common)
        scale = _f32(self.config.reference_interocular / axes.interocular) \
            if self.config.normalize_face_size else 1.0
        self._anchor = _Anchor(crop=crop, axes=axes, stable_points=landmarks.points[list(STABLE_POINTS)],
                               regions=regions, masks=masks, magnitude_scale=scale)
        return self._invalid(crop, regions, scale, common)

    @staticmethod
    def _invalid(crop: Box, regions: tuple, scale: float, common: dict) -> RegionMotion:
        sides = tuple(RegionSideMotion(side.region, side.side, 0.0, 0, side.polygon) for side in regions)
        return RegionMotion(previous_stamp_ns=0, face_found=True, flow_valid=False, crop_box=crop,
                           crop_mean_magnitude=0.0, threshold=0.0, magnitude_scale=scale, regions=sides,
                           head_offset=(0.0, 0.0), **common)

    @staticmethod
    def _head_offset(anchor: _Anchor, landmarks: Landmarks) -> tuple[float, float]:
        """Median displacement of the stable landmarks since the anchor, in inter-ocular distances."""
        shift = np.median(landmarks.points[list(STABLE_POINTS)] - anchor.stable_points, axis=0)
        offset = shift.astype(np.float64) / anchor.axes.interocular
        return _f32(offset[0]), _f32(offset[1])
