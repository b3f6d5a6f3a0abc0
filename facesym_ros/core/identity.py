"""One face per trial: whether the face in a frame still looks like the trial's first face.

dlib's 68 points follow any face with much the same shape (the scale-free ratios of the stable points' distances
vary as much within the sample's smile as between the sample and another person), so the rule compares
appearance: a small thumbnail of the face crop against the one of the trial's first face,

- by pattern: zero-mean normalised correlation of the grey thumbnails (blind to brightness and contrast), and
- by colour: the Bhattacharyya distance of their hue-saturation histograms.

The sample's whole smile, its frozen-half versions and its upscaled versions keep a correlation above 0.65 and a
colour distance below 0.16; another person in the same box falls far outside both (test_identity). A frame that
fails either limit is counted by the trial's score, which is then flagged face_changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

THUMBNAIL = 32
"""Side of the thumbnail [px]: enough for the face's layout and colour, tens of microseconds to make."""
_HIST_BINS = [16, 8]
_HIST_RANGES = [0, 180, 0, 256]


@dataclass(frozen=True)
class Appearance:
    """What a face crop looks like, reduced to what tells two people apart."""

    pattern: np.ndarray
    """Grey thumbnail, zero mean, unit norm (float32)."""
    colour: np.ndarray
    """Hue-saturation histogram (float32, normalised)."""

    @classmethod
    def of(cls, crop_bgr: np.ndarray) -> Appearance:
        # Sampled to twice the side first (nearest: a few microseconds, where area averaging a 400 px crop at an
        # odd ratio takes a millisecond), then averaged 2x2 to the thumbnail.
        sampled = cv2.resize(crop_bgr, (2 * THUMBNAIL, 2 * THUMBNAIL), interpolation=cv2.INTER_NEAREST)
        thumb = cv2.resize(sampled, (THUMBNAIL, THUMBNAIL), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(thumb, cv2.COLOR_BGR2GRAY).astype(np.float32)
        grey -= grey.mean()
        norm = float(np.linalg.norm(grey))
        pattern = grey / norm if norm > 0 else grey
        hist = cv2.calcHist([cv2.cvtColor(thumb, cv2.COLOR_BGR2HSV)], [0, 1], None, _HIST_BINS, _HIST_RANGES)
        return cls(pattern, cv2.normalize(hist, None).flatten())

    def similarity(self, other: Appearance) -> float:
        """Correlation of the grey patterns, in [-1, 1] (0 when either is flat)."""
        return float(np.dot(self.pattern.ravel(), other.pattern.ravel()))

    def colour_distance(self, other: Appearance) -> float:
        """Bhattacharyya distance of the colour histograms, in [0, 1]."""
        return float(cv2.compareHist(self.colour, other.colour, cv2.HISTCMP_BHATTACHARYYA))

    def same_face(self, other: Appearance, min_similarity: float, max_colour_distance: float) -> bool:
        return (self.similarity(other) >= min_similarity
                and self.colour_distance(other) <= max_colour_distance)
