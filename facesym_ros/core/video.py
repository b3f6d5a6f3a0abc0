"""Frames from video files and folders of images, with stamps from the frame rate.

Frames in time order: a video's frames come in the order its decoder gives them (presentation order); a folder's
in the order of the numbers in their names (frame_2 before frame_10, whatever the zero padding), by
frame_order(). A folder whose names do not give one order (two name patterns, a name without a number, two
names with the same numbers) is refused with a SourceError that names the files, never read in a guessed order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2

from facesym_ros.core.frame import Frame

IMAGE_SUFFIXES = {'.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.pgm', '.ppm'}
DEFAULT_FOLDER_RATE = 30.0


class SourceError(ValueError):
    """A video or image folder that cannot be read."""


_NUMBER = re.compile(r'(\d+)')


def _name_key(name: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(the name's pattern: its text between numbers, the numbers), e.g. frame_010.png: (('frame_', '.png'), (10,))."""
    parts = _NUMBER.split(name)
    return tuple(parts[0::2]), tuple(int(number) for number in parts[1::2])


def frame_order(names: Iterable[str]) -> list[str]:
    """The file names of a folder of frames in time order: by the numbers in them, compared as numbers.

    The names must share one pattern (the same text around the numbers: one recording) and every name must
    carry a number, and no two the same numbers (frame_1 and frame_01): otherwise the order is not known and
    SourceError says why, naming two of the files. A single frame needs no number.
    """
    names = list(names)
    if len(names) < 2:
        return names
    keyed = sorted((_name_key(name), name) for name in names)
    first_key, first = keyed[0]
    for (key, name), (previous_key, previous) in zip(keyed[1:], keyed, strict=False):
        if not key[1] or not previous_key[1]:
            unnumbered = name if not key[1] else previous
            raise SourceError(f'{unnumbered}: no frame number in the name, so its place in time is not known; '
                              'name the frames with their numbers (frame_0.png, frame_1.png, ...)')
        if key[0] != first_key[0]:
            raise SourceError(f'{name} and {first}: frame names of two patterns in one folder (two recordings?); '
                              'a folder must hold the frames of one recording, named alike')
        if key == previous_key:
            raise SourceError(f'{name} and {previous}: two frames with the same number, so their order is not '
                              'known; keep one of them')
    return [name for _key, name in keyed]


@dataclass(frozen=True)
class FrameSource:
    """A video file or a folder of frames (in the order of the numbers in their names: frame_order)."""

    path: Path
    frame_rate: float
    frame_count: int

    @classmethod
    def open(cls, path: str | Path, frame_rate: float | None = None) -> FrameSource:
        path = Path(path)
        if path.is_dir():
            count = len(cls._image_files(path))
            if count == 0:
                raise SourceError(f'{path}: no images ({", ".join(sorted(IMAGE_SUFFIXES))}) in this folder')
            return cls(path, frame_rate or DEFAULT_FOLDER_RATE, count)
        if not path.is_file():
            raise SourceError(f'{path}: no such file or folder')
        capture = cv2.VideoCapture(str(path))
        try:
            if not capture.isOpened():
                raise SourceError(f'{path}: OpenCV cannot open this as a video')
            rate = frame_rate or capture.get(cv2.CAP_PROP_FPS)
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        finally:
            capture.release()
        if not rate or rate <= 0:
            raise SourceError(f'{path}: the video has no frame rate; give one')
        return cls(path, float(rate), count)

    @staticmethod
    def _image_files(folder: Path) -> list[Path]:
        files = {p.name: p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()}
        return [files[name] for name in frame_order(files)]

    def stamp_ns(self, index: int) -> int:
        """Stamp of frame `index`: its time from the start of the source."""
        return round(index * 1e9 / self.frame_rate)

    def images(self) -> Iterator[tuple[int, object]]:
        """(index, BGR image) for every frame; raises SourceError, naming the file, on an unreadable image file
        and on a frame whose size differs from the first frame's."""
        if self.path.is_dir():
            first: tuple[Path, tuple[int, ...]] | None = None
            for index, file in enumerate(self._image_files(self.path)):
                image = cv2.imread(str(file), cv2.IMREAD_COLOR)
                if image is None:
                    raise SourceError(f'{file}: not a readable image')
                if first is None:
                    first = (file, image.shape)
                elif image.shape != first[1]:
                    # The face box, crops and regions are pixel positions: frames of another size cannot be
                    # scored with them (the folder probably mixes two recordings).
                    raise SourceError(f'{file}: {image.shape[1]}x{image.shape[0]} pixels, but the frames from '
                                      f'{first[0].name} on are {first[1][1]}x{first[1][0]}; a folder must hold '
                                      'frames of one size')
                yield index, image
            return
        capture = cv2.VideoCapture(str(self.path))
        try:
            index = 0
            while True:
                ok, image = capture.read()
                if not ok:
                    break
                yield index, image
                index += 1
        finally:
            capture.release()

    def frames(self) -> Iterator[Frame]:
        for index, image in self.images():
            yield Frame.from_bgr(image, self.stamp_ns(index))
