"""MediaPipe Face Mesh as a 68-point landmark backend: 468 mesh vertices, mapped to the iBUG 300-W points.

Model: face_landmark.tflite, MediaPipe's 468-point Face Mesh (Apache-2.0,
The MediaPipe Authors), installed from Google's `mediapipe` 0.10.21 wheel by
scripts/fetch_models.py (mediapipe_model.py says how). It runs under
ai-edge-litert (LiteRT, the TensorFlow Lite runtime) on one thread; nothing of
mediapipe itself is imported. The 478-point attention model is not used: it
needs an op only MediaPipe's own runtime has.

Input: a 192 x 192 RGB crop in [0, 1], a square of CROP_SCALE times the face
box's side around its centre (the face patch's extent: MediaPipe's own
face-to-ROI rule also takes 1.5 times the detector's box). Output: 468 (x, y,
z) in crop pixels and a face-presence logit; its sigmoid is the confidence of
every point (the model gives no per-point one).

Roll: MediaPipe's model card (not in the wheel) limits the model to faces rolled less than about 8
degrees. A first pass on the upright crop gives the eyes; when the line
between the iBUG eye centres is rolled by more than ROLL_TOLERANCE_DEG, a
second pass runs on the crop rotated to level them, and its points, rotated
back, are the result. An upright face costs one pass, a rolled one two.

The 468 -> 68 mapping (MESH_TO_IBUG68) was fitted to dlib's points on the
bundled clip; docs/landmarks.md gives its derivation and the agreement with
dlib, bench/derive_mesh_mapping.py recomputes it and bench/bench_landmarks.py
measures it.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from facesym_ros.core.frame import Frame
from facesym_ros.core.geometry import IBUG68_POINT_COUNT, Box, Landmarks
from facesym_ros.core.landmarks import mediapipe_model

INPUT_SIZE = 192
MESH_POINTS = 468
CROP_SCALE = 1.5
"""Side of the model's square crop in face-box sides (1 + 2 * PATCH_MARGIN: the face patch)."""
ROLL_TOLERANCE_DEG = 4.0
"""Eye-line roll up to which the first, upright pass is kept (half the model card's 8 degrees)."""
EYES = (range(36, 42), range(42, 48))
"""iBUG 68 eye contours, image left then image right."""

# Each iBUG 68 point is (1 - t) * vertex a + t * vertex b of the Face Mesh (a == b, t == 0: one vertex).
# Fitted by bench/derive_mesh_mapping.py (docs/landmarks.md) to dlib's points on the even frames of the bundled
# clip and their mirror images (so the mapping treats both sides alike), t in steps of 0.1, each the closest on
# average: the jaw on the mesh's face-oval contour (a blend of two neighbours on it; fitted to dlib's image-right
# jaw, which follows the face, where its image-left one lies on the wall beside it); the chin, the nose's and
# the lips' middles on the mesh's midline (the face's axis, 27 to 8, has no side); every other point a blend of
# two vertices at most a quarter of the inter-ocular distance apart.
MESH_TO_IBUG68: tuple[tuple[int, int, float], ...] = (
    # jaw, image left to right (0-16)
    (127, 162, 0.3), (127, 234, 0.9), (93, 132, 0.3), (58, 132, 0.5), (58, 172, 0.7), (136, 150, 0.2),
    (149, 150, 0.2), (148, 176, 0.5), (152, 152, 0.0), (377, 400, 0.6), (378, 379, 0.3), (365, 365, 0.0),
    (288, 397, 0.6), (288, 361, 0.6), (323, 361, 0.2), (356, 454, 0.9), (356, 389, 0.4),
    # brows (17-26)
    (70, 156, 0.2), (63, 105, 0.2), (66, 105, 0.7), (66, 107, 0.3), (55, 107, 0.5), (285, 336, 0.5), (296, 336, 0.4),
    (296, 334, 0.6), (293, 334, 0.2), (300, 353, 0.2),
    # nose: bridge 27-30, base 31-35
    (6, 168, 0.4), (195, 197, 0.7), (4, 5, 0.9), (4, 94, 0.4), (97, 98, 0.7), (97, 167, 0.1), (94, 164, 0.8),
    (250, 393, 0.5), (393, 460, 0.8),
    # eyes: image-left eye 36-41, image-right eye 42-47
    (7, 246, 0.2), (159, 161, 0.3), (157, 159, 0.4), (154, 245, 0.2), (153, 230, 0.2), (144, 230, 0.1),
    (382, 451, 0.1), (385, 398, 0.2), (386, 388, 0.3), (254, 467, 0.6), (253, 466, 0.4), (253, 380, 0.8),
    # mouth: outer lip 48-59, inner lip 60-67
    (61, 77, 0.1), (40, 72, 0.3), (82, 167, 0.4), (0, 13, 0.3), (312, 393, 0.4), (310, 391, 0.2), (291, 375, 0.1),
    (320, 406, 0.5), (313, 314, 0.7), (17, 18, 0.3), (83, 85, 0.5), (90, 182, 0.5), (146, 184, 0.6), (82, 178, 0.1),
    (13, 14, 0.1), (312, 402, 0.1), (292, 375, 0.3), (316, 317, 0.3), (14, 15, 0.7), (86, 87, 0.3),
)

_FIRST = np.array([a for a, _, _ in MESH_TO_IBUG68])
_SECOND = np.array([b for _, b, _ in MESH_TO_IBUG68])
_WEIGHT = np.array([[t] for _, _, t in MESH_TO_IBUG68], dtype=np.float64)


