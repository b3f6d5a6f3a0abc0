"""Synthetic asymmetry (paper section 4.1): freeze one half of the face at its first-frame look.

The face and its midline are found in the first frame; in every frame the
pixels of the frozen half (inside the face box grown to cover forehead and
chin) are replaced by the first frame's. The result moves like a face whose
one side is paralysed, with the other side's motion untouched.

Graded severity (keep_motion_half) keeps a fraction alpha of that half's
motion instead: the half is the first frame warped by alpha x the dense flow
between the first and the current frame, so its features travel alpha of the
way (a pixel blend of the two frames would only fade, not move, them).
alpha 0 is exactly the frozen half, alpha 1 the untouched frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from facesym_ros.core.detection import DetectorSettings, HaarFaceDetector, choose_patient, patient_area
from facesym_ros.core.frame import Frame
from facesym_ros.core.geometry import Box
from facesym_ros.core.landmarks import LandmarkBackend
from facesym_ros.core.regions import SIDE_NAMES, FaceAxes


class NoFaceError(ValueError):
    """The first frame shows no face to split."""


# Farneback settings for the first-to-current flow: larger motions than between neighbouring frames,
# so more pyramid levels and a larger, smoother window than the scoring flow (core/flow.py).
WARP_FLOW = {'pyr_scale': 0.5, 'levels': 4, 'winsize': 21, 'iterations': 3, 'poly_n': 7, 'poly_sigma': 1.5,
             'flags': cv2.OPTFLOW_FARNEBACK_GAUSSIAN}


def frozen_half_mask(first: Frame, side: str, landmark_backend: LandmarkBackend, *, mirrored: bool = False,
                     detector_config: DetectorSettings | None = None, margin: float = 0.3) -> np.ndarray:
    """Boolean image mask of the patient's `side` half of the face in the first frame."""
    if side not in SIDE_NAMES:
        raise ValueError(f'side must be left or right, got {side!r}')
    config = detector_config or DetectorSettings()
    detections = tuple(HaarFaceDetector(config).detect(first.gray))
    chosen = choose_patient(detections, patient_area(config, first.width, first.height),
                            config.patient_size_tolerance)
    if chosen < 0:
        raise NoFaceError('no face in the first frame: cannot split the face into halves')
    box = detections[chosen].box
    axes = FaceAxes.from_landmarks(landmark_backend.predict(first, box))
    area = box.expanded(margin).clipped(first.width, first.height)
    assert area is not None, 'a detected box always overlaps its image'
    ys, xs = np.mgrid[0:first.height, 0:first.width]
    across = (xs - axes.origin[0]) * axes.across[0] + (ys - axes.origin[1]) * axes.across[1]
    # The patient's left is on the image's right unless the image is mirrored.
    image_right = (side == 'left') != mirrored
    half = across >= 0.0 if image_right else across < 0.0
    inside = np.zeros_like(half)
    inside[area.y:area.y2, area.x:area.x2] = True
    return half & inside


def _mask_box(mask: np.ndarray, pad: int = 16) -> Box:
    """The mask's bounding box grown by `pad` pixels (clipped): the flow is needed only there."""
    rows, cols = np.nonzero(mask)
    height, width = mask.shape
    x1, y1 = max(int(cols.min()) - pad, 0), max(int(rows.min()) - pad, 0)
    x2, y2 = min(int(cols.max()) + 1 + pad, width), min(int(rows.max()) + 1 + pad, height)
    return Box(x1, y1, x2 - x1, y2 - y1)


def scaled_motion(first: Frame, current: Frame, alpha: float, box: Box) -> np.ndarray:
    """The BGR pixels of `box` in the first frame, moved alpha of the way towards the current frame.

    The flow G runs from the current frame back to the first (current(y) ~ first(y + G(y))), so
    sampling the first frame at y + alpha G(y) with cv2.remap moves every feature alpha of its
    displacement; with alpha 1 it reproduces the current frame as far as a warp can.
    """
    previous = box.crop(first.gray)
    now = box.crop(current.gray)
    flow = cv2.calcOpticalFlowFarneback(now, previous, None, **WARP_FLOW)
    ys, xs = np.mgrid[0:box.height, 0:box.width].astype(np.float32)
    map_x = xs + np.float32(alpha) * flow[..., 0]
    map_y = ys + np.float32(alpha) * flow[..., 1]
    return cv2.remap(box.crop(first.bgr), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def keep_motion_half(frames: Iterable[Frame], side: str, alpha: float, landmark_backend: LandmarkBackend, *,
                     mirrored: bool = False, detector_config: DetectorSettings | None = None) -> Iterator[Frame]:
    """The frames with a fraction alpha of the motion of the patient's `side` half kept (graded severity).

    alpha 0 holds the half at its first-frame look (freeze_half), 1 leaves the frames unchanged.
    """
    if not 0.0 <= alpha <= 1.0:  # NaN fails too
        raise ValueError(f'the fraction of motion kept must be in [0, 1], got {alpha}')
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        return
    mask = frozen_half_mask(first, side, landmark_backend, mirrored=mirrored, detector_config=detector_config)
    box = _mask_box(mask)
    box_mask = box.crop(mask)
    yield first
    for frame in iterator:
        if alpha == 1.0:
            yield frame
            continue
        bgr = frame.bgr.copy()
        if alpha == 0.0:
            bgr[mask] = first.bgr[mask]
        else:
            box.crop(bgr)[box_mask] = scaled_motion(first, frame, alpha, box)[box_mask]
        yield Frame.from_bgr(bgr, frame.stamp_ns)


def freeze_half(frames: Iterable[Frame], side: str, landmark_backend: LandmarkBackend, *,
                mirrored: bool = False, detector_config: DetectorSettings | None = None) -> Iterator[Frame]:
    """The frames with the patient's `side` half of the face held at its first-frame appearance."""
    return keep_motion_half(frames, side, 0.0, landmark_backend, mirrored=mirrored, detector_config=detector_config)
