"""Synthetic asymmetry (paper section 4.1): freeze one half of the face at its first-frame look.

The face and its midline are found in the first frame; in every frame the
pixels of the frozen half (inside the face box grown to cover forehead and
chin) are replaced by the first frame's. The result moves like a face whose
one side is paralysed, with the other side's motion untouched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from facesym_ros.core.detection import DetectorSettings, HaarFaceDetector
from facesym_ros.core.frame import Frame
from facesym_ros.core.landmarks import LandmarkBackend
from facesym_ros.core.regions import SIDE_NAMES, FaceAxes


class NoFaceError(ValueError):
    """The first frame shows no face to split."""


def frozen_half_mask(first: Frame, side: str, landmark_backend: LandmarkBackend, *, mirrored: bool = False,
                     detector_config: DetectorSettings | None = None, margin: float = 0.3) -> np.ndarray:
    """Boolean image mask of the patient's `side` half of the face in the first frame."""
    if side not in SIDE_NAMES:
        raise ValueError(f'side must be left or right, got {side!r}')
    detections = HaarFaceDetector(detector_config or DetectorSettings()).detect(first.gray)
    if not detections:
        raise NoFaceError('no face in the first frame: cannot split the face into halves')
    box = detections[0].box
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


def freeze_half(frames: Iterable[Frame], side: str, landmark_backend: LandmarkBackend, *,
                mirrored: bool = False, detector_config: DetectorSettings | None = None) -> Iterator[Frame]:
    """The frames with the patient's `side` half of the face held at its first-frame appearance."""
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        return
    mask = frozen_half_mask(first, side, landmark_backend, mirrored=mirrored, detector_config=detector_config)
    yield first
    for frame in iterator:
        bgr = frame.bgr.copy()
        bgr[mask] = first.bgr[mask]
        yield Frame.from_bgr(bgr, frame.stamp_ns)
