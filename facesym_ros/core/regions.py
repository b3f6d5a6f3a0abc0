"""The six facial regions of the method, built from the 68 landmarks.

Regions are laid out in the face's own coordinate frame, so a rolled head
gives rolled regions: the vertical axis runs along the facial midline from the
top of the nose bridge (point 27) to the chin (point 8), the horizontal axis
is perpendicular to it. In that frame, per side of the midline:

- forehead: from the midline to the outer end of the brow, from the top of the
  brows upwards by `forehead_height` x the brow-to-chin distance;
- eye: the eye and brow area, from the midline to the outer end of the brow or
  eye, from the top of the brows down to `eye_margin` inter-ocular distances
  below the lowest eye point;
- cheek (includes the mouth): from the bottom of the eye region down to the
  chin, between the midline and the jaw line.

Sides are the patient's anatomical sides. A camera facing the patient shows
the patient's left on the image's right; `mirrored` is for images that are
flipped left-right (a "selfie" view), where the patient's left is on the
image's left.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import cv2
import numpy as np

from facesym_ros.core.geometry import Box, Landmarks

REGION_NAMES = ('forehead', 'eye', 'cheek')
SIDE_NAMES = ('left', 'right')

NOSE_BRIDGE_TOP = 27
CHIN = 8
# iBUG 68 indices by IMAGE side: "image_left" is the side with the smaller x
# when the face is upright and unmirrored.
IMAGE_LEFT = {'brow': range(17, 22), 'eye': range(36, 42), 'jaw': range(0, 9)}
IMAGE_RIGHT = {'brow': range(22, 27), 'eye': range(42, 48), 'jaw': range(16, 7, -1)}
# Points that move little with expressions: eye corners and the nose.
STABLE_POINTS = (27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45)

_SUBPIXEL_BITS = 4


class RegionError(ValueError):
    """The landmarks do not describe a usable face (degenerate geometry)."""


@dataclass(frozen=True)
class FaceAxes:
    """The face's coordinate frame: origin at point 27, `down` towards the chin, `across` to image right."""

    origin: np.ndarray
    down: np.ndarray
    across: np.ndarray
    interocular: float

    @classmethod
    def from_landmarks(cls, landmarks: Landmarks) -> FaceAxes:
        points = landmarks.points.astype(np.float64)
        origin = points[NOSE_BRIDGE_TOP]
        midline = points[CHIN] - origin
        length = float(np.hypot(*midline))
        left_eye = points[IMAGE_LEFT['eye']].mean(axis=0)
        right_eye = points[IMAGE_RIGHT['eye']].mean(axis=0)
        interocular = float(np.hypot(*(right_eye - left_eye)))
        if length < 1.0 or interocular < 1.0:
            raise RegionError('landmarks are degenerate (no nose-to-chin or eye-to-eye distance)')
        down = midline / length
        return cls(origin=origin, down=down, across=np.array([down[1], -down[0]]), interocular=interocular)

    def to_face(self, points: np.ndarray) -> np.ndarray:
        """Image pixels -> (across, down) face coordinates."""
        rel = np.asarray(points, dtype=np.float64) - self.origin
        return np.stack([rel @ self.across, rel @ self.down], axis=-1)

    def to_image(self, face_points: np.ndarray) -> np.ndarray:
        """(across, down) face coordinates -> image pixels."""
        face_points = np.asarray(face_points, dtype=np.float64)
        return self.origin + np.outer(face_points[:, 0], self.across) + np.outer(face_points[:, 1], self.down)


@dataclass(frozen=True)
class RegionSide:
    """One side of one region: its outline in image pixels."""

    region: str
    side: str
    polygon: np.ndarray


def _jaw_crossing(jaw: np.ndarray, t_top: float) -> list[tuple[float, float]]:
    """Jaw line points below t_top, starting where the jaw crosses t_top (face coords, |s|)."""
    outline: list[tuple[float, float]] = []
    if t_top <= jaw[0, 1]:
        outline.append((jaw[0, 0], t_top))
    for (s0, t0), (s1, t1) in pairwise(jaw):
        if t0 < t_top < t1:
            fraction = (t_top - t0) / (t1 - t0)
            outline.append((s0 + fraction * (s1 - s0), t_top))
        if t1 > t_top:
            outline.append((s1, t1))
    return outline


