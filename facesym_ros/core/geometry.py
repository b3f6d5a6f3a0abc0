"""Pixel boxes and the iBUG 68-point landmark layout."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IBUG68 = 'ibug68'
IBUG68_POINT_COUNT = 68


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in image pixels: columns x .. x+width-1, rows y .. y+height-1."""

    x: int
    y: int
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f'box must have a positive size, got {self.width}x{self.height}')

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def x2(self) -> int:
        """One past the last column."""
        return self.x + self.width

    @property
    def y2(self) -> int:
        """One past the last row."""
        return self.y + self.height

    @property
    def centre(self) -> tuple[float, float]:
        """The middle of the box, (x + width / 2, y + height / 2)."""
        return self.x + self.width / 2, self.y + self.height / 2

    def contains(self, point: tuple[float, float]) -> bool:
        """Whether a point lies in the box: x <= px < x2 and y <= py < y2."""
        return self.x <= point[0] < self.x2 and self.y <= point[1] < self.y2

    def inside(self, other: Box) -> bool:
        """Whether every pixel of this box is also one of `other`'s."""
        return other.x <= self.x and other.y <= self.y and self.x2 <= other.x2 and self.y2 <= other.y2

    def iou(self, other: Box) -> float:
        """Intersection over union of the two boxes' pixel sets."""
        w = min(self.x2, other.x2) - max(self.x, other.x)
        h = min(self.y2, other.y2) - max(self.y, other.y)
        if w <= 0 or h <= 0:
            return 0.0
        inter = w * h
        return inter / (self.area + other.area - inter)

    def expanded(self, fraction: float) -> Box:
        """The box grown by `fraction` of its width/height on every side (not clipped)."""
        dx = round(self.width * fraction)
        dy = round(self.height * fraction)
        return Box(self.x - dx, self.y - dy, self.width + 2 * dx, self.height + 2 * dy)

    def clipped(self, image_width: int, image_height: int) -> Box | None:
        """The part of the box inside an image of the given size, or None if nothing is."""
        x1, y1 = max(self.x, 0), max(self.y, 0)
        x2, y2 = min(self.x2, image_width), min(self.y2, image_height)
        if x2 <= x1 or y2 <= y1:
            return None
        return Box(x1, y1, x2 - x1, y2 - y1)

    def crop(self, image: np.ndarray) -> np.ndarray:
        """View of the image inside the box; the box must lie inside the image."""
        return image[self.y:self.y2, self.x:self.x2]


@dataclass(frozen=True)
class Landmarks:
    """Facial landmarks of one face in image pixels (OpenCV convention: pixel centres at integers).

    points is (68, 2) float32 in iBUG 300-W order; confidence is (68,) float32
    in [0, 1] or None when the backend gives none. float32 is what the ROS
    messages carry, so live and offline scoring see identical values.
    """

    points: np.ndarray
    confidence: np.ndarray | None
    backend: str
    layout: str = IBUG68

    def __post_init__(self) -> None:
        points = np.asarray(self.points, dtype=np.float32)
        if points.shape != (IBUG68_POINT_COUNT, 2):
            raise ValueError(f'expected ({IBUG68_POINT_COUNT}, 2) landmark points, got {points.shape}')
        if not np.all(np.isfinite(points)):
            raise ValueError('landmark points must be finite')
        object.__setattr__(self, 'points', points)
        if self.confidence is not None:
            confidence = np.asarray(self.confidence, dtype=np.float32)
            if confidence.shape != (IBUG68_POINT_COUNT,):
                raise ValueError(f'expected ({IBUG68_POINT_COUNT},) confidences, got {confidence.shape}')
            object.__setattr__(self, 'confidence', confidence)

    @property
    def mean_confidence(self) -> float | None:
        return None if self.confidence is None else float(self.confidence.mean())
