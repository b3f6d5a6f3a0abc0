"""Frames from video files and folders of images, with stamps from the frame rate."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2

from facesym_ros.core.frame import Frame

IMAGE_SUFFIXES = {'.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.pgm', '.ppm'}
DEFAULT_FOLDER_RATE = 30.0


class SourceError(ValueError):
    """A video or image folder that cannot be read."""


@dataclass(frozen=True)
class FrameSource:
    """A video file or a folder of frames (sorted by file name)."""

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
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())

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
