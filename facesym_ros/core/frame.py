"""One video frame as every stage of the method sees it."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Frame:
    """A BGR frame, its grayscale version and its capture time.

    stamp_ns is the capture time in nanoseconds (a ROS header stamp, or the
    frame index times the frame period for files); it orders frames and
    decides which frames belong to a trial.
    """

    bgr: np.ndarray
    gray: np.ndarray
    stamp_ns: int

    @classmethod
    def from_bgr(cls, bgr: np.ndarray, stamp_ns: int) -> Frame:
        if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
            raise ValueError(f'expected an 8-bit 3-channel BGR image, got {bgr.dtype} {bgr.shape}')
        if bgr.shape[0] == 0 or bgr.shape[1] == 0:
            raise ValueError('empty image')
        return cls(bgr=bgr, gray=cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), stamp_ns=int(stamp_ns))

    @property
    def width(self) -> int:
        return int(self.bgr.shape[1])

    @property
    def height(self) -> int:
        return int(self.bgr.shape[0])
