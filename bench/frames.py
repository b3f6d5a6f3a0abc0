"""Benchmark frames from the bundled sample clip: 640x480 (letterboxed, so the face keeps its size), or the
clip upscaled to a rig camera's 1280x720 or 1920x1080."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facesym_ros.config.files import SAMPLE_VIDEO
from facesym_ros.core.video import FrameSource

WIDTH, HEIGHT = 640, 480


def letterboxed_frames(repeats: int = 1) -> list[np.ndarray]:
    """The sample's frames padded to 640x480, the clip played forwards then backwards `repeats` times."""
    clip = [image for _, image in FrameSource.open(SAMPLE_VIDEO).images()]
    pad = (HEIGHT - clip[0].shape[0]) // 2
    boxed = [cv2.copyMakeBorder(image, pad, HEIGHT - image.shape[0] - pad, 0, 0, cv2.BORDER_CONSTANT)
             for image in clip]
    return back_and_forth(boxed, repeats)


def back_and_forth(clip: list[np.ndarray], repeats: int) -> list[np.ndarray]:
    """The clip played forwards then backwards `repeats` times (the same arrays, not copies)."""
    sequence: list[np.ndarray] = []
    for index in range(repeats):
        sequence += clip if index % 2 == 0 else clip[::-1]  # no jump where the clip starts again
    return sequence


def upscaled_frames(scale: int, repeats: int = 1) -> list[np.ndarray]:
    """The 640x360 sample upscaled `scale` times (cubic): 2 gives 1280x720, 3 gives 1920x1080."""
    clip = [cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
            for _, image in FrameSource.open(SAMPLE_VIDEO).images()]
    return back_and_forth(clip, repeats)


def write_folder(folder: Path, frames: list[np.ndarray]) -> Path:
    """The frames as numbered lossless files; a frame that recurs (the same array) is written once and linked.
    Frames wider than 640 px are BMP (uncompressed), so that reading a camera-sized frame costs the source
    little more than a copy, as a camera's would; smaller ones PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[int, Path] = {}
    for index, image in enumerate(frames):
        path = folder / f'{index:05d}.{"bmp" if image.shape[1] > WIDTH else "png"}'
        if id(image) in written:
            path.symlink_to(written[id(image)].name)
            continue
        cv2.imwrite(str(path), image)
        written[id(image)] = path
    return folder


def large_face_frames(repeats: int = 1, scale: int = 2) -> list[np.ndarray]:
    """letterboxed_frames upscaled `scale` times (cubic) and cropped back to 640x480 around the face.

    At scale 2 the face box is about 380 px instead of 193 px: a patient close to the camera.
    """
    from facesym_ros.core.detection import DetectorSettings, HaarFaceDetector

    frames = letterboxed_frames(repeats)
    gray = cv2.cvtColor(frames[0], cv2.COLOR_BGR2GRAY)
    faces = HaarFaceDetector(DetectorSettings()).detect(gray)
    centre_x, centre_y = ((faces[0].box.x + faces[0].box.width / 2, faces[0].box.y + faces[0].box.height / 2)
                          if faces else (WIDTH / 2, HEIGHT / 2))
    x0 = int(np.clip(round(centre_x * scale - WIDTH / 2), 0, WIDTH * scale - WIDTH))
    y0 = int(np.clip(round(centre_y * scale - HEIGHT / 2), 0, HEIGHT * scale - HEIGHT))
    return [np.ascontiguousarray(
        cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)[y0:y0 + HEIGHT, x0:x0 + WIDTH])
        for image in frames]
