"""68-point facial landmark backends behind one small interface.

A backend turns a frame and a face box into Landmarks. `dlib` (the default)
ships its weights in a registry package, but they may not go into a commercial
product; `mediapipe` maps MediaPipe's Face Mesh (Apache-2.0, installed from its
PyPI wheel) to the 68 points (docs/landmarks.md says why it is not the
default yet); `san` is the paper's Style Aggregated Network and loads a
checkpoint the user gives. MODELS says, for each, which model file
it runs and under what licence: the method of every score names them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from facesym_ros.core.frame import Frame
from facesym_ros.core.geometry import Box, Landmarks
from facesym_ros.core.landmarks import mediapipe_model


class LandmarkBackend(Protocol):
    """Predicts the 68 iBUG 300-W landmarks of the face inside a box."""

    name: str

    def predict(self, frame: Frame, box: Box) -> Landmarks:
        """Landmarks, in frame pixels, of the face in `box`."""
        ...


@dataclass(frozen=True)
class LandmarkModel:
    """What a backend's scores were computed with, as every score's method names it."""

    model: str
    """The model file and where it comes from."""
    licence: str
    """Its licence and whether it may be used commercially, in one line."""
    notice: str = ''
    """A line to show when the backend starts, where its licence restricts use; empty when it does not."""


MODELS = {
    'mediapipe': LandmarkModel(
        model=f'{mediapipe_model.MODEL_FILE} (MediaPipe Face Mesh, 468 points, from the '
              f'{mediapipe_model.SOURCE_PACKAGE} wheel; sha256 {mediapipe_model.MODEL_SHA256[:12]}...)',
        licence=f'{mediapipe_model.LICENCE} (The MediaPipe Authors): commercial use allowed'),
    'dlib': LandmarkModel(
        model='shape_predictor_68_face_landmarks.dat (dlib, from the face-recognition-models 0.3.0 wheel)',
        licence='trained on iBUG 300-W, whose licence excludes commercial use: not for a commercial product '
                'without clearance from Imperial College London',
        notice='landmarks: dlib\'s 68-point model was trained on iBUG 300-W and may not be used in a commercial '
               'product without clearance from Imperial College London (docs/licences.md); backend mediapipe '
               '(Apache-2.0) has no such limit'),
    'san': LandmarkModel(
        model='SAN checkpoint given by model_path (the SAN authors\' 300-W snapshot)',
        licence='code MIT; weights trained on iBUG 300-W, whose licence excludes commercial use',
        notice='landmarks: the SAN weights were trained on iBUG 300-W, whose licence excludes commercial use '
               '(docs/licences.md)'),
}
"""Each backend's model and licence, by backend name (the name Landmarks and the messages carry)."""
