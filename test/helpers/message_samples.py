"""One filled-in instance of every facesym_ros message, and a plain-data view of messages."""

from __future__ import annotations

import array
import math

import numpy as np
from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from facesym_ros.msg import (
    DetectedFace,
    FaceDetections,
    FaceLandmarks,
    ImagePoint,
    PixelBox,
    RegionMotion,
    RegionScore,
    RegionSideMotion,
    SymmetryScore,
    TaskPrompt,
    TrialEvent,
)

HEADER = Header(stamp=Time(sec=1732000000, nanosec=123456789), frame_id='rig_camera')
BOX = PixelBox(x=195, y=89, width=198, height=198)
PATCH = PixelBox(x=146, y=40, width=296, height=296)


def samples() -> dict[str, object]:
    """Topic name -> message; no field keeps its default, and float32 fields hold values float32 represents exactly."""
    points = [ImagePoint(x=200.5 + i, y=150.25 + 2 * i) for i in range(68)]
    polygon = [ImagePoint(x=10.0, y=20.0), ImagePoint(x=30.5, y=20.0), ImagePoint(x=30.5, y=40.75)]
    return {
        'pixel_box': BOX,
        'image_point': ImagePoint(x=12.5, y=-3.25),
        'detected_face': DetectedFace(box=BOX, confidence=7.25),
        'face_detections': FaceDetections(
            header=HEADER, detector='haar:haarcascade_frontalface_default.xml',
            faces=[DetectedFace(box=BOX, confidence=7.25),
                   DetectedFace(box=PixelBox(x=10, y=12, width=60, height=61), confidence=2.5)],
            selected=0, tracked_box=BOX, state=FaceDetections.STATE_REDETECTED, patch_box=PATCH,
            image_width=640, image_height=480),
        'face_landmarks': FaceLandmarks(
            header=HEADER, face_found=True, layout=FaceLandmarks.LAYOUT_IBUG68, backend='san', face_box=BOX,
            track_state=FaceDetections.STATE_TRACKED, faces_in_image=2, patch_box=PATCH, image_width=1280,
            image_height=720, points=points, confidence=[0.5 + i / 256 for i in range(68)]),
        'region_side_motion': RegionSideMotion(region='cheek', side='left', magnitude_sum=123.456, pixel_count=6761,
                                               mean_magnitude=123.456 / 6761, polygon=polygon),
        'region_motion': RegionMotion(
            header=HEADER, previous_stamp=Time(sec=1732000000, nanosec=90123456), face_found=True, flow_valid=True,
            crop_box=BOX, crop_mean_magnitude=0.5625, threshold_factor=6.0, threshold=3.375, magnitude_scale=1.0,
            regions=[RegionSideMotion(region=r, side=s, magnitude_sum=float(10 * k + j), pixel_count=1000 + k,
                                      mean_magnitude=float(10 * k + j) / (1000 + k), polygon=polygon)
                     for k, r in enumerate(('forehead', 'eye', 'cheek')) for j, s in enumerate(('left', 'right'))],
            head_offset_x=0.015625, head_offset_y=-0.25, landmark_confidence=-1.0,
            track_state=FaceDetections.STATE_TRACKED, faces_in_image=1, method='{"landmark_backend": "dlib"}',
            image_width=640, image_height=360, face_changed=True),
        'region_score': RegionScore(region='eye', vs_left=0.0194, vs_right=0.0273, symmetry=0.97),
        'symmetry_score': SymmetryScore(
            header=HEADER, trial_id='trial-0007', task='smile', session_id='S-12', subject_id='P-0042',
            kind=SymmetryScore.KIND_FINAL,
            first_stamp=Time(sec=1731999990, nanosec=5), last_stamp=HEADER.stamp, frame_count=72, flow_pair_count=70,
            regions=[RegionScore(region='forehead', vs_left=0.0001, vs_right=0.0, symmetry=1.0),
                     RegionScore(region='eye', vs_left=0.0194, vs_right=0.0273, symmetry=0.97),
                     RegionScore(region='cheek', vs_left=math.nan, vs_right=0.05, symmetry=math.nan)],
            symmetry_lambda=3.8, threshold_factor=6.0,
            quality_flags=SymmetryScore.FLAG_NO_FACE | SymmetryScore.FLAG_EMPTY_REGION,
            frames_without_face=1, frames_dropped=2, frames_low_landmark_confidence=3, frames_multiple_faces=4,
            face_box_changes=5, max_head_motion=0.1875, quality_notes=['1 of 72 frames had no face', 'empty cheek'],
            method='{"software": "facesym_ros 0.1.0"}'),
        'trial_event': TrialEvent(header=HEADER, event=TrialEvent.STOP, trial_id='trial-0007', task='smile',
                                  session_id='S-12', subject_id='P-0042'),
        'task_prompt': TaskPrompt(header=HEADER, session_id='S-12', subject_id='P-0042', task='raise_brows',
                                  instruction='Raise your eyebrows.', task_number=2, task_count=7,
                                  state=TaskPrompt.STATE_GO, duration=4.0),
    }


def to_plain(value: object) -> object:
    """Messages as nested dicts and lists of plain numbers and strings (NaN as the string 'nan')."""
    if hasattr(value, 'get_fields_and_field_types'):
        return {name: to_plain(getattr(value, name)) for name in value.get_fields_and_field_types()}
    if isinstance(value, (list, tuple, array.array, np.ndarray)):
        return [to_plain(item) for item in value]
    if isinstance(value, float):
        return 'nan' if math.isnan(value) else value
    if isinstance(value, (np.floating, np.integer)):
        return to_plain(value.item())
    return value
