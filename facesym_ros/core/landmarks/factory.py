"""Choosing and building a landmark backend from settings."""

from __future__ import annotations

from dataclasses import dataclass

from facesym_ros.core.landmarks import LandmarkBackend
from facesym_ros.core.settings import Settings, setting

BACKENDS = ('dlib', 'mediapipe', 'san')


@dataclass(frozen=True)
class LandmarkSettings(Settings):
    backend: str = setting('dlib', 'Landmark model: dlib (bundled weights; not for commercial use), mediapipe '
                                   '(MediaPipe Face Mesh mapped to the 68 points, Apache-2.0, installed at setup) '
                                   'or san (the paper\'s network; needs model_path)',
                           choices=BACKENDS)
    model_path: str = setting('', 'Model file: empty for the installed model of mediapipe or dlib; a SAN '
                                  'checkpoint (.pth) for san')
    device: str = setting('cpu', 'torch device for san, e.g. cpu or cuda:0')

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.backend == 'san' and not self.model_path:
            raise ValueError('model_path must name a SAN checkpoint when backend is san '
                             '(SAN weights are not bundled; see README)')


def make_landmark_backend(config: LandmarkSettings) -> LandmarkBackend:
    """The configured backend, with its model loaded (raises if the model cannot be loaded)."""
    if config.backend == 'san':
        from facesym_ros.core.landmarks.san import SanLandmarkBackend

        return SanLandmarkBackend(config.model_path, device=config.device)
    if config.backend == 'dlib':
        from facesym_ros.core.landmarks.dlib_backend import DlibLandmarkBackend

        return DlibLandmarkBackend(config.model_path or None)
    from facesym_ros.core.landmarks.mediapipe_backend import MediaPipeLandmarkBackend

    return MediaPipeLandmarkBackend(config.model_path or None)
