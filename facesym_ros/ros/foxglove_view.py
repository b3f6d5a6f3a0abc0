"""The running graph in the Foxglove app: a node that relays it to a foxglove-sdk WebSocket server.

Channels (Foxglove schemas; log times are the source images' header stamps):
  /image_raw, /flow_heatmap   foxglove.RawImage, the images unchanged (bgr8)
  /annotations                foxglove.ImageAnnotations: the 68 landmarks and the six region outlines of
                              each frame (from landmarks and region_motion, paired by stamp), timestamped
                              like its image, so the Image panel draws them over either image
  /annotated                  foxglove.CompressedImage: the annotator's picture (face box, landmarks,
                              regions, heat map, score panel and the patient's prompt), relayed from
                              `annotated/compressed` (JPEG) as it is, without decoding
  /score, /score_running      JSON: trial_id, kind, frame_count and per region symmetry, vs_left, vs_right
                              (null where there is no score), plottable as /score_running.regions.eye.symmetry
  /prompt                     JSON: the task a `facesym session` asks of the patient (TaskPrompt: session,
                              task, instruction, its number of how many, state get_ready/go/done, duration)
Nothing is converted for a channel no Foxglove client subscribes to, and the images are subscribed to in
ROS only while a Foxglove client subscribes to their channel (checked every WATCH_PERIOD), so an
unwatched view costs no image transport, optical_flow draws no heat map and the annotator draws and
encodes nothing for it.

config/foxglove_layout.json is the layout for these channels, generated from `layout()`:
`python -m facesym_ros.ros.foxglove_view > config/foxglove_layout.json`.
"""

from __future__ import annotations

import json
import math
from typing import Any

import foxglove
import foxglove.layouts as fl
from foxglove.channels import CompressedImageChannel, ImageAnnotationsChannel, RawImageChannel
from foxglove.messages import (
    Color,
    CompressedImage,
    ImageAnnotations,
    Point2,
    PointsAnnotation,
    PointsAnnotationType,
    RawImage,
)
from foxglove.messages import Timestamp as FoxgloveTimestamp
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage as RosCompressedImage
from sensor_msgs.msg import Image

from facesym_ros.clinic.session_record import PROMPT_TOPIC
from facesym_ros.core.annotate import LANDMARK_COLOUR, REGION_COLOURS
from facesym_ros.core.regions import REGION_NAMES
from facesym_ros.msg import FaceLandmarks, RegionMotion, SymmetryScore, TaskPrompt
from facesym_ros.ros.conversions import stamp_to_ns
from facesym_ros.ros.markers import LANDMARK_SIZE, OUTLINE_WIDTH
from facesym_ros.ros.node_base import CONTROL_QUEUE_DEPTH, StampPairer, image_qos, latched_qos, pipeline_qos

IMAGE_TOPICS = ('image_raw', 'flow_heatmap')
ANNOTATED = '/annotated'
ANNOTATED_SOURCE = 'annotated/compressed'
"""The annotator's JPEG picture (image_transport's naming), relayed on ANNOTATED."""
ANNOTATIONS = '/annotations'
PROMPT_STATES = {TaskPrompt.STATE_GET_READY: 'get_ready', TaskPrompt.STATE_GO: 'go', TaskPrompt.STATE_DONE: 'done'}
PROMPT_SCHEMA = {
    'type': 'object', 'title': 'facesym task prompt',
    'properties': {
        'session_id': {'type': 'string'}, 'subject_id': {'type': 'string'}, 'task': {'type': 'string'},
        'instruction': {'type': 'string'}, 'task_number': {'type': 'integer'}, 'task_count': {'type': 'integer'},
        'state': {'type': 'string'}, 'duration': {'type': 'number'}}}
SCORE_TOPICS = ('score', 'score_running')
QUEUE_DEPTH = 5
WATCH_PERIOD = 0.25
"""How often the relay checks which image channels Foxglove clients subscribe to [s]."""
KIND_NAMES = {SymmetryScore.KIND_FINAL: 'final', SymmetryScore.KIND_RUNNING: 'running',
              SymmetryScore.KIND_WINDOW: 'window'}
SCORE_SCHEMA_NAME = 'facesym.SymmetryScore'
SCORE_SCHEMA = {
    'type': 'object', 'title': 'facesym symmetry score',
    'properties': {
        'trial_id': {'type': 'string'}, 'kind': {'type': 'string'}, 'frame_count': {'type': 'integer'},
        'quality_flags': {'type': 'integer'}, 'quality_notes': {'type': 'array', 'items': {'type': 'string'}},
        'regions': {'type': 'object', 'properties': {
            region: {'type': 'object', 'properties': {
                key: {'type': ['number', 'null']} for key in ('symmetry', 'vs_left', 'vs_right')}}
            for region in REGION_NAMES}}}}


def _timestamp(stamp: Any) -> FoxgloveTimestamp:
    return FoxgloveTimestamp(sec=int(stamp.sec), nsec=int(stamp.nanosec))


