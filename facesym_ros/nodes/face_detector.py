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
            subscriber, so that no other node takes the whole frame through DDS;
            /diagnostics (rate, processing time, face present, model loaded: the cascade).
"""

from __future__ import annotations

import sys

from sensor_msgs.msg import Image

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


class FaceDetectorNode(SettingsNode):
    """Detects the patient's face once and keeps its box while the face stays in it (see core.detection)."""

    def __init__(self, **kwargs) -> None:
        super().__init__('face_detector', **kwargs)
        self._tracker = FaceTracker(HaarFaceDetector(self.settings(DetectorSettings)))
        self._trials = TrialController(tracker=self._tracker)
        self._face_present: bool | None = None
        depth = self.settings(NodeQueueSettings).queue_size
        self._publisher = self.create_publisher(FaceDetections, 'faces', pipeline_qos(depth))
        self._patch_publisher = self.create_publisher(Image, 'face_patch', image_qos(depth))
        self._preview_publisher = self.create_publisher(Image, PREVIEW_TOPIC, image_qos(depth))
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
                ('model', self._tracker.detector.name)]

    def _on_image(self, msg: Image) -> None:
        self._trials.before_frame(stamp_to_ns(msg.header.stamp))
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
        if self._preview_publisher.get_subscription_count() > 0:  # after the chain's messages: never delays them
            preview = preview_image(frame.bgr, self.settings(PreviewSettings).preview_width)
            self._preview_publisher.publish(bgr_to_image(preview, msg.header))
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
