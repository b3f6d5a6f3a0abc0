"""face_detector: Viola-Jones face detection with the paper's fixed face box.

Subscribes: image (sensor_msgs/Image, sensor-data QoS); trial_events (TrialEvent), so
            that the face of a trial is detected in its first frame, as the paper does,
            whatever frames (or restarts of this node) came before.
Publishes:  faces (facesym_ros/FaceDetections), one per image, also when no face is found;
            face_patch (sensor_msgs/Image, bgr8, sensor-data QoS), one per image: the part of
            the image around the face (FaceDetections.patch_box), all that landmark_detector
            and optical_flow need of it, so that only this node receives the whole frame;
            0x0 when no face is found;
            image_preview (sensor_msgs/Image, bgr8, sensor-data QoS): the image scaled down to
            preview_width for people (the annotator draws on it), published only while it has a
            subscriber, so that no other node takes the whole frame through DDS; it is made on a
            thread of its own, so the chain's callback only hands the frame over (a preview the
            thread could not take before the next frame came is skipped, never the chain's);
            /diagnostics (rate, processing time, face present, model loaded: the cascade).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from facesym_ros.config.files import receive_buffer_warning, udp_receive_limit
from facesym_ros.config.node_settings import NodeQueueSettings, PreviewSettings
from facesym_ros.config.registry import PREVIEW_TOPIC
from facesym_ros.core.annotate import preview_image
from facesym_ros.core.detection import DetectorSettings, FaceTrack, FaceTracker, HaarFaceDetector, TrackState
from facesym_ros.core.pipeline import face_patch_of
from facesym_ros.core.trials import TrialController, TrialError
from facesym_ros.msg import FaceDetections, TrialEvent
from facesym_ros.ros.conversions import PatchPlace, bgr_to_image, empty_image, mark_of, stamp_to_ns, track_to_msg
from facesym_ros.ros.node_base import (
    KEY_FACE,
    KEY_MODEL,
    WARN_PERIOD,
    SettingsNode,
    image_qos,
    latched_qos,
    pipeline_qos,
    spin_node,
    yes_no,
)


class PreviewPublisher:
    """image_preview, scaled and published on a thread of its own from the frames offered to it.

    It holds one frame: one offered while the thread is still busy replaces the one waiting (counted in
    `skipped`). Nothing is done while the topic has no subscriber.
    """

    def __init__(self, publisher: Any, width: Callable[[], int]) -> None:
        self._publisher = publisher
        self._width = width
        self._pending: tuple[np.ndarray, Header] | None = None
        self._condition = threading.Condition()
        self._stopped = False
        self.skipped = 0
        self._thread = threading.Thread(target=self._run, name='facesym.preview', daemon=True)
        self._thread.start()

    def offer(self, bgr: np.ndarray, header: Header) -> None:
        if self._publisher.get_subscription_count() == 0:
            return
        with self._condition:
            if self._pending is not None:
                self.skipped += 1
            self._pending = (bgr, header)
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while self._pending is None and not self._stopped:
                    self._condition.wait()
                if self._stopped:
                    return
                (bgr, header), self._pending = self._pending, None
            try:
                self._publisher.publish(bgr_to_image(preview_image(bgr, self._width()), header))
            except Exception:  # the node is shutting down under it: rclpy's handles are gone
                return

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._condition.notify()
        self._thread.join(timeout=2.0)


KEY_RECEIVE_BUFFER = 'receive buffer'  # 'ok', or what to set when two camera frames do not fit it

class FaceDetectorNode(SettingsNode):
    """Detects the patient's face once and keeps its box while the face stays in it (see core.detection)."""

    def __init__(self, **kwargs) -> None:
        super().__init__('face_detector', **kwargs)
        self._tracker = FaceTracker(HaarFaceDetector(self.settings(DetectorSettings)))
        self._trials = TrialController(tracker=self._tracker)
        self._face_present: bool | None = None
        self._receive_limit = udp_receive_limit()
        self._buffer_warning = ''  # two camera frames do not fit the UDP receive buffer (a 1080p rig)
        self._frame_bytes = 0
        depth = self.settings(NodeQueueSettings).queue_size
        self._publisher = self.create_publisher(FaceDetections, 'faces', pipeline_qos(depth))
        self._patch_publisher = self.create_publisher(Image, 'face_patch', image_qos(depth))
        self._preview = PreviewPublisher(self.create_publisher(Image, PREVIEW_TOPIC, image_qos(depth)),
                                         lambda: self.settings(PreviewSettings).preview_width)
        self.create_subscription(Image, 'image', self.timed(self._on_image), image_qos(depth))
        self.create_subscription(TrialEvent, 'trial_events', self._on_trial_event, latched_qos())

    def check_settings(self, settings: dict) -> None:
        try:
            HaarFaceDetector(settings[DetectorSettings])
        except FileNotFoundError as error:
            raise ValueError(str(error)) from None

    def settings_changed(self, previous: dict) -> None:
        if previous[DetectorSettings] != self.settings(DetectorSettings):
            self._tracker = self._trials.tracker = FaceTracker(HaarFaceDetector(self.settings(DetectorSettings)))

    def _on_trial_event(self, event: TrialEvent) -> None:
        """The scorer's trial events: a START makes the first frame of its stamp or later detect the face anew."""
        try:
            self._trials.command(mark_of(event))
        except TrialError as error:
            self.get_logger().warning(f'trial_events: {error}')

    def diagnostic_values(self) -> list[tuple[str, str]]:
        return [(KEY_FACE, yes_no(self._face_present)), (KEY_MODEL, 'true'),
                ('model', self._tracker.detector.name), ('previews skipped', str(self._preview.skipped)),
                (KEY_RECEIVE_BUFFER, self._buffer_warning or 'ok')]

    def _check_frame_size(self, frame_bytes: int) -> None:
        """Once per frame size: say so when two whole frames cannot fit the kernel's UDP receive buffer."""
        if frame_bytes == self._frame_bytes:
            return
        self._frame_bytes = frame_bytes
        self._buffer_warning = receive_buffer_warning(frame_bytes, self._receive_limit)
        if self._buffer_warning:
            self.get_logger().warning(self._buffer_warning)

    def destroy_node(self) -> None:
        self._preview.stop()
        super().destroy_node()

    def _on_image(self, msg: Image) -> None:
        self._trials.before_frame(stamp_to_ns(msg.header.stamp))
        self._check_frame_size(len(msg.data))
        frame = self.frame_of(msg)
        if frame is None:
            return
        try:
            track = self._tracker.update(frame.gray)
        except ValueError as error:  # a patient_region outside the image: no face can be the patient's
            self.get_logger().error(str(error), throttle_duration_sec=WARN_PERIOD)
            track = FaceTrack(TrackState.NO_FACE, None, (), -1)
        self._face_present = track.state != TrackState.NO_FACE
        patch = face_patch_of(frame, track)
        place = PatchPlace.of(patch, frame.width, frame.height)
        self._patch_publisher.publish(bgr_to_image(patch.bgr, msg.header) if patch is not None
                                      else empty_image(msg.header))
        self._publisher.publish(track_to_msg(track, msg.header, self._tracker.detector.name, place))
        self._preview.offer(frame.bgr, msg.header)  # after the chain's messages, on its own thread
        if track.state == TrackState.NO_FACE:
            self.get_logger().warning('no face in the image', throttle_duration_sec=WARN_PERIOD)
        elif track.faces_in_image > 1:
            box = track.box
            self.get_logger().info(
                f'{track.faces_in_image} faces; scoring the patient\'s at x={box.x} y={box.y} '
                f'{box.width}x{box.height}', throttle_duration_sec=WARN_PERIOD)


def main(args: list[str] | None = None) -> int:
    return spin_node(FaceDetectorNode, args)


if __name__ == '__main__':
    sys.exit(main())
