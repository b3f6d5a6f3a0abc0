"""Comparing two landmark backends on the bundled samples: the faces as the pipeline sees them, point groups,
mirror images, and the mean distance per group in inter-ocular distances (bench/ and the tests use it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facesym_ros.core.detection import DetectorSettings, FaceTracker, HaarFaceDetector
from facesym_ros.core.frame import Frame
from facesym_ros.core.geometry import Box
from facesym_ros.core.video import IMAGE_SUFFIXES, FrameSource

GROUPS = {'jaw': range(0, 17), 'brows': range(17, 27), 'nose': range(27, 36), 'eyes': range(36, 48),
          'mouth': range(48, 68)}
"""The iBUG 68 point groups agreement is reported for."""
MIRROR68 = np.array([*range(16, -1, -1), *range(26, 16, -1), 27, 28, 29, 30, 35, 34, 33, 32, 31,
                     45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,
                     54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65])
"""iBUG 68 index of each point's mirror image (the same point of the face's other side)."""


@dataclass(frozen=True)
class FaceSample:
    """One frame, the tracked face box and the face patch the landmark models see."""

    frame: Frame
    box: Box
    patch: Frame


def sample_faces(path: Path, scale: int = 1) -> list[FaceSample]:
    """The frames of a video (or the one image of an image file), upscaled `scale` times (cubic), tracked as the
    pipeline tracks them (one Haar box while the face stays in it)."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        images = [cv2.imread(str(path))]
    else:
        images = [image for _, image in FrameSource.open(path).images()]
    tracker = FaceTracker(HaarFaceDetector(DetectorSettings()))
    samples = []
    for index, original in enumerate(images):
        image = original if scale == 1 else cv2.resize(original, None, fx=scale, fy=scale,
                                                       interpolation=cv2.INTER_CUBIC)
        frame = Frame.from_bgr(image, index)
        box = tracker.update(frame.gray).box
        samples.append(FaceSample(frame, box, frame.face_patch(box)))
    return samples


def mirrored(sample: FaceSample) -> FaceSample:
    """The same face flipped left-right (its box flipped with it)."""
    frame = Frame.from_bgr(np.ascontiguousarray(sample.frame.bgr[:, ::-1]), sample.frame.stamp_ns)
    box = Box(frame.width - sample.box.x2, sample.box.y, sample.box.width, sample.box.height)
    return FaceSample(frame, box, frame.face_patch(box))


def unflip(points: np.ndarray, width: int) -> np.ndarray:
    """Points of a flipped image in the pixels of the original (x -> width - 1 - x)."""
    points = np.array(points, dtype=np.float64)
    points[..., 0] = width - 1 - points[..., 0]
    return points


def interocular(points: np.ndarray) -> np.ndarray:
    """Distance between the iBUG eye centres (as FaceAxes measures it), of (..., 68, 2) points."""
    return np.linalg.norm(points[..., 36:42, :].mean(axis=-2) - points[..., 42:48, :].mean(axis=-2), axis=-1)


def group_errors(points: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Mean distance per group (and 'all') between (N, 68, 2) points and the reference's, in % of the
    reference's inter-ocular distance."""
    error = np.linalg.norm(points - reference, axis=-1) / interocular(reference)[..., None] * 100
    return {**{name: float(error[..., list(indices)].mean()) for name, indices in GROUPS.items()},
            'all': float(error.mean())}