def face_regions(landmarks: Landmarks, *, forehead_height: float, eye_margin: float,
                 mirrored: bool) -> tuple[RegionSide, ...]:
    """The six region sides: forehead, eye, cheek, each patient-left then patient-right."""
    axes = FaceAxes.from_landmarks(landmarks)
    face = axes.to_face(landmarks.points)
    brow_top = float(min(face[list(IMAGE_LEFT['brow']) + list(IMAGE_RIGHT['brow']), 1]))
    chin = float(face[CHIN, 1])
    if chin - brow_top < 1.0:
        raise RegionError('landmarks are degenerate (brows not above the chin)')
    forehead_top = brow_top - forehead_height * (chin - brow_top)

    by_image_side: dict[str, list[RegionSide]] = {}
    for image_side, sign, indices in (('image_left', -1.0, IMAGE_LEFT), ('image_right', 1.0, IMAGE_RIGHT)):
        # Work with |s| on this side, outward from the midline.
        brow = face[list(indices['brow'])] * [sign, 1.0]
        eye = face[list(indices['eye'])] * [sign, 1.0]
        jaw = face[list(indices['jaw'])] * [sign, 1.0]
        brow_outer = float(max(brow[:, 0].max(), 1.0))
        eye_outer = float(max(brow_outer, eye[:, 0].max()))
        eye_bottom = float(eye[:, 1].max()) + eye_margin * axes.interocular
        if eye_bottom >= chin:
            raise RegionError('landmarks are degenerate (eyes below the chin)')

        shapes = {
            'forehead': [(0.0, forehead_top), (brow_outer, forehead_top), (brow_outer, brow_top), (0.0, brow_top)],
            'eye': [(0.0, brow_top), (eye_outer, brow_top), (eye_outer, eye_bottom), (0.0, eye_bottom)],
            'cheek': [(0.0, eye_bottom), *_jaw_crossing(jaw, eye_bottom), (0.0, chin)],
        }
        sides = []
        for region in REGION_NAMES:
            outline = np.array(shapes[region], dtype=np.float64) * [sign, 1.0]
            sides.append(RegionSide(region, image_side, axes.to_image(outline)))
        by_image_side[image_side] = sides

    # Patient's left is the image's right unless the image is mirrored.
    patient_left = 'image_left' if mirrored else 'image_right'
    patient_right = 'image_right' if mirrored else 'image_left'
    ordered = []
    for index, region in enumerate(REGION_NAMES):
        for side, image_side in (('left', patient_left), ('right', patient_right)):
            polygon = by_image_side[image_side][index].polygon
            ordered.append(RegionSide(region, side, polygon))
    return tuple(ordered)


def region_masks(regions: tuple[RegionSide, ...], landmarks: Landmarks, crop: Box) -> list[np.ndarray]:
    """Boolean pixel masks of the region sides inside `crop`, pairwise disjoint.

    Polygons are rasterised with sub-pixel precision; a pixel on a shared
    border goes to one region only (forehead before eye before cheek), and to
    the side of the midline its centre lies on.
    """
    axes = FaceAxes.from_landmarks(landmarks)
    ys, xs = np.mgrid[crop.y:crop.y2, crop.x:crop.x2]
    across = (xs - axes.origin[0]) * axes.across[0] + (ys - axes.origin[1]) * axes.across[1]
    image_right = across >= 0.0
    taken = np.zeros((crop.height, crop.width), dtype=bool)
    masks: list[np.ndarray | None] = [None] * len(regions)
    for region in REGION_NAMES:
        for index, side in enumerate(regions):
            if side.region != region:
                continue
            canvas = np.zeros((crop.height, crop.width), dtype=np.uint8)
            fixed = np.round((side.polygon - [crop.x, crop.y]) * (1 << _SUBPIXEL_BITS)).astype(np.int32)
            cv2.fillPoly(canvas, [fixed], 1, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
            centre_right = (side.polygon[:, 0].mean() - axes.origin[0]) * axes.across[0] + \
                (side.polygon[:, 1].mean() - axes.origin[1]) * axes.across[1] >= 0.0
            mask = canvas.astype(bool) & (image_right if centre_right else ~image_right) & ~taken
            taken |= mask
            masks[index] = mask
    assert all(mask is not None for mask in masks), 'every region side gets a mask'
    return masks  # type: ignore[return-value]