def _colour(bgr: tuple[int, int, int]) -> Color:
    blue, green, red = bgr
    return Color(r=red / 255.0, g=green / 255.0, b=blue / 255.0, a=1.0)


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def score_json(msg: SymmetryScore) -> dict[str, Any]:
    """A score as the JSON of the /score and /score_running channels."""
    return {'trial_id': msg.trial_id, 'kind': KIND_NAMES.get(msg.kind, str(msg.kind)),
            'frame_count': int(msg.frame_count), 'quality_flags': int(msg.quality_flags),
            'quality_notes': list(msg.quality_notes),
            'regions': {r.region: {'symmetry': _number(r.symmetry), 'vs_left': _number(r.vs_left),
                                   'vs_right': _number(r.vs_right)} for r in msg.regions}}


def prompt_json(msg: TaskPrompt) -> dict[str, Any]:
    """A task prompt as the JSON of the /prompt channel."""
    return {'session_id': msg.session_id, 'subject_id': msg.subject_id, 'task': msg.task,
            'instruction': msg.instruction, 'task_number': int(msg.task_number), 'task_count': int(msg.task_count),
            'state': PROMPT_STATES.get(msg.state, str(msg.state)), 'duration': float(msg.duration)}


def _json_channel(topic: str, schema_name: str, schema: dict, context: foxglove.Context | None) -> foxglove.Channel:
    return foxglove.Channel(topic, message_encoding='json', context=context, schema=foxglove.Schema(
        name=schema_name, encoding='jsonschema', data=json.dumps(schema).encode()))


def annotations(landmarks: FaceLandmarks, motion: RegionMotion) -> ImageAnnotations:
    """The landmarks and region outlines of one frame, timestamped with its image."""
    stamp = _timestamp(landmarks.header.stamp)
    items = []
    if landmarks.face_found:
        items.append(PointsAnnotation(timestamp=stamp, type=PointsAnnotationType.Points, thickness=LANDMARK_SIZE,
                                      points=[Point2(x=p.x, y=p.y) for p in landmarks.points],
                                      outline_color=_colour(LANDMARK_COLOUR)))
    for side in motion.regions:
        if len(side.polygon):
            items.append(PointsAnnotation(timestamp=stamp, type=PointsAnnotationType.LineLoop,
                                          thickness=OUTLINE_WIDTH.get(side.side, 1.0),
                                          points=[Point2(x=p.x, y=p.y) for p in side.polygon],
                                          outline_color=_colour(REGION_COLOURS.get(side.region, (255, 255, 255)))))
    return ImageAnnotations(points=items)


