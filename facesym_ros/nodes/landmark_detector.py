"""landmark_detector: 68 facial landmarks of the scored face.

Subscribes: image (sensor_msgs/Image, sensor-data QoS) and faces (FaceDetections),
            paired by exact header stamp.
Publishes:  landmarks (facesym_ros/FaceLandmarks), one per paired image.
"""

from __future__ import annotations

import sys

from sensor_msgs.msg import Image

from facesym_ros.core.frame import Frame
from facesym_ros.core.landmarks import LandmarkBackend
from facesym_ros.core.landmarks.factory import LandmarkConfig, make_landmark_backend
from facesym_ros.core.pipeline import predict_landmarks
from facesym_ros.msg import FaceDetections, FaceLandmarks
from facesym_ros.node_settings import NodeQueueSettings
from facesym_ros.ros.conversions import (
    ImageConversionError,
    image_to_bgr,
    landmarks_to_msg,
    msg_to_track,
    stamp_to_ns,
)
from facesym_ros.ros.node_base import SettingsNode, StampPairer, image_qos, pipeline_qos, spin_node

WARN_PERIOD = 5.0


class LandmarkDetectorNode(SettingsNode):
    """Runs the configured landmark backend (dlib by default) inside the tracked face box."""

    def __init__(self, **kwargs) -> None:
        self._loaded_config: LandmarkConfig | None = None
        self._candidate: tuple[LandmarkConfig, LandmarkBackend] | None = None
        super().__init__('landmark_detector', (LandmarkConfig, NodeQueueSettings), **kwargs)
        self._use_candidate()
        depth = self.settings(NodeQueueSettings).queue_size
        self._pairer = StampPairer(2, depth)
        self._publisher = self.create_publisher(FaceLandmarks, 'landmarks', pipeline_qos(depth))
        self.create_subscription(Image, 'image', lambda m: self._add(0, m), image_qos(depth))
        self.create_subscription(FaceDetections, 'faces', lambda m: self._add(1, m), pipeline_qos(depth))

    def check_settings(self, settings: dict) -> None:
        """Load the model now, so that a bad backend or model path is rejected and the old model kept."""
        config = settings[LandmarkConfig]
        if config == self._loaded_config:
            return
        try:
            self._candidate = (config, make_landmark_backend(config))
        except (FileNotFoundError, RuntimeError, ImportError, ValueError) as error:
            raise ValueError(f'cannot load the {config.backend} landmark model: {error}') from None

    def settings_changed(self, previous: dict) -> None:
        self._use_candidate()

    def _use_candidate(self) -> None:
        if self._candidate is not None:
            self._loaded_config, self._backend = self._candidate
            self._candidate = None
            self.get_logger().info(f'landmark backend: {self._backend.name}')

    def _add(self, stream: int, msg: Image | FaceDetections) -> None:
        unpaired = self._pairer.unpaired
        pair = self._pairer.add(stream, stamp_to_ns(msg.header.stamp), msg)
        if self._pairer.unpaired > unpaired:
            self.get_logger().warning(f'{self._pairer.unpaired} images/face messages could not be paired by stamp',
                                      throttle_duration_sec=WARN_PERIOD)
        if pair is not None:
            self._process(*pair)

    def _process(self, image: Image, faces: FaceDetections) -> None:
        try:
            frame = Frame.from_bgr(image_to_bgr(image), stamp_to_ns(image.header.stamp))
        except (ImageConversionError, ValueError) as error:
            self.get_logger().warning(f'skipping image: {error}', throttle_duration_sec=WARN_PERIOD)
            return
        track = msg_to_track(faces)
        landmarks = predict_landmarks(self._backend, frame, track)
        self._publisher.publish(landmarks_to_msg(landmarks, track, image.header))


def main(args: list[str] | None = None) -> int:
    return spin_node(LandmarkDetectorNode, args)


if __name__ == '__main__':
    sys.exit(main())
