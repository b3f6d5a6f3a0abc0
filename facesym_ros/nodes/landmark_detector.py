"""landmark_detector: 68 facial landmarks of the scored face.

Subscribes: face_patch (sensor_msgs/Image, sensor-data QoS: face_detector's patch of the
            image around the face) and faces (FaceDetections, which says where the patch
            lies), paired by exact header stamp; never the whole frame.
Publishes:  landmarks (facesym_ros/FaceLandmarks), one per paired image;
            /diagnostics (rate, processing time, unpaired frames, face present, model loaded).
"""

from __future__ import annotations

import sys

from sensor_msgs.msg import Image

from facesym_ros.config.node_settings import NodeQueueSettings
from facesym_ros.core.landmarks import MODELS, LandmarkBackend
from facesym_ros.core.landmarks.factory import LandmarkSettings, make_landmark_backend
from facesym_ros.core.pipeline import predict_landmarks
from facesym_ros.msg import FaceDetections, FaceLandmarks
from facesym_ros.ros.conversions import PatchPlace, landmarks_to_msg, msg_to_track
from facesym_ros.ros.node_base import KEY_FACE, KEY_MODEL, SettingsNode, image_qos, pipeline_qos, spin_node, yes_no


class LandmarkDetectorNode(SettingsNode):
    """Runs the configured landmark backend (dlib by default) inside the tracked face box."""

    def __init__(self, **kwargs) -> None:
        self._loaded_config: LandmarkSettings | None = None
        self._candidate: tuple[LandmarkSettings, LandmarkBackend] | None = None
        self._backend: LandmarkBackend | None = None
        self._face_present: bool | None = None
        super().__init__('landmark_detector', **kwargs)
        self._use_candidate()
        depth = self.settings(NodeQueueSettings).queue_size
        self._publisher = self.create_publisher(FaceLandmarks, 'landmarks', pipeline_qos(depth))
        self.subscribe_paired([(Image, 'face_patch', image_qos(depth)),
                               (FaceDetections, 'faces', pipeline_qos(depth))], self._process, depth)

    def check_settings(self, settings: dict) -> None:
        """Load the model now, so that a bad backend or model path is rejected and the old model kept."""
        config = settings[LandmarkSettings]
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
            notice = MODELS[self._backend.name].notice
            if notice:
                self.get_logger().warning(notice)

    def diagnostic_values(self) -> list[tuple[str, str]]:
        loaded = self._backend is not None
        return [(KEY_FACE, yes_no(self._face_present)), (KEY_MODEL, yes_no(loaded)),
                ('model', self._backend.name if loaded else '')]

    def _process(self, patch_msg: Image, faces: FaceDetections) -> None:
        track, place = msg_to_track(faces), PatchPlace.from_msg(faces)
        landmarks = None
        if place.box is not None:  # else no face: an empty patch
            patch = self.frame_of(patch_msg, place)
            if patch is None:
                return
            landmarks = predict_landmarks(self._backend, patch, track)
        self._face_present = landmarks is not None
        self._publisher.publish(landmarks_to_msg(landmarks, track, patch_msg.header, place))


def main(args: list[str] | None = None) -> int:
    return spin_node(LandmarkDetectorNode, args)


if __name__ == '__main__':
    sys.exit(main())
