"""Dense optical flow in the face crop and the per-frame motion of the six regions.

Per frame pair the method (paper section 4.3) computes Farneback flow between
the previous and the current face crop, sets every magnitude below
threshold_factor x the mean magnitude of the crop to zero, and sums the
remaining magnitudes inside each region side. RegionMotionEstimator keeps the
state this needs over a stream of frames: the previous crop, and the anchor,
the frame whose landmarks define the regions (the first frame, as in the
paper; again after the face box changed or a trial started).

Two rules make the numbers mean the same on every rig:

- Face scale. With face_scale = reference (the default) the crop is
  resampled, at the anchor, so that the inter-ocular distance is
  analysis_interocular pixels; the flow, the threshold and the region masks
  all work on that crop, and every magnitude is multiplied by
  reference_interocular / analysis_interocular, so magnitudes are in
  reference pixels per frame and a face costs about the same at any camera
  resolution or distance. (The 6x-mean threshold is a ratio, so the
  conversion keeps the same pixels; Farneback's windows do see a smaller
  face, which is why the analysis scale has its own bound, see FlowSettings.)
  face_scale = native is the paper's unscaled crop.
- No flow across a gap. Flow is computed only between consecutive camera
  frames: a pair further apart than GAP_FACTOR periods (nominal_frame_rate,
  or the median interval seen so far) gets no flow and is marked with its
  previous stamp, so scores average the real pairs only.

remove_rigid_motion (off by default, not the paper) subtracts the crop's
median flow vector, so a head that shifts as a whole adds no motion.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import asdict, dataclass, replace

import cv2
import numpy as np

from facesym_ros.core.detection import TrackState
from facesym_ros.core.frame import Frame
from facesym_ros.core.geometry import Box, Landmarks
from facesym_ros.core.identity import Appearance
from facesym_ros.core.landmarks import MODELS
from facesym_ros.core.regions import STABLE_POINTS, FaceAxes, RegionError, face_regions, region_masks
from facesym_ros.core.settings import Settings, setting
from facesym_ros.core.timebase import NS_PER_SECOND

GAP_FACTOR = 1.5
"""A frame pair further apart than this many frame periods spans at least one missing frame."""


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
    face_scale: str = setting('reference', 'Scale of the face crop the flow sees: reference (resampled so the '
                                           'inter-ocular distance is analysis_interocular, magnitudes in '
                                           'reference pixels; scores compare across cameras and distances) or '
                                           'native (as the camera saw it; the paper)',
                              choices=('reference', 'native'))
    reference_interocular: float = setting(80.0, 'Inter-ocular distance that defines the unit of every magnitude '
                                                 '(reference pixels); 80 is about that of the faces of CK+, the '
                                                 'paper\'s data [px]', min=8.0, max=1024.0)
    analysis_interocular: float = setting(72.0, 'Inter-ocular distance of the resampled crop the flow runs on; '
                                                'its magnitudes are multiplied by reference_interocular / this, '
                                                'so they are in reference pixels. At 72 the flow costs about a '
                                                'fifth less than at the reference and no SS of the sample, its '
                                                'frozen half or its graded versions moves by more than 0.016 '
                                                '(bench_analysis_scale); set it to reference_interocular to '
                                                'compute at the reference itself [px]', min=8.0, max=1024.0)
    nominal_frame_rate: float = setting(0.0, 'Camera frame rate: a frame pair more than 1.5 periods apart spans '
                                             'missing frames and gets no flow; 0 takes the period from the median '
                                             'frame interval [Hz]', min=0.0, max=1000.0)
    remove_rigid_motion: bool = setting(False, 'Subtract the median flow vector of the crop before taking '
                                               'magnitudes (off: the paper)')
    min_face_similarity: float = setting(0.4, 'A face whose grey thumbnail correlates less than this with the '
                                              'trial\'s first face is another face: flagged face_changed (the '
                                              'sample\'s smile keeps above 0.65)', min=-1.0, max=1.0)
    max_face_colour_distance: float = setting(0.3, 'A face whose hue-saturation histogram is further than this '
                                                   '(Bhattacharyya) from the trial\'s first face\'s is another '
                                                   'face: flagged face_changed (the sample keeps below 0.16)',
                                              min=0.0, max=1.0)

    def method(self, landmark_backend: str) -> str:
        """JSON of everything that shapes the per-frame motion; travels with every RegionMotion."""
        model = MODELS.get(landmark_backend)
        named = {} if model is None else {'landmark_model': model.model, 'landmark_licence': model.licence}
        return json.dumps({'landmark_backend': landmark_backend, **named, **asdict(self)}, sort_keys=True)


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
    the resampled crop, for heat maps) is not part of the message.
    A frame with a face but no flow is an anchor (previous_stamp_ns 0) or the
    end of a pair that spans missing frames (previous_stamp_ns set: `gap`).
    image_size is the whole source image's (0, 0: not known); face_changed says the face no longer looks like
    the trial's first face (core.identity).
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
    image_size: tuple[int, int] = (0, 0)
    face_changed: bool = False

    @property
    def gap(self) -> bool:
        """The pair into this frame spans missing frames, so it got no flow."""
        return self.face_found and not self.flow_valid and self.previous_stamp_ns != 0


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
    """Reference pixels per source-image pixel (RegionMotion.magnitude_scale)."""
    size: tuple[int, int]
    """(width, height) of the resampled crop the flow sees."""
    to_reference: float
    """Factor (float32) from the flow's pixels to reference pixels: reference / analysis inter-ocular (1: native)."""
    image_size: tuple[int, int] = (0, 0)
    """(width, height) of the whole image the anchor was cut from: no flow leads from an image of another size."""

    def resample(self, frame: Frame) -> np.ndarray:
        """The crop of a frame (or of its face patch) at the analysis scale."""
        crop = frame.local(self.crop).crop(frame.gray)
        if self.size == (self.crop.width, self.crop.height):
            return crop
        shrink = self.size[0] < self.crop.width
        return cv2.resize(crop, self.size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Image pixel coordinates in the pixels of the resampled crop (OpenCV's pixel-centre convention)."""
        scale = [self.size[0] / self.crop.width, self.size[1] / self.crop.height]
        return (np.asarray(points, dtype=np.float64) - [self.crop.x, self.crop.y] + 0.5) * scale - 0.5

    def masks_for(self, landmarks: Landmarks, regions: tuple) -> list[np.ndarray]:
        """Region masks in the resampled crop, of regions laid out in image pixels."""
        local = tuple(replace(side, polygon=self.to_crop(side.polygon)) for side in regions)
        local_landmarks = replace(landmarks, points=self.to_crop(landmarks.points).astype(np.float32))
        return region_masks(local, local_landmarks, Box(0, 0, *self.size))


class RegionMotionEstimator:
    """Turns a stream of (frame, face box, landmarks) into per-frame region motion."""

    def __init__(self, config: FlowSettings, landmark_backend: str) -> None:
        self.config = config
        self.landmark_backend = landmark_backend
        self.method = config.method(landmark_backend)
        self._anchor: _Anchor | None = None
        self._previous: tuple[int, np.ndarray] | None = None
        self._intervals: deque[int] = deque(maxlen=64)
        self._first_face: Appearance | None = None
        """The trial's first face (since reset or reanchor): every later face is compared with it."""

    def set_landmark_backend(self, name: str) -> None:
        """Name the landmark model in the method string (the live graph learns it from the messages)."""
        if name != self.landmark_backend:
            self.landmark_backend = name
            self.method = self.config.method(name)

    def reset(self) -> None:
        """Forget the anchor, the previous frame and the frame intervals seen."""
        self._anchor = None
        self._previous = None
        self._intervals.clear()
        self._first_face = None

    def _spans_gap(self, interval_ns: int) -> bool:
        """Whether a pair this far apart misses frames between (the first pair is taken as consecutive
        when the frame rate is not given)."""
        if self.config.nominal_frame_rate > 0:
            period = NS_PER_SECOND / self.config.nominal_frame_rate
        elif self._intervals:
            period = float(np.median(self._intervals))
        else:
            period = None
        if interval_ns > 0:
            self._intervals.append(interval_ns)
        return period is not None and interval_ns > GAP_FACTOR * period

    def reanchor(self) -> None:
        """The next frame defines the regions anew (a trial starts with it); no flow leads into it."""
        self._anchor = None
        self._first_face = None

    def update(self, frame: Frame, track_state: TrackState, box: Box | None, faces_in_image: int,
               landmarks: Landmarks | None) -> RegionMotion:
        confidence = landmarks.mean_confidence if landmarks is not None else None
        common = dict(
            stamp_ns=frame.stamp_ns, threshold_factor=_f32(self.config.threshold_factor),
            landmark_confidence=-1.0 if confidence is None else _f32(confidence),
            track_state=track_state, faces_in_image=faces_in_image, method=self.method,
            image_size=(frame.width, frame.height))
        crop = box.clipped(frame.width, frame.height) if box is not None else None
        if crop is not None and landmarks is not None:
            common['face_changed'] = self._face_changed(frame, crop)
        if crop is None or landmarks is None:
            self._anchor = None
            self._previous = None
            return RegionMotion(previous_stamp_ns=0, face_found=False, flow_valid=False, crop_box=None,
                               crop_mean_magnitude=0.0, threshold=0.0, magnitude_scale=1.0, regions=(),
                               head_offset=(0.0, 0.0), **common)

        if (self._anchor is None or self._anchor.crop != crop or self._previous is None
                or self._anchor.image_size != (frame.width, frame.height)):
            return self._start_anchor(frame, crop, landmarks, common)

        anchor = self._anchor
        current = anchor.resample(frame)
        previous_stamp, previous = self._previous
        self._previous = (frame.stamp_ns, current)
        if self._spans_gap(frame.stamp_ns - previous_stamp):
            return self._invalid(crop, anchor.regions, anchor.magnitude_scale, common,
                                 previous_stamp_ns=previous_stamp, head_offset=self._head_offset(anchor, landmarks))
        regions, masks = anchor.regions, anchor.masks
        if self.config.regions_from == 'every_frame':
            try:
                regions = face_regions(landmarks, **self._region_args())
                masks = anchor.masks_for(landmarks, regions)
            except RegionError:
                return self._invalid(crop, regions, anchor.magnitude_scale, common)

        magnitude = farneback_magnitude(previous, current, self.config)
        if anchor.to_reference != 1.0:
            magnitude *= np.float32(anchor.to_reference)
        kept, mean, threshold = threshold_magnitude(magnitude, self.config.threshold_factor)
        sides = tuple(
            RegionSideMotion(side.region, side.side, float(kept[mask].sum(dtype=np.float64)), int(mask.sum()),
                             side.polygon)
            for side, mask in zip(regions, masks, strict=True))
        return RegionMotion(
            previous_stamp_ns=previous_stamp, face_found=True, flow_valid=True, crop_box=crop,
            crop_mean_magnitude=mean, threshold=threshold, magnitude_scale=anchor.magnitude_scale,
            regions=sides, head_offset=self._head_offset(anchor, landmarks), magnitude=kept, **common)

    def _face_changed(self, frame: Frame, crop: Box) -> bool:
        """Whether the face in `crop` no longer looks like the trial's first face (which the first one sets)."""
        seen = Appearance.of(frame.local(crop).crop(frame.bgr))
        if self._first_face is None:
            self._first_face = seen
            return False
        return not seen.same_face(self._first_face, self.config.min_face_similarity,
                                  self.config.max_face_colour_distance)

    def _region_args(self) -> dict:
        cfg = self.config
        return {'forehead_height': cfg.forehead_height, 'eye_margin': cfg.eye_margin, 'mirrored': cfg.mirrored}

    def _start_anchor(self, frame: Frame, crop: Box, landmarks: Landmarks, common: dict) -> RegionMotion:
        """This frame defines the regions and the analysis scale; no flow leads into it."""
        try:
            axes = FaceAxes.from_landmarks(landmarks)
            regions = face_regions(landmarks, **self._region_args())
            scale = to_reference = 1.0
            size = (crop.width, crop.height)
            if self.config.face_scale == 'reference':
                scale = _f32(self.config.reference_interocular / axes.interocular)
                resample = self.config.analysis_interocular / axes.interocular
                size = (max(8, round(crop.width * resample)), max(8, round(crop.height * resample)))
                to_reference = _f32(self.config.reference_interocular / self.config.analysis_interocular)
            anchor = _Anchor(crop=crop, axes=axes, stable_points=landmarks.points[list(STABLE_POINTS)],
                             regions=regions, masks=[], magnitude_scale=scale, size=size,
                             to_reference=to_reference, image_size=(frame.width, frame.height))
            anchor.masks = anchor.masks_for(landmarks, regions)
        except RegionError:
            self._anchor = None
            self._previous = None
            return self._invalid(crop, (), 1.0, common)
        self._anchor = anchor
        self._previous = (frame.stamp_ns, anchor.resample(frame))
        return self._invalid(crop, regions, scale, common)

    @staticmethod
    def _invalid(crop: Box, regions: tuple, scale: float, common: dict, *, previous_stamp_ns: int = 0,
                 head_offset: tuple[float, float] = (0.0, 0.0)) -> RegionMotion:
        sides = tuple(RegionSideMotion(side.region, side.side, 0.0, 0, side.polygon) for side in regions)
        return RegionMotion(previous_stamp_ns=previous_stamp_ns, face_found=True, flow_valid=False, crop_box=crop,
                            crop_mean_magnitude=0.0, threshold=0.0, magnitude_scale=scale, regions=sides,
                            head_offset=head_offset, **common)

    @staticmethod
    def _head_offset(anchor: _Anchor, landmarks: Landmarks) -> tuple[float, float]:
        """Median displacement of the stable landmarks since the anchor, in inter-ocular distances."""
        shift = np.median(landmarks.points[list(STABLE_POINTS)] - anchor.stable_points, axis=0)
        offset = shift.astype(np.float64) / anchor.axes.interocular
        return _f32(offset[0]), _f32(offset[1])
