"""A generated session recording: each protocol task's span carries the sample clip's real facial motion.

The layout follows how `facesym session` paces a session from its first
frame: lead_in seconds of the clip's still first frame, then the task's
duration of the clip played in a loop, for every task in order, then a still
tail. In the tasks named in `frozen`, the patient's left half of the face is
held at its look in the task's first frame (paper 4.1), so those tasks are
known to be asymmetric.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import cv2

from facesym_ros.clinic.protocol import Protocol
from facesym_ros.config.files import SAMPLE_VIDEO
from facesym_ros.config.params import load_params_file, pipeline_config
from facesym_ros.core.frame import Frame
from facesym_ros.core.landmarks.factory import make_landmark_backend
from facesym_ros.core.synth import freeze_half
from facesym_ros.core.video import FrameSource

RATE = 30.0


def write_session_video(path: Path, protocol: Protocol, lead_in: float, frozen: Collection[str] = (),
                        tail: float = 2.0) -> int:
    """Write the recording as an MJPG AVI at RATE; the number of frames."""
    clip = [frame.bgr for frame in FrameSource.open(SAMPLE_VIDEO).frames()]
    backend = make_landmark_backend(pipeline_config(load_params_file()).landmarks)
    height, width = clip[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), RATE, (width, height))
    count = 0

    def still(seconds: float) -> None:
        nonlocal count
        for _ in range(round(seconds * RATE)):
            writer.write(clip[0])
            count += 1

    for task in protocol.tasks:
        still(lead_in)
        segment = [Frame.from_bgr(clip[index % len(clip)], index) for index in range(round(task.duration * RATE))]
        frames = freeze_half(segment, 'left', backend) if task.name in frozen else segment
        for frame in frames:
            writer.write(frame.bgr)
            count += 1
    still(tail)
    writer.release()
    return count
