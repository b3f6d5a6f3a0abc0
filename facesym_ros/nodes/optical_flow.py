"""optical_flow: Farneback flow in the face crop and the per-frame motion of the six regions.

Subscribes: face_patch (sensor_msgs/Image, sensor-data QoS: face_detector's patch of the
            image around the face) and landmarks (FaceLandmarks, which says where the
            patch lies), paired by exact header stamp; never the whole frame;
            trial_events (TrialEvent) to anchor the regions at the first frame of each trial.
Publishes:  region_motion (facesym_ros/RegionMotion), one per paired image;
            flow_heatmap (sensor_msgs/Image): the face patch with the thresholded flow
            magnitude over the face crop (paper Fig. 4; at FaceLandmarks.patch_box in the
            image, 0x0 without a face), one per paired image, while subscribed;
            image_markers (visualization_msgs/ImageMarker): the landmarks and the six
            region outlines, MARKERS_PER_FRAME per paired image with its header, while
            subscribed (Foxglove draws them over image_raw);
            /diagnostics (rate, processing time, unpaired frames, face present).
"""

from __future__ import annotations

import sys

from sensor_msgs.msg import Image
from visualization_msgs.msg import ImageMarker

from facesym_ros.config.node_settings import NodeQueueSettings, OpticalFlowNodeSettings
from facesym_ros.core.annotate import flow_heatmap
from facesym_ros.core.detection import TrackState
from facesym_ros.core.flow import FlowSettings, RegionMotionEstimator
from facesym_ros.core.frame import Frame
from facesym_ros.core.trials import TrialController, TrialError
from facesym_ros.msg import FaceLandmarks, RegionMotion, TrialEvent
from facesym_ros.ros.conversions import (
    PatchPlace,
    bgr_to_image,
    empty_image,
    mark_of,
    motion_to_msg,
    msg_to_box,
    msg_to_landmarks,
    stamp_to_ns,
)
from facesym_ros.ros.markers import MARKERS_PER_FRAME, image_markers
from facesym_ros.ros.node_base import (
    KEY_FACE,
    SettingsNode,
    image_qos,
    latched_qos,
    pipeline_qos,
    spin_node,
    yes_no,
)


class OpticalFlowNode(SettingsNode):
    """Adapter over core.flow.RegionMotionEstimator."""

    def __init__(self, **kwargs) -> None:
        super().__init__('optical_flow', **kwargs)
        self._estimator = RegionMotionEstimator(self.settings(FlowSettings), '')
        self._trials = TrialController(motion=self._estimator)
        depth = self.settings(NodeQueueSettings).queue_size
        self._motion_publisher = self.create_publisher(RegionMotion, 'region_motion', pipeline_qos(depth))
        self._heatmap_publisher = self.create_publisher(Image, 'flow_heatmap', image_qos(depth))
        self._marker_publisher = self.create_publisher(ImageMarker, 'image_markers',
                                                       pipeline_qos(depth * MARKERS_PER_FRAME))
        self._face_present: bool | None = None
        self.subscribe_paired([(Image, 'face_patch', image_qos(depth)),
                               (FaceLandmarks, 'landmarks', pipeline_qos(depth))], self._process, depth)
        self.create_subscription(TrialEvent, 'trial_events', self._on_trial_event, latched_qos())

    def settings_changed(self, previous: dict) -> None:
        if previous[FlowSettings] != self.settings(FlowSettings):
            backend = self._estimator.landmark_backend
            self._estimator = RegionMotionEstimator(self.settings(FlowSettings), backend)
            self._trials.motion = self._estimator
            self.get_logger().info('flow settings changed: regions are anchored anew')

    def diagnostic_values(self) -> list[tuple[str, str]]:
        return [(KEY_FACE, yes_no(self._face_present))]

    def _on_trial_event(self, event: TrialEvent) -> None:
        """The scorer's trial events: a START re-anchors the regions at the first frame of its stamp or later."""
        try:
            self._trials.command(mark_of(event))
        except TrialError as error:
            self.get_logger().warning(f'trial_events: {error}')

    def _process(self, image: Image, landmarks_msg: FaceLandmarks) -> None:
        place = PatchPlace.from_msg(landmarks_msg)
        if place.box is None:  # no face: an empty patch
            frame = Frame.without_pixels(stamp_to_ns(image.header.stamp), place.image_size)
        else:
            frame = self.frame_of(image, place)
            if frame is None:
                return
        self._trials.before_frame(frame.stamp_ns)
        landmarks = msg_to_landmarks(landmarks_msg)
        if landmarks is not None:
            self._estimator.set_landmark_backend(landmarks.backend)
        motion = self._estimator.update(frame, TrackState(landmarks_msg.track_state),
                                        msg_to_box(landmarks_msg.face_box), int(landmarks_msg.faces_in_image),
                                        landmarks)
        self._face_present = motion.face_found
        motion_msg = motion_to_msg(motion, image.header)
        self._motion_publisher.publish(motion_msg)
        settings = self.settings(OpticalFlowNodeSettings)
        if settings.publish_heatmap and self._heatmap_publisher.get_subscription_count() > 0:
            self._heatmap_publisher.publish(
                bgr_to_image(flow_heatmap(frame, motion, settings.heatmap_max), image.header) if frame.bgr.size
                else empty_image(image.header))
        if settings.publish_markers and self._marker_publisher.get_subscription_count() > 0:
            for marker in image_markers(image.header, landmarks_msg, motion_msg):
                self._marker_publisher.publish(marker)


def main(args: list[str] | None = None) -> int:
    return spin_node(OpticalFlowNode, args)


if __name__ == '__main__':
    sys.exit(main())