def ibug68_from_mesh(mesh: np.ndarray) -> np.ndarray:
    """The 68 iBUG points (68, 2) of 468 mesh vertices (468, 2 or 3), in the vertices' pixels."""
    xy = np.asarray(mesh, dtype=np.float64)[..., :2]
    return (1.0 - _WEIGHT) * xy[..., _FIRST, :] + _WEIGHT * xy[..., _SECOND, :]


def eye_roll(points: np.ndarray) -> float:
    """Roll of the line from the image-left to the image-right eye centre [rad]; 0 when level."""
    left, right = (points[list(eye)].mean(axis=0) for eye in EYES)
    return math.atan2(right[1] - left[1], right[0] - left[0])


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 to /dev/null while the block runs (for messages the C++ runtime prints itself)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, 'w') as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _sigmoid(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-logit)) if logit > -50 else 0.0


class MediaPipeLandmarkBackend:
    """68 iBUG landmarks from MediaPipe's Face Mesh; confidence: the face-presence score, for every point."""

    name = 'mediapipe'

    def __init__(self, model_path: str | Path | None = None) -> None:
        path = Path(model_path) if model_path else mediapipe_model.bundled_model_path()
        if not path.is_file():
            hint = '' if model_path else ' (scripts/fetch_models.py installs it; scripts/setup.sh runs it)'
            raise FileNotFoundError(f'MediaPipe Face Mesh model not found: {path}{hint}')
        if mediapipe_model.sha256_of(path) != mediapipe_model.MODEL_SHA256:
            raise ValueError(f'{path} is not the Face Mesh model ({mediapipe_model.SOURCE_PACKAGE}, '
                             f'{mediapipe_model.MODEL_FILE}) whose 468 -> 68 mapping facesym_ros was validated with '
                             '(its sha256 differs)')
        self.model_path = path
        from ai_edge_litert.interpreter import Interpreter

        try:
            with _quiet_stderr():  # LiteRT announces its CPU delegate on stderr, once per interpreter
                self._interpreter = Interpreter(model_path=str(path), num_threads=1)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ValueError(f'{path} cannot be loaded by LiteRT: {str(error).strip().splitlines()[0]}') from None
        (source,) = self._interpreter.get_input_details()
        outputs = {int(np.prod(o['shape'])): o['index'] for o in self._interpreter.get_output_details()}
        if tuple(source['shape']) != (1, INPUT_SIZE, INPUT_SIZE, 3) or set(outputs) != {MESH_POINTS * 3, 1}:
            raise ValueError(f'{path} is not the 468-point Face Mesh model (input {tuple(source["shape"])})')
        self._input = source['index']
        self._mesh_output, self._presence_output = outputs[MESH_POINTS * 3], outputs[1]

    def _crop_transform(self, frame: Frame, centre: tuple[float, float], side: float, roll: float) -> np.ndarray:
        """The 2x3 affine map from the frame's pixels to the model's crop: centre to the crop's centre, `side`
        pixels to INPUT_SIZE, rotated by -roll (a face rolled by `roll` comes out level)."""
        scale = INPUT_SIZE / side
        cos, sin = math.cos(roll) * scale, math.sin(roll) * scale
        cx, cy = centre[0] - frame.origin[0], centre[1] - frame.origin[1]
        half = (INPUT_SIZE - 1) / 2
        return np.array([[cos, sin, half - cos * cx - sin * cy],
                         [-sin, cos, half + sin * cx - cos * cy]], dtype=np.float64)

    def mesh(self, frame: Frame, box: Box, roll: float = 0.0) -> tuple[np.ndarray, float]:
        """The 468 mesh vertices (468, 3; x, y in image pixels, z in crop pixels) of the face in `box`, seen
        through a crop rotated by `roll` [rad], and the face-presence score in [0, 1]."""
        side = CROP_SCALE * max(box.width, box.height)
        centre = (box.x + (box.width - 1) / 2, box.y + (box.height - 1) / 2)  # pixel centres, as warpAffine's
        transform = self._crop_transform(frame, centre, side, roll)
        image, warp, step = frame.bgr, transform, INPUT_SIZE / side  # step: crop pixels per pixel of `image`
        while step < 0.5 and min(image.shape[:2]) > 1:
            # bilinear warping samples well down to half size; below, halve first (Gaussian, as an image pyramid):
            # pyrDown's pixel q is centred on pixel 2q of its source
            image, step = cv2.pyrDown(image), step * 2.0
            warp = np.column_stack([warp[:, :2] * 2.0, warp[:, 2]])
        crop = cv2.warpAffine(image, warp, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        tensor = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32)[None] * np.float32(1 / 255)
        self._interpreter.set_tensor(self._input, tensor)
        self._interpreter.invoke()
        vertices = self._interpreter.get_tensor(self._mesh_output).reshape(MESH_POINTS, 3).astype(np.float64)
        presence = _sigmoid(float(self._interpreter.get_tensor(self._presence_output).ravel()[0]))
        inverse = cv2.invertAffineTransform(transform)
        # the model's x, y run from the crop's edge (0) to its other edge (INPUT_SIZE): pixel k's centre is k + 0.5
        xy = (vertices[:, :2] - 0.5) @ inverse[:, :2].T + inverse[:, 2] + frame.origin
        return np.column_stack([xy, vertices[:, 2]]), presence

    def predict(self, frame: Frame, box: Box) -> Landmarks:
        vertices, presence = self.mesh(frame, box)
        points = ibug68_from_mesh(vertices)
        roll = eye_roll(points)
        if abs(math.degrees(roll)) > ROLL_TOLERANCE_DEG:
            vertices, presence = self.mesh(frame, box, roll)
            points = ibug68_from_mesh(vertices)
        confidence = np.full(IBUG68_POINT_COUNT, presence, dtype=np.float32)
        return Landmarks(points=points.astype(np.float32), confidence=confidence, backend=self.name)
