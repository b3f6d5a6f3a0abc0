"""One video frame, or the face patch of one, as every stage of the method sees it."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facesym_ros.core.geometry import Box

PATCH_MARGIN = 0.25
"""A face patch is the face box grown by this fraction of its side on every side (clipped to the image): the
landmark models' pixel lookups stay inside it (dlib's gave the same 68 points as on the whole frame on every
frame of the sample at 1x and 2x from a margin of 0.2 on; SAN crops the box grown by 0.2), and the flow's crop
is the box itself."""


@dataclass(frozen=True)
class Frame:
    """A BGR image, its grayscale version and its capture time; the whole camera image or a patch of it.

    stamp_ns is the capture time in nanoseconds (a ROS header stamp, or the
    frame index times the frame period for files); it orders frames and
    decides which frames belong to a trial. Boxes and points are always in the
    pixels of the whole image: a patch knows where it lies in it (origin) and
    the whole image's size, so landmarks and flow give the same numbers on the
    face patch as on the frame it was cut from.
    """

    bgr: np.ndarray
    gray: np.ndarray
    stamp_ns: int
    origin: tuple[int, int] = (0, 0)
    """Image pixel (x, y) of the patch's top-left pixel; (0, 0) for a whole image."""
    image_size: tuple[int, int] | None = None
    """(width, height) of the whole image; None: bgr is the whole image."""

    @classmethod
    def from_bgr(cls, bgr: np.ndarray, stamp_ns: int, *, origin: tuple[int, int] = (0, 0),
                 image_size: tuple[int, int] | None = None) -> Frame:
        if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
            raise ValueError(f'expected an 8-bit 3-channel BGR image, got {bgr.dtype} {bgr.shape}')
        if bgr.shape[0] == 0 or bgr.shape[1] == 0:
            raise ValueError('empty image')
        if image_size is not None and not Box(*origin, bgr.shape[1], bgr.shape[0]).inside(Box(0, 0, *image_size)):
            raise ValueError(f'a {bgr.shape[1]}x{bgr.shape[0]} patch at {origin} does not fit in a '
                             f'{image_size[0]}x{image_size[1]} image')
        return cls(bgr=bgr, gray=cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), stamp_ns=int(stamp_ns),
                   origin=(int(origin[0]), int(origin[1])),
                   image_size=None if image_size is None else (int(image_size[0]), int(image_size[1])))

    @classmethod
    def without_pixels(cls, stamp_ns: int, image_size: tuple[int, int]) -> Frame:
        """A frame without a face, of which only the capture time and the image's size are known (an empty
        face patch): what the flow needs of it."""
        return cls(bgr=np.zeros((0, 0, 3), np.uint8), gray=np.zeros((0, 0), np.uint8), stamp_ns=int(stamp_ns),
                   image_size=(int(image_size[0]), int(image_size[1])))

    @property
    def width(self) -> int:
        """Width of the whole image."""
        return self.image_size[0] if self.image_size is not None else int(self.bgr.shape[1])

    @property
    def height(self) -> int:
        """Height of the whole image."""
        return self.image_size[1] if self.image_size is not None else int(self.bgr.shape[0])

    @property
    def extent(self) -> Box:
        """The part of the whole image this frame holds, in image pixels."""
        return Box(self.origin[0], self.origin[1], int(self.bgr.shape[1]), int(self.bgr.shape[0]))

    def local(self, box: Box) -> Box:
        """An image box in the pixels of bgr and gray; it must lie inside this frame."""
        extent = self.extent
        if not box.inside(extent):
            raise ValueError(f'{box} is not inside the part {extent} of the image this frame holds')
        return Box(box.x - extent.x, box.y - extent.y, box.width, box.height)

    def face_patch(self, face_box: Box) -> Frame:
        """The patch of a whole frame around a face box: the box grown by PATCH_MARGIN, clipped to the image."""
        patch = face_box.expanded(PATCH_MARGIN).clipped(self.width, self.height)
        if patch is None:
            raise ValueError(f'the face box {face_box} lies outside the {self.width}x{self.height} image')
        local = self.local(patch)
        return Frame(bgr=local.crop(self.bgr), gray=local.crop(self.gray), stamp_ns=self.stamp_ns,
                     origin=(patch.x, patch.y), image_size=(self.width, self.height))
