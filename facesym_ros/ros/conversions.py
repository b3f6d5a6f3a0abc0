"""Conversions between ROS messages and the core's types.

Every value is carried at the precision the message holds, and the core
already rounds to that precision, so converting a core object to a message
and back gives an equal object: this is what makes live scores equal
offline scores.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from types import SimpleNamespace

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from rosbags.image import ImageError, message_to_cvimage
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from facesym_ros.core import flow as core_flow
from facesym_ros.core import scoring as core_scoring
from facesym_ros.core.detection import Detection, FaceTrack, TrackState
from facesym_ros.core.frame import Frame
from facesym_ros.core.geometry import Box, Landmarks
from facesym_ros.core.scoring import Quality, QualityFlag, ScoreResult, TrialLabels
from facesym_ros.core.timebase import NS_PER_SECOND
from facesym_ros.core.trials import TrialEventKind, TrialMark
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
    TrialEvent,
)

NO_POLYGON = np.zeros((0, 2))


class ImageConversionError(ValueError):
    """An image message that cannot be turned into a BGR picture."""


def message_class(msgtype: str) -> type:
    """The rclpy message class of 'pkg/msg/Name'."""
    package, kind, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)


# -- time ---------------------------------------------------------------------------------------------------------

def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * NS_PER_SECOND + int(stamp.nanosec)


def ns_to_stamp(nanoseconds: int) -> Time:
    return Time(sec=int(nanoseconds // NS_PER_SECOND), nanosec=int(nanoseconds % NS_PER_SECOND))


# -- images -------------------------------------------------------------------------------------------------------

# Bytes per pixel of the sensor_msgs/image_encodings that rosbags-image converts.
_PIXEL_BYTES = {
    'mono8': 1, 'mono16': 2, 'bgr8': 3, 'rgb8': 3, 'bgra8': 4, 'rgba8': 4, 'bgr16': 6, 'rgb16': 6,
    'bgra16': 8, 'rgba16': 8, 'uyvy': 2, 'yuv422': 2, 'yuyv': 2, 'yuv422_yuy2': 2,
    **{f'bayer_{p}8': 1 for p in ('rggb', 'bggr', 'gbrg', 'grbg')},
    **{f'bayer_{p}16': 2 for p in ('rggb', 'bggr', 'gbrg', 'grbg')},
}
_GENERIC_ENCODING = re.compile(r'(8U|8S|16U|16S|32S|32F|64F)(?:C([0-9]+))?')
_DEPTH_BYTES = {'8U': 1, '8S': 1, '16U': 2, '16S': 2, '32S': 4, '32F': 4, '64F': 8}


def _pixel_bytes(encoding: str) -> int:
    if encoding in _PIXEL_BYTES:
        return _PIXEL_BYTES[encoding]
    generic = _GENERIC_ENCODING.fullmatch(encoding)
    if generic:
        return _DEPTH_BYTES[generic.group(1)] * int(generic.group(2) or 1)
    raise ImageConversionError(f'unsupported image encoding {encoding!r}')


def image_to_bgr(msg: Image | CompressedImage) -> np.ndarray:
    """An 8-bit BGR image from sensor_msgs/Image (any encoding rosbags-image knows) or CompressedImage."""
    if isinstance(msg, CompressedImage) or hasattr(msg, 'format'):
        if len(msg.data) == 0:
            raise ImageConversionError('empty compressed image')
        view = msg
    else:
        height, width, step = int(msg.height), int(msg.width), int(msg.step)
        if height == 0 or width == 0:
            raise ImageConversionError(f'empty image ({width}x{height})')
        if step * height > len(msg.data) or step == 0:
            raise ImageConversionError(
                f'image data too short: {len(msg.data)} bytes for {height} rows of {step} bytes')
        data = msg.data
        row_bytes = width * _pixel_bytes(msg.encoding)
        if step < row_bytes:
            raise ImageConversionError(f'step {step} is shorter than a row of {width} {msg.encoding} pixels')
        if step != row_bytes:
            # Rows are padded: drop the padding so the pixels are contiguous.
            rows = np.frombuffer(data, np.uint8, count=step * height).reshape(height, step)
            data = rows[:, :row_bytes].tobytes()
        view = SimpleNamespace(encoding=msg.encoding, height=height, width=width,
                               is_bigendian=msg.is_bigendian, data=data)
    try:
        bgr = message_to_cvimage(view, 'bgr8')
    except (ImageError, ValueError, TypeError, AssertionError) as error:
        raise ImageConversionError(f'cannot convert {getattr(msg, "encoding", "compressed")!r} image: '
                                   f'{error or type(error).__name__}') from None
    if bgr is None or bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ImageConversionError('image did not decode to a colour picture')
    return np.ascontiguousarray(bgr, dtype=np.uint8)


def bgr_to_compressed(bgr: np.ndarray, header: Header, quality: int) -> CompressedImage:
    """sensor_msgs/CompressedImage (JPEG, image_transport's compressed format string) with the given header."""
    ok, encoded = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError('OpenCV could not JPEG-encode the image')
    return CompressedImage(header=header, format='bgr8; jpeg compressed bgr8', data=encoded.tobytes())


def bgr_to_image(bgr: np.ndarray, header: Header) -> Image:
    """sensor_msgs/Image (bgr8) of an 8-bit BGR array, with the given header."""
    bgr = np.ascontiguousarray(bgr, dtype=np.uint8)
    height, width = bgr.shape[:2]
    msg = Image(header=header, height=height, width=width, encoding='bgr8', is_bigendian=False, step=width * 3)
    msg.data = bgr.tobytes()
    return msg


# -- boxes, detections, landmarks ---------------------------------------------------------------------------------

def box_to_msg(box: Box | None) -> PixelBox:
    if box is None:
        return PixelBox()
    return PixelBox(x=box.x, y=box.y, width=box.width, height=box.height)


def msg_to_box(msg: PixelBox) -> Box | None:
    if msg.width <= 0 or msg.height <= 0:
        return None
    return Box(int(msg.x), int(msg.y), int(msg.width), int(msg.height))


def empty_image(header: Header) -> Image:
    """A 0x0 bgr8 image: the face_patch of a frame without a face (one message a frame, so stamps pair)."""
    return Image(header=header, height=0, width=0, encoding='bgr8', is_bigendian=False, step=0)


@dataclass(frozen=True)
class PatchPlace:
    """Where a stamp's face_patch lies in its source image (FaceDetections and FaceLandmarks carry it)."""

    box: Box | None
    """The patch's pixels in the image; None: no face, so an empty patch."""
    image_size: tuple[int, int]

    @classmethod
    def of(cls, patch: Frame | None, image_width: int, image_height: int) -> PatchPlace:
        return cls(None if patch is None else patch.extent, (image_width, image_height))

    @classmethod
    def from_msg(cls, msg: FaceDetections | FaceLandmarks) -> PatchPlace:
        return cls(msg_to_box(msg.patch_box), (int(msg.image_width), int(msg.image_height)))

    def fill(self, msg: FaceDetections | FaceLandmarks) -> None:
        msg.patch_box = box_to_msg(self.box)
        msg.image_width, msg.image_height = self.image_size


def track_to_msg(track: FaceTrack, header: Header, detector: str, place: PatchPlace) -> FaceDetections:
    msg = FaceDetections(
        header=header, detector=detector,
        faces=[DetectedFace(box=box_to_msg(d.box), confidence=d.confidence) for d in track.detections],
        selected=track.selected, tracked_box=box_to_msg(track.box), state=int(track.state))
    place.fill(msg)
    return msg


def msg_to_track(msg: FaceDetections) -> FaceTrack:
    detections = tuple(Detection(msg_to_box(face.box), float(face.confidence)) for face in msg.faces)
    return FaceTrack(TrackState(msg.state), msg_to_box(msg.tracked_box), detections, int(msg.selected))


def landmarks_to_msg(landmarks: Landmarks | None, track: FaceTrack, header: Header,
                     place: PatchPlace) -> FaceLandmarks:
    msg = FaceLandmarks(header=header, layout=FaceLandmarks.LAYOUT_IBUG68, face_box=box_to_msg(track.box),
                        track_state=int(track.state), faces_in_image=track.faces_in_image)
    place.fill(msg)
    if landmarks is None:
        return msg
    msg.face_found = True
    msg.backend = landmarks.backend
    msg.points = [ImagePoint(x=float(x), y=float(y)) for x, y in landmarks.points]
    if landmarks.confidence is not None:
        msg.confidence = landmarks.confidence.tolist()
    return msg


def msg_to_landmarks(msg: FaceLandmarks) -> Landmarks | None:
    if not msg.face_found:
        return None
    points = np.array([(p.x, p.y) for p in msg.points], dtype=np.float32)
    confidence = np.asarray(msg.confidence, dtype=np.float32) if len(msg.confidence) else None
    return Landmarks(points=points, confidence=confidence, backend=msg.backend, layout=msg.layout)


# -- region motion ------------------------------------------------------------------------------------------------

def motion_to_msg(motion: core_flow.RegionMotion, header: Header) -> RegionMotion:
    return RegionMotion(
        header=header,
        previous_stamp=ns_to_stamp(motion.previous_stamp_ns),
        face_found=motion.face_found, flow_valid=motion.flow_valid,
        crop_box=box_to_msg(motion.crop_box),
        crop_mean_magnitude=motion.crop_mean_magnitude, threshold_factor=motion.threshold_factor,
        threshold=motion.threshold, magnitude_scale=motion.magnitude_scale,
        regions=[RegionSideMotion(
            region=side.region, side=side.side, magnitude_sum=side.magnitude_sum, pixel_count=side.pixel_count,
            mean_magnitude=side.mean_magnitude,
            polygon=[ImagePoint(x=float(x), y=float(y)) for x, y in side.polygon]) for side in motion.regions],
        head_offset_x=motion.head_offset[0], head_offset_y=motion.head_offset[1],
        landmark_confidence=motion.landmark_confidence, track_state=int(motion.track_state),
        faces_in_image=motion.faces_in_image, method=motion.method, image_width=motion.image_size[0],
        image_height=motion.image_size[1], face_changed=motion.face_changed)


def msg_to_motion(msg: RegionMotion, *, with_polygons: bool = True) -> core_flow.RegionMotion:
    """The core's RegionMotion of a message; without polygons it is lighter to keep for a long trial."""
    def polygon(points) -> np.ndarray:
        if not with_polygons:
            return NO_POLYGON
        return np.array([(p.x, p.y) for p in points], dtype=np.float64).reshape(-1, 2)

    return core_flow.RegionMotion(
        stamp_ns=stamp_to_ns(msg.header.stamp), previous_stamp_ns=stamp_to_ns(msg.previous_stamp),
        face_found=msg.face_found, flow_valid=msg.flow_valid, crop_box=msg_to_box(msg.crop_box),
        crop_mean_magnitude=msg.crop_mean_magnitude, threshold_factor=msg.threshold_factor,
        threshold=msg.threshold, magnitude_scale=msg.magnitude_scale,
        regions=tuple(core_flow.RegionSideMotion(r.region, r.side, r.magnitude_sum, int(r.pixel_count),
                                                 polygon(r.polygon)) for r in msg.regions),
        head_offset=(msg.head_offset_x, msg.head_offset_y), landmark_confidence=msg.landmark_confidence,
        track_state=TrackState(msg.track_state), faces_in_image=int(msg.faces_in_image), method=msg.method,
        image_size=(int(msg.image_width), int(msg.image_height)), face_changed=bool(msg.face_changed))


# -- scores -------------------------------------------------------------------------------------------------------

def score_to_msg(result: ScoreResult, kind: int, frame_id: str) -> SymmetryScore:
    quality = result.quality
    return SymmetryScore(
        header=Header(stamp=ns_to_stamp(result.last_stamp_ns), frame_id=frame_id),
        trial_id=result.trial_id, task=result.labels.task, session_id=result.labels.session_id,
        subject_id=result.labels.subject_id, kind=kind,
        first_stamp=ns_to_stamp(result.first_stamp_ns), last_stamp=ns_to_stamp(result.last_stamp_ns),
        frame_count=result.frame_count, flow_pair_count=result.flow_pair_count,
        regions=[RegionScore(region=r.region, vs_left=r.vs_left, vs_right=r.vs_right, symmetry=r.symmetry)
                 for r in result.regions],
        symmetry_lambda=result.symmetry_lambda, threshold_factor=result.threshold_factor,
        quality_flags=int(quality.flags), frames_without_face=quality.frames_without_face,
        frames_dropped=quality.frames_dropped,
        frames_low_landmark_confidence=quality.frames_low_landmark_confidence,
        frames_multiple_faces=quality.frames_multiple_faces, face_box_changes=quality.face_box_changes,
        max_head_motion=quality.max_head_motion, quality_notes=list(quality.notes), method=result.method)


def msg_to_score(msg: SymmetryScore) -> ScoreResult:
    """The core's ScoreResult of a SymmetryScore message (for reports and comparisons)."""
    return ScoreResult(
        trial_id=msg.trial_id, labels=labels_of(msg),
        first_stamp_ns=stamp_to_ns(msg.first_stamp), last_stamp_ns=stamp_to_ns(msg.last_stamp),
        frame_count=int(msg.frame_count), flow_pair_count=int(msg.flow_pair_count),
        regions=tuple(core_scoring.RegionScore(r.region, r.vs_left, r.vs_right, r.symmetry) for r in msg.regions),
        symmetry_lambda=msg.symmetry_lambda, threshold_factor=msg.threshold_factor,
        quality=Quality(
            frames_without_face=int(msg.frames_without_face), frames_dropped=int(msg.frames_dropped),
            frames_low_landmark_confidence=int(msg.frames_low_landmark_confidence),
            frames_multiple_faces=int(msg.frames_multiple_faces), face_box_changes=int(msg.face_box_changes),
            max_head_motion=msg.max_head_motion, flags=QualityFlag(msg.quality_flags),
            notes=tuple(msg.quality_notes)),
        method=msg.method)


# -- trials -------------------------------------------------------------------------------------------------------

def labels_of(msg: SymmetryScore | TrialEvent) -> TrialLabels:
    """The task, session and subject a SymmetryScore or TrialEvent carries."""
    return TrialLabels(msg.task, msg.session_id, msg.subject_id)


def mark_to_msg(mark: TrialMark, frame_id: str) -> TrialEvent:
    labels = mark.labels
    return TrialEvent(header=Header(stamp=ns_to_stamp(mark.stamp_ns), frame_id=frame_id), event=int(mark.event),
                      trial_id=mark.trial_id, task=labels.task, session_id=labels.session_id,
                      subject_id=labels.subject_id)


def mark_of(msg: TrialEvent) -> TrialMark:
    """The core's TrialMark of a TrialEvent (ValueError for an event kind this version does not know)."""
    return TrialMark(stamp_to_ns(msg.header.stamp), TrialEventKind(msg.event), msg.trial_id, labels_of(msg))