class FoxgloveRelay(Node):
    """Subscribes to the graph's images, landmarks, region motion and scores; logs them to Foxglove channels."""

    def __init__(self, context: foxglove.Context | None = None, **kwargs: Any) -> None:
        super().__init__('facesym_view', **kwargs)
        self.relayed: dict[str, int] = {}
        # ROS topic -> (Foxglove channel, ROS message type, relay), subscribed to only while watched
        self._images: dict[str, tuple[Any, type, Any]] = {
            topic: (RawImageChannel(f'/{topic}', context=context), Image, self._image) for topic in IMAGE_TOPICS}
        self._images[ANNOTATED_SOURCE] = (CompressedImageChannel(ANNOTATED, context=context), RosCompressedImage,
                                          self._compressed)
        self._image_subscriptions: dict[str, Any] = {}
        self.create_timer(WATCH_PERIOD, self._watch_images)
        self._annotations = ImageAnnotationsChannel(ANNOTATIONS, context=context)
        self._pairer = StampPairer(2, QUEUE_DEPTH)
        self.create_subscription(FaceLandmarks, 'landmarks', lambda msg: self._pair(0, msg), pipeline_qos(QUEUE_DEPTH))
        self.create_subscription(RegionMotion, 'region_motion', lambda msg: self._pair(1, msg),
                                 pipeline_qos(QUEUE_DEPTH))
        for topic, qos in zip(SCORE_TOPICS, (latched_qos(), pipeline_qos(CONTROL_QUEUE_DEPTH)), strict=True):
            channel = _json_channel(f'/{topic}', SCORE_SCHEMA_NAME, SCORE_SCHEMA, context)
            self.create_subscription(SymmetryScore, topic, lambda msg, channel=channel: self._score(channel, msg),
                                     qos)
        self._prompt = _json_channel(f'/{PROMPT_TOPIC}', 'facesym.TaskPrompt', PROMPT_SCHEMA, context)
        self._latest_prompt: TaskPrompt | None = None
        self._prompt_sinks = False
        self.create_subscription(TaskPrompt, PROMPT_TOPIC, self._on_prompt, latched_qos(1))

    def _count(self, topic: str) -> None:
        self.relayed[topic] = self.relayed.get(topic, 0) + 1

    def _watch_images(self) -> None:
        """Subscribe to an image topic while its channel has a Foxglove subscriber, and only then."""
        for topic, (channel, msg_type, relay) in self._images.items():
            subscription = self._image_subscriptions.get(topic)
            if channel.has_sinks() and subscription is None:
                self._image_subscriptions[topic] = self.create_subscription(
                    msg_type, topic, lambda msg, channel=channel, relay=relay: relay(channel, msg),
                    image_qos(QUEUE_DEPTH))
            elif not channel.has_sinks() and subscription is not None:
                self.destroy_subscription(self._image_subscriptions.pop(topic))
        # A client that joins later gets the current prompt (the ROS topic is latched, a Foxglove channel not).
        sinks = self._prompt.has_sinks()
        if sinks and not self._prompt_sinks and self._latest_prompt is not None:
            self._log_prompt(self._latest_prompt)
        self._prompt_sinks = sinks

    def _image(self, channel: RawImageChannel, msg: Image) -> None:
        if not channel.has_sinks():
            return
        channel.log(RawImage(timestamp=_timestamp(msg.header.stamp), frame_id=msg.header.frame_id,
                             width=msg.width, height=msg.height, encoding=msg.encoding, step=msg.step,
                             data=bytes(msg.data)), log_time=stamp_to_ns(msg.header.stamp))
        self._count(channel.topic())

    def _compressed(self, channel: CompressedImageChannel, msg: RosCompressedImage) -> None:
        if not channel.has_sinks():
            return
        # image_transport's format strings ('bgr8; jpeg compressed bgr8', 'png') -> Foxglove's (jpeg, png)
        image_format = 'png' if 'png' in msg.format.lower() else 'jpeg'
        channel.log(CompressedImage(timestamp=_timestamp(msg.header.stamp), frame_id=msg.header.frame_id,
                                    data=bytes(msg.data), format=image_format),
                    log_time=stamp_to_ns(msg.header.stamp))
        self._count(channel.topic())

    def _on_prompt(self, msg: TaskPrompt) -> None:
        self._latest_prompt = msg
        if self._prompt.has_sinks():
            self._log_prompt(msg)

    def _log_prompt(self, msg: TaskPrompt) -> None:
        self._prompt.log(prompt_json(msg), log_time=stamp_to_ns(msg.header.stamp))
        self._count(self._prompt.topic())

    def _pair(self, stream: int, msg: Any) -> None:
        pair = self._pairer.add(stream, stamp_to_ns(msg.header.stamp), msg)
        if pair is None or not self._annotations.has_sinks():
            return
        self._annotations.log(annotations(*pair), log_time=stamp_to_ns(pair[0].header.stamp))
        self._count(ANNOTATIONS)

    def _score(self, channel: foxglove.Channel, msg: SymmetryScore) -> None:
        if not channel.has_sinks():
            return
        channel.log(score_json(msg), log_time=stamp_to_ns(msg.header.stamp))
        self._count(channel.topic())


def layout() -> fl.Layout:
    """The Foxglove layout of the view: the annotator's picture, the camera image with the annotations and the
    heat map, over the running and final scores."""
    def image(topic: str, title: str, annotated: bool) -> fl.ImagePanel:
        return fl.ImagePanel(title=title, config=fl.ImageConfig(image_mode=fl.ImageModeConfig(
            image_topic=topic, annotations={ANNOTATIONS: fl.ImageAnnotationSettings(visible=annotated)})))

    def plot(topic: str, title: str) -> fl.PlotPanel:
        return fl.PlotPanel(title=title, config=fl.PlotConfig(show_legend=True, min_y_value=0.0, max_y_value=1.0,
                                                              paths=[fl.PlotSeries(
            value=f'{topic}.regions.{region}.symmetry', label=f'{region} SS', enabled=True)
            for region in REGION_NAMES]))

    return fl.Layout(content=fl.SplitContainer(direction='column', items=[
        fl.SplitItem(proportion=2, content=fl.SplitContainer(direction='row', items=[
            fl.SplitItem(content=image(ANNOTATED, 'annotated: heat map, regions, scores, prompt', False)),
            fl.SplitItem(content=image(f'/{IMAGE_TOPICS[0]}', 'camera, landmarks and regions', True)),
            # the heat map is of the face patch only: the markers, in image pixels, would not fit it
            fl.SplitItem(content=image(f'/{IMAGE_TOPICS[1]}', 'flow heat map (face patch)', False))])),
        fl.SplitItem(proportion=1, content=fl.SplitContainer(direction='row', items=[
            fl.SplitItem(content=plot(f'/{SCORE_TOPICS[1]}', 'running symmetry score (SS)')),
            fl.SplitItem(content=plot(f'/{SCORE_TOPICS[0]}', 'final symmetry score (SS) per trial'))]))]))


def layout_json() -> str:
    return json.dumps(json.loads(layout().to_json()), indent=2) + '\n'


if __name__ == '__main__':
    print(layout_json(), end='')
