"""68-point facial landmark backends behind one small interface.

A backend turns a frame and a face box into Landmarks. `dlib` (the default)
ships its weights in a registry package and works offline; `san` is the
paper's Style Aggregated Network and loads a checkpoint the user gives.
"""

from __future__ import annotations

from typing import Protocol

from facesym_ros.core.frame import Frame
from facesym_ros.core.geometry import Box, Landmarks


class LandmarkBackend(Protocol):
    """Predicts the 68 iBUG 300-W landmarks of the face inside a box."""

    name: str

    def predict(self, frame: Frame, box: Box) -> Landmarks:
        """Landmarks, in frame pixels, of the face in `box`."""
        ...
