"""Per-frame motion made by hand, for tests of the scoring rules."""

from __future__ import annotations

import numpy as np

from facesym_ros.core.detection import TrackState
from facesym_ros.core.flow import RegionMotion, RegionSideMotion
from facesym_ros.core.geometry import Box

POLYGON = np.zeros((0, 2))


def motion(stamp: int, sums: dict[tuple[str, str], float], *, pixels: int = 100, valid: bool = True,
           face: bool = True, offset=(0.0, 0.0), confidence: float = -1.0, faces: int = 1,
           state: TrackState = TrackState.TRACKED) -> RegionMotion:
    regions = tuple(RegionSideMotion(r, s, sums.get((r, s), 0.0) if valid else 0.0, pixels if valid else 0, POLYGON)
                    for r in ('forehead', 'eye', 'cheek') for s in ('left', 'right')) if face else ()
    return RegionMotion(stamp_ns=stamp, previous_stamp_ns=stamp - 1 if valid else 0, face_found=face,
                       flow_valid=valid and face, crop_box=Box(0, 0, 10, 10) if face else None,
                       crop_mean_magnitude=0.0, threshold_factor=6.0, threshold=0.0, magnitude_scale=1.0,
                       regions=regions, head_offset=offset, landmark_confidence=confidence, track_state=state,
                       faces_in_image=faces if face else 0, method='')
