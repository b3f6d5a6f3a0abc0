"""optical_flow: Farneback flow in the face crop and the per-frame motion of the six regions.

Subscribes: image (sensor_msgs/Image, sensor-data QoS) and landmarks (FaceLandmarks),
            paired by exact header stamp; trial_events (TrialEvent) to anchor the
            regions at the first frame of each trial.
Publishes:  region_motion (facesym_ros/RegionMotion), one per paired image;
            flow_heatmap (sensor_msgs/Image): the image with the thresholded flow
            magnitude over the face (paper Fig. 4), one per paired image.
"""

from __future__ import annotations

import sys

from sensor_msgs.msg import Image

from facesym_ros.core.annotate import heatmap_overlay
from facesym_ros.core.detection import TrackState
from facesym_ros.core.flow import FlowConfig, RegionMotionEstimator
from facesym_ros.core.frame import Frame
from facesym_ros.msg import FaceLandmarks, RegionMotion, TrialEvent
from facesym_ros.node_settings import NodeQueueSettings, OpticalFlowNodeSettings
from facesym_ros.ros.conversions import (
    ImageConversionError,
    bgr_to_image,
    image_to_bgr,
    motion_to_msg,
    msg_to_box,
    msg_to_landmarks,
    stamp_to_ns,
)
from facesym_ros.ros.node_base import SettingsNode, StampPairer, image_qos, latched_qos, pipeline_qos, spin_node

WARN_PERIOD = 5.0


class OpticalFlowNode(SettingsNode):
    """Adapter over core.flow.RegionMotionEstimator."""

    def __init__(self, **kwargs) -> None:
        super().__init__('optical_flow', (FlowConfig, OpticalFlowNodeSettings, NodeQueueSettings), **kwargs)
        self._estimator = RegionMotionEstimator(self.settings(FlowConfig), '')
        depth = self.settings(NodeQueueSettings).queue_size
        self._pairer = StampPairer(2, depth)
        self._motion_publisher = self.create_publisher(RegionMotion, 'region_motion', pipeline_qos(depth))
        self._heatmap_publisher = self.create_publisher(Image, 'flow_heatmap', image_qos(depth))
        self.create_subscription(Image, 'image', lambda m: self._add(0, m), image_qos(depth))
        self.create_subscription(FaceLandmarks, 'landmarks', lambda m: self._add(1, m), pipeline_qos(depth))
        self.create_subscription(TrialEvent, 'trial_events', self._on_trial_event, latched_qos())

    def settings_changed(self, previous: dict) -> None:
        if previous[FlowConfig] != self.settings(FlowConfig):
            backend = self._estimator.landmark_backend
            self._estimator = RegionMotionEstimator(self.settings(FlowConfig), backend)
            self.get_logger().info('flow settings changed: regions are anchored anew')

    def _on_trial_event(self, event: TrialEvent) -> None:
        if event.event == TrialEvent.START:
            self._estimator.anchor_at(stamp_to_ns(event.header.stamp))
        elif event.event == TrialEvent.RESET:
            self._estimator.reset()

    def _add(self, stream: int, msg: Image | FaceLandmarks) -> None:
        unpaired = self._pairer.unpaired
        pair = self._pairer.add(stream, stamp_to_ns(msg.header.stamp), msg)
        if self._pairer.unpaired > unpaired:
            self.get_logger().warning(f'{self._pairer.unpaired} images/landmarks could not be paired by stamp',
                                      throttle_duration_sec=WARN_PERIOD)
        if pair is not None:
            self._process(*pair)

    def _process(self, image: Image, landmarks_msg: FaceLandmarks) -> None:
        try:
            frame = Frame.from_bgr(image_to_bgr(image), stamp_to_ns(image.header.stamp))
        except (ImageConversionError, ValueError) as error:
            self.get_logger().warning(f'skipping image: {error}', throttle_duration_sec=WARN_PERIOD)
            return
        landmarks = msg_to_landmarks(landmarks_msg)
        if landmarks is not None:
            self._estimator.set_landmark_backend(landmarks.backend)
        motion = self._estimator.update(frame, TrackState(landmarks_msg.track_state),
                                        msg_to_box(landmarks_msg.face_box), int(landmarks_msg.faces_in_image),
                                        landmarks)
        self._motion_publisher.publish(motion_to_msg(motion, image.header))
        settings = self.settings(OpticalFlowNodeSettings)
        if settings.publish_heatmap and self._heatmap_publisher.get_subscription_count() > 0:
            picture = frame.bgr
            if motion.flow_valid and motion.magnitude is not None and motion.crop_box is not None:
                picture = heatmap_overlay(picture, motion.crop_box, motion.magnitude, settings.heatmap_max)
            self._heatmap_publisher.publish(bgr_to_image(picture, image.header))


def main(args: list[str] | None = None) -> int:
    return spin_node(OpticalFlowNode, args)


if __name__ == '__main__':
    sys.exit(main())
