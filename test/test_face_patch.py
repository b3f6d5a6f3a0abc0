"""The face patch: only face_detector and the annotator take the whole frame, and the numbers do not change.

face_detector sends landmark_detector and optical_flow the frame cut to the face box grown by PATCH_MARGIN;
boxes, points and regions stay in the whole image's pixels. These tests check that the landmarks, the
region motion and the heat map computed on the patch are those computed on the whole frame, bit for bit,
at the sample's size and twice it, and that in the live graph no node but those two subscribes to the camera.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from facesym_ros.config.files import SAMPLE_VIDEO
from facesym_ros.config.registry import DIAGNOSTICS_TOPIC
from facesym_ros.core.annotate import flow_heatmap, paste_patch
from facesym_ros.core.detection import DetectorSettings, FaceTracker, HaarFaceDetector
from facesym_ros.core.flow import FlowSettings, RegionMotionEstimator
from facesym_ros.core.frame import PATCH_MARGIN, Frame
from facesym_ros.core.geometry import Box
from facesym_ros.core.landmarks.dlib_backend import DlibLandmarkBackend
from facesym_ros.core.pipeline import FacePipeline
from facesym_ros.core.video import FrameSource
from facesym_ros.msg import FaceLandmarks
from facesym_ros.ros.conversions import PatchPlace, bgr_to_image, landmarks_to_msg, ns_to_stamp
from facesym_ros.ros.node_base import KEY_UNREADABLE, image_qos, pipeline_qos

FRAMES = 24
FIRST_FRAME = 8
"""The clip stands still at first; from here on its frames move (the smile starts at about 20)."""


def sample_frames(scale: int) -> list[Frame]:
    frames = list(FrameSource.open(SAMPLE_VIDEO).frames())[FIRST_FRAME:FIRST_FRAME + FRAMES]
    if scale == 1:
        return frames
    return [Frame.from_bgr(cv2.resize(f.bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC), f.stamp_ns)
            for f in frames]


@pytest.mark.parametrize('scale', [1, 2])
def test_landmarks_motion_and_heat_map_on_the_patch_equal_those_on_the_whole_frame(scale):
    frames = sample_frames(scale)
    pipeline = FacePipeline()  # cuts the patch, as the live graph does
    landmarks = DlibLandmarkBackend()
    tracker = FaceTracker(HaarFaceDetector(DetectorSettings()))
    whole = RegionMotionEstimator(FlowSettings(), landmarks.name)
    flows = coloured = 0
    for frame in frames:
        result = pipeline.process(frame)
        track = tracker.update(frame.gray)
        assert track == result.track
        points = landmarks.predict(frame, track.box)  # on the whole frame
        np.testing.assert_array_equal(result.landmarks.points, points.points)
        motion = whole.update(frame, track.state, track.box, track.faces_in_image, points)
        for field in ('flow_valid', 'crop_box', 'crop_mean_magnitude', 'threshold', 'magnitude_scale'):
            assert getattr(result.motion, field) == getattr(motion, field), field
        assert [(s.magnitude_sum, s.pixel_count) for s in result.motion.regions] == [
            (s.magnitude_sum, s.pixel_count) for s in motion.regions]
        patch = result.patch
        assert patch.extent == track.box.expanded(PATCH_MARGIN).clipped(frame.width, frame.height)
        assert (patch.width, patch.height) == (frame.width, frame.height)
        if motion.flow_valid:
            flows += 1
            # the heat map drawn on the patch (optical_flow) and put back into the frame (annotator)
            pasted = paste_patch(frame.bgr, flow_heatmap(patch, result.motion, 2.0), patch.extent)
            drawn = flow_heatmap(frame, motion, 2.0)
            np.testing.assert_array_equal(pasted, drawn)
            coloured += not np.array_equal(drawn, frame.bgr)
    assert flows == FRAMES - 1 and coloured >= FRAMES // 2


def test_a_patch_is_clipped_at_the_image_edge_and_knows_its_place():
    image = np.random.default_rng(3).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    frame = Frame.from_bgr(image, 7)
    patch = frame.face_patch(Box(120, 80, 40, 40))  # in the bottom-right corner: grown by 10 px, clipped
    assert patch.extent == Box(110, 70, 50, 50) and patch.origin == (110, 70)
    assert (patch.width, patch.height, patch.stamp_ns) == (160, 120, 7)
    np.testing.assert_array_equal(patch.gray, frame.gray[70:, 110:])
    assert patch.local(Box(120, 80, 40, 40)) == Box(10, 10, 40, 40)
    with pytest.raises(ValueError, match='not inside'):
        patch.local(Box(100, 80, 40, 40))
    with pytest.raises(ValueError, match='does not fit'):
        Frame.from_bgr(image[:50, :50], 7, origin=(120, 80), image_size=(160, 120))
    with pytest.raises(ValueError, match='outside'):
        frame.face_patch(Box(200, 200, 10, 10))


def test_only_face_detector_takes_the_camera_frames(live_graph):
    graph, client = live_graph()  # every node, the annotator too
    graph.start()
    client.wait_for_graph(graph.specs, timeout=120)

    def subscribers(topic: str) -> set[str]:
        return {info.node_name for info in client.get_subscriptions_info_by_topic(topic)}

    assert subscribers('/image_raw') == {'face_detector'}  # the annotator draws on face_detector's preview
    assert subscribers('/image_preview') == {'annotator'}
    assert subscribers('/face_patch') == {'landmark_detector', 'optical_flow'}
    assert {info.node_name for info in client.get_publishers_info_by_topic('/face_patch')} == {'face_detector'}
    assert 'annotator' in subscribers('/flow_heatmap')


def test_a_face_patch_that_does_not_fit_its_place_is_counted_unreadable_and_not_scored(live_graph):
    """A foreign publisher's face_patch whose size is not that of its patch_box: optical_flow says so, counts it
    in its diagnostics, publishes no motion for it, and goes on with the next frame."""
    graph, client = live_graph(names=['optical_flow'], overrides={'optical_flow': {'diagnostics_period': '0.2'}})
    unreadable: list[str] = []
    client.create_subscription(
        DiagnosticArray, DIAGNOSTICS_TOPIC, lambda msg: unreadable.extend(
            kv.value for status in msg.status if status.name == '/optical_flow'
            for kv in status.values if kv.key == KEY_UNREADABLE), pipeline_qos(100))
    patches = client.create_publisher(Image, 'face_patch', image_qos(10))
    landmarks = client.create_publisher(FaceLandmarks, 'landmarks', pipeline_qos(10))
    graph.start()
    assert client.spin_until(lambda: patches.get_subscription_count() and landmarks.get_subscription_count(), 30)

    frames = list(FrameSource.open(SAMPLE_VIDEO).frames())[:2]
    track = FaceTracker(HaarFaceDetector(DetectorSettings())).update(frames[0].gray)
    backend = DlibLandmarkBackend()

    def send(frame: Frame, shrink: int) -> None:
        header = Header(stamp=ns_to_stamp(frame.stamp_ns), frame_id='camera')
        patch = frame.face_patch(track.box)
        place = PatchPlace.of(patch, frame.width, frame.height)
        points = backend.predict(frame, track.box)
        landmarks.publish(landmarks_to_msg(points, track, header, place))
        pixels = patch.bgr[:patch.extent.height - shrink, :patch.extent.width - shrink]
        patches.publish(bgr_to_image(pixels, header))

    send(frames[0], shrink=10)  # 10 px short of its place
    assert client.spin_until(lambda: unreadable and unreadable[-1] == '1', 10.0), unreadable
    assert client.motion_stamps == []
    send(frames[1], shrink=0)
    assert client.spin_until(lambda: client.motion_stamps == [frames[1].stamp_ns], 10.0), client.motion_stamps
    assert graph.processes['optical_flow'].poll() is None
