"""annotator: an image for RViz with the face box, the 68 points, the six regions and the latest scores.

Subscribes: image (sensor_msgs/Image: the graph remaps it to face_detector's image_preview,
            the camera frame scaled down for people, so that only face_detector takes the
            whole frame; the whole frame works too), flow_heatmap (optical_flow's face patch
            with the flow heat map, scaled to the image and put back at FaceLandmarks.patch_box
            so that the heat map shows under the drawing), landmarks (FaceLandmarks) and
            region_motion (RegionMotion), paired by exact header stamp; score and
            score_running (SymmetryScore) for the score panel; prompt (TaskPrompt), the task a
            `facesym session` asks of the patient, drawn as a banner along the bottom edge.
Publishes:  annotated (sensor_msgs/Image, bgr8, the size of `image`) and annotated/compressed
            (sensor_msgs/CompressedImage, JPEG, image_transport's naming), one per paired image on each while it has a
            subscriber, at most max_rate a second (by the stamps): nothing is drawn or encoded for nobody;
            /diagnostics (rate and processing time of the paired frames, unpaired frames).
"""

from __future__ import annotations

import sys

from sensor_msgs.msg import CompressedImage, Image

from facesym_ros.clinic.session_record import PROMPT_TOPIC, banner_text
from facesym_ros.config.node_settings import AnnotatorNodeSettings, NodeQueueSettings
from facesym_ros.core.annotate import annotate, paste_scaled_patch
from facesym_ros.core.scoring import RegionScore
from facesym_ros.core.timebase import RateGate
from facesym_ros.msg import FaceLandmarks, RegionMotion, SymmetryScore, TaskPrompt
from facesym_ros.ros.conversions import (
    PatchPlace,
    bgr_to_compressed,
    bgr_to_image,
    msg_to_box,
    msg_to_landmarks,
    stamp_to_ns,
)
from facesym_ros.ros.node_base import (
    CONTROL_QUEUE_DEPTH,
    SettingsNode,
    image_qos,
    latched_qos,
    pipeline_qos,
    spin_node,
)

KIND_NAMES = {SymmetryScore.KIND_FINAL: 'final', SymmetryScore.KIND_RUNNING: 'running',
              SymmetryScore.KIND_WINDOW: 'window'}


class AnnotatorNode(SettingsNode):
    def __init__(self, **kwargs) -> None:
        super().__init__('annotator', **kwargs)
        depth = self.settings(NodeQueueSettings).queue_size
        self._latest_score: SymmetryScore | None = None
        self._prompt: TaskPrompt | None = None
        self._gate = RateGate(self.settings(AnnotatorNodeSettings).max_rate)
        self._publisher = self.create_publisher(Image, 'annotated', image_qos(depth))
        self._compressed_publisher = self.create_publisher(CompressedImage, 'annotated/compressed', image_qos(depth))
        self.subscribe_paired([(Image, 'image', image_qos(depth)), (Image, 'flow_heatmap', image_qos(depth)),
                               (FaceLandmarks, 'landmarks', pipeline_qos(depth)),
                               (RegionMotion, 'region_motion', pipeline_qos(depth))], self._draw, depth)
        self.create_subscription(SymmetryScore, 'score', self._on_score, latched_qos())
        self.create_subscription(SymmetryScore, 'score_running', self._on_score, pipeline_qos(CONTROL_QUEUE_DEPTH))
        self.create_subscription(TaskPrompt, PROMPT_TOPIC, self._on_prompt, latched_qos(1))

    def settings_changed(self, previous: dict) -> None:
        if previous[AnnotatorNodeSettings].max_rate != self.settings(AnnotatorNodeSettings).max_rate:
            self._gate = RateGate(self.settings(AnnotatorNodeSettings).max_rate)

    def _on_prompt(self, msg: TaskPrompt) -> None:
        self._prompt = msg

    def _banner(self, frame_ns: int) -> str:
        prompt = self._prompt
        if prompt is None:
            return ''
        return banner_text(frame_ns, state=prompt.state, task=prompt.task, instruction=prompt.instruction,
                           task_number=prompt.task_number, task_count=prompt.task_count,
                           start_ns=stamp_to_ns(prompt.header.stamp), duration=prompt.duration)

    def _on_score(self, msg: SymmetryScore) -> None:
        self._latest_score = msg

    def _draw(self, image: Image, heatmap: Image, landmarks_msg: FaceLandmarks, motion: RegionMotion) -> None:
        raw = self._publisher.get_subscription_count() > 0
        compressed = self._compressed_publisher.get_subscription_count() > 0
        if not (raw or compressed) or not self._gate.take(stamp_to_ns(image.header.stamp)):
            return
        frame = self.frame_of(image)
        if frame is None:
            return
        bgr = frame.bgr
        place = PatchPlace.from_msg(landmarks_msg)
        # the image is a preview (or the whole frame): the results are in pixels of the whole camera image
        scale = frame.width / place.image_size[0] if place.image_size[0] else 1.0
        if place.box is not None:  # else no face, and an empty heat map
            patch = self.frame_of(heatmap, place)
            if patch is None:
                return
            bgr = paste_scaled_patch(bgr, patch.bgr, place.box, scale)
        polygons = [(r.region, r.side, [(p.x, p.y) for p in r.polygon]) for r in motion.regions]
        scores, title, notes = (), 'no score yet', ()
        score = self._latest_score
        if score is not None:
            scores = [RegionScore(r.region, r.vs_left, r.vs_right, r.symmetry) for r in score.regions]
            title = f'{score.trial_id} ({KIND_NAMES.get(score.kind, "?")}, {score.frame_count} frames)'
            notes = tuple(score.quality_notes)
        if not landmarks_msg.face_found:
            notes = ('no face', *notes)
        picture = annotate(bgr, msg_to_box(landmarks_msg.face_box), msg_to_landmarks(landmarks_msg), polygons,
                           scores=scores, title=title, notes=notes, banner=self._banner(frame.stamp_ns), scale=scale)
        if raw:
            self._publisher.publish(bgr_to_image(picture, image.header))
        if compressed:
            quality = self.settings(AnnotatorNodeSettings).jpeg_quality
            self._compressed_publisher.publish(bgr_to_compressed(picture, image.header, quality))


def main(args: list[str] | None = None) -> int:
    return spin_node(AnnotatorNode, args)


if __name__ == '__main__':
    sys.exit(main())
