"""The console's readiness check: is the rig fit to start a session? From what the graph publishes.

Plain Python (the console node feeds it): the graph's nodes on /diagnostics, frames arriving at the camera's
rate, the patient's face found and its size, the small_face and head-motion rules of the scorer (the same
settings, so the check warns of the flags a trial would get), and the light on the face.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass

from facesym_ros.config.registry import SOURCE_NODE
from facesym_ros.core.flags import FLAG_TEXTS
from facesym_ros.core.scoring import QualityFlag, ScoringSettings

WINDOW = 2.0  # s of frames the checks look back over
NODE_SILENCE = 3.5  # s without a /diagnostics status after which a node counts as down
RATE_SHARE = 0.9  # frames must arrive at this share of the camera's rate
FACE_SHARE = 0.9  # the face must be found in this share of the window's frames
LIGHT_RANGE = (60.0, 210.0)  # mean grey level of the face patch, of 255, that is neither dark nor washed out


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    text: str

    def to_json(self) -> dict:
        return {'name': self.name, 'ok': self.ok, 'text': self.text}


class Readiness:
    """Collects the graph's messages (from the node's thread) and judges them (in the server's)."""

    def __init__(self, nodes: tuple[str, ...], scoring: ScoringSettings | None = None) -> None:
        self.nodes = nodes
        self.scoring = scoring or ScoringSettings()
        self.faces: deque[tuple[float, bool, int]] = deque(maxlen=600)  # (arrival, found, face width px)
        self.motion: deque[tuple[float, bool, float, tuple[float, float]]] = deque(maxlen=600)
        self.light: deque[tuple[float, float]] = deque(maxlen=60)
        self.statuses: dict[str, tuple[float, int, str, dict[str, str]]] = {}  # node -> (arrival, level, message)
        self._lock = threading.Lock()

    def on_faces(self, found: bool, width: int, now: float | None = None) -> None:
        with self._lock:
            self.faces.append((time.monotonic() if now is None else now, found, width))

    def on_motion(self, found: bool, upscale: float, head: tuple[float, float], now: float | None = None) -> None:
        with self._lock:
            self.motion.append((time.monotonic() if now is None else now, found, upscale, head))

    def on_light(self, mean: float, now: float | None = None) -> None:
        with self._lock:
            self.light.append((time.monotonic() if now is None else now, mean))

    def on_status(self, name: str, level: int, message: str, values: dict[str, str],
                  now: float | None = None) -> None:
        with self._lock:
            self.statuses[name.rsplit('/', 1)[-1]] = (time.monotonic() if now is None else now, level, message,
                                                      values)

    def checks(self, now: float | None = None) -> list[Check]:
        now = time.monotonic() if now is None else now
        with self._lock:
            faces = [item for item in self.faces if now - item[0] <= WINDOW]
            motion = [item for item in self.motion if now - item[0] <= WINDOW]
            light = [mean for at, mean in self.light if now - at <= WINDOW]
            statuses = dict(self.statuses)
        return [self._graph(statuses, now), self._frames(faces, statuses, now), self._face(faces), self._size(motion),
                self._head(motion), self._light(light)]

    def _graph(self, statuses: dict, now: float) -> Check:
        down = [name for name in self.nodes if now - statuses.get(name, (-math.inf,))[0] > NODE_SILENCE]
        errors = [f'{name}: {statuses[name][2]}' for name in self.nodes if name not in down and statuses[name][1] >= 2]
        if down:
            return Check('graph', False, f'not heard on /diagnostics: {", ".join(down)}')
        if errors:
            return Check('graph', False, '; '.join(errors))
        return Check('graph', True, f'all {len(self.nodes)} nodes up')

    @staticmethod
    def _camera_rate(statuses: dict) -> float | None:
        status = statuses.get(SOURCE_NODE)
        try:
            return float(status[3]['rate (Hz)']) if status else None
        except (KeyError, ValueError):
            return None

    def _frames(self, faces: list, statuses: dict, now: float) -> Check:
        if len(faces) < 2:
            return Check('frames', False, 'no frames are arriving: is the camera running?')
        rate = (len(faces) - 1) / max(faces[-1][0] - faces[0][0], 1e-3) if now - faces[0][0] > 1.0 else 0.0
        camera = self._camera_rate(statuses)
        expected = f' (camera {camera:.1f} fps)' if camera else ''
        ok = rate > 0 and (camera is None or rate >= RATE_SHARE * camera)
        words = '' if ok else ': the graph is falling behind the camera'
        return Check('frames', ok, f'{rate:.1f} fps{expected}{words}')

    def _face(self, faces: list) -> Check:
        if not faces:
            return Check('face', False, 'no face: no frames')
        found = [item for item in faces if item[1]]
        if len(found) < FACE_SHARE * len(faces):
            return Check('face', False, f'face found in {len(found)} of {len(faces)} frames: '
                                        + FLAG_TEXTS[QualityFlag.NO_FACE].action)
        return Check('face', True, f'found, {found[-1][2]} px wide')

    def _size(self, motion: list) -> Check:
        scales = [item[2] for item in motion if item[1] and item[2] > 0]
        if not scales:
            return Check('face size', False, 'no face measured yet')
        upscale, limit = max(scales), self.scoring.max_face_upscale
        if upscale > limit:
            return Check('face size', False, f'resampled x{upscale:.2f} (limit x{limit:g}): '
                                             + FLAG_TEXTS[QualityFlag.SMALL_FACE].action)
        return Check('face size', True, f'resampled x{upscale:.2f} (small_face above x{limit:g})')

    def _head(self, motion: list) -> Check:
        heads = [item[3] for item in motion if item[1]]
        if len(heads) < 2:
            return Check('head still', False, 'no face measured yet')
        moved = max(math.hypot(x - heads[0][0], y - heads[0][1]) for x, y in heads)
        limit = self.scoring.max_head_motion
        if moved > limit:
            return Check('head still', False, f'the head moved {moved:.2f} inter-ocular distances in {WINDOW:g} s '
                                              f'(limit {limit:g}): ask the patient to keep the head still')
        return Check('head still', True, f'moved {moved:.2f} inter-ocular distances in {WINDOW:g} s '
                                         f'(limit {limit:g})')

    def _light(self, recent: list[float]) -> Check:
        if not recent:
            return Check('light', False, 'no face picture yet')
        mean = sum(recent) / len(recent)
        low, high = LIGHT_RANGE
        if mean < low:
            return Check('light', False, f'face too dark ({mean:.0f} of 255): add light in front of the patient')
        if mean > high:
            return Check('light', False, f'face washed out ({mean:.0f} of 255): less light, or turn from the window')
        return Check('light', True, f'face brightness {mean:.0f} of 255')
