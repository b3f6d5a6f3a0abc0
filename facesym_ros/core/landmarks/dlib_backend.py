"""dlib's 68-point shape predictor (Kazemi & Sullivan regression trees).

The default backend: its weights, shape_predictor_68_face_landmarks.dat, ship
in the `face-recognition-models` package, so it works offline on a fresh
machine. The model was trained on the iBUG 300-W data set, whose licence
excludes commercial use; see README.md.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import dlib
import numpy as np

from facesym_ros.core.frame import Frame
from facesym_ros.core.geometry import Box, Landmarks

MODEL_FILE = 'shape_predictor_68_face_landmarks.dat'


def bundled_model_path() -> Path:
    """Path of the 68-point model inside the face-recognition-models package.

    Found without importing the package, whose import needs the deprecated pkg_resources.
    """
    spec = importlib.util.find_spec('face_recognition_models')
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError('the face-recognition-models package (dlib\'s 68-point model) is not installed')
    return Path(next(iter(spec.submodule_search_locations))) / 'models' / MODEL_FILE


class DlibLandmarkBackend:
    """68 iBUG landmarks from dlib; gives no per-point confidence."""

    name = 'dlib'

    def __init__(self, model_path: str | Path | None = None) -> None:
        path = Path(model_path) if model_path else bundled_model_path()
        if not path.is_file():
            raise FileNotFoundError(f'dlib shape predictor model not found: {path}')
        self.model_path = path
        try:
            self._predictor = dlib.shape_predictor(str(path))
        except RuntimeError as error:  # dlib's deserialisation errors say what failed, not which file
            raise ValueError(f'{path} is not a dlib shape predictor model ({error})') from None

    def predict(self, frame: Frame, box: Box) -> Landmarks:
        ox, oy = frame.origin  # the box and the points are in image pixels; a face patch starts at its origin
        shape = self._predictor(
            frame.gray, dlib.rectangle(box.x - ox, box.y - oy, box.x2 - 1 - ox, box.y2 - 1 - oy))
        if shape.num_parts != 68:
            raise ValueError(f'the dlib model predicts {shape.num_parts} points, not 68')
        points = np.array([(p.x + ox, p.y + oy) for p in shape.parts()], dtype=np.float32)
        return Landmarks(points=points, confidence=None, backend=self.name)
