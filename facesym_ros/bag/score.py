"""`facesym score-bag`: score a recorded session offline, with the same core as the live graph, without DDS.

Every image of the bag goes through FacePipeline in stamp order, as it went
through the live nodes: a reading thread observes it (face_detector's and
landmark_detector's work) and the caller's thread measures its flow and scores
it (optical_flow's and symmetry_scorer's), each side with a TrialController
(the one the nodes use) applying the trial marks by stamp. Trials come from
time ranges the user gives, or from the trial markers
(facesym_ros/msg/TrialEvent) the scorer recorded; with neither, the whole bag
is one trial. Because the same code sees the same frames with the same
stamps, the scores equal the live ones.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rclpy.serialization import serialize_message
from rosbags.interfaces import Connection
from rosbags.rosbag2 import Writer, WriterError
from rosbags.serde import SerdeError
from rosbags.typesys import TypesysError
from std_msgs.msg import Header

from facesym_ros.bag.storage import (
    IMAGE_TYPES,
    BagContents,
    BagError,
    BagMessage,
    Topic,
    add_topic,
    create_writer,
    typestore,
)
from facesym_ros.core.annotate import annotated_frame
from facesym_ros.core.frame import Frame
from facesym_ros.core.pipeline import READ_AHEAD, FacePipeline, FrameResult, Observation, PipelineSettings, run_ahead
from facesym_ros.core.scoring import ScoreResult, TrialLabels
from facesym_ros.core.timebase import ns_to_seconds, seconds_to_ns
from facesym_ros.core.trials import (
    ScoreKind,
    TrialController,
    TrialError,
    TrialEventKind,
    TrialMark,
    TrialScorer,
    order_marks,
)
from facesym_ros.ros.conversions import (
    ImageConversionError,
    PatchPlace,
    bgr_to_image,
    image_to_bgr,
    landmarks_to_msg,
    motion_to_msg,
    ns_to_stamp,
    score_to_msg,
    stamp_to_ns,
    track_to_msg,
)

TRIAL_EVENT_TYPE = 'facesym_ros/msg/TrialEvent'
# Images this package draws itself; never the input when a camera topic is there too.
DERIVED_IMAGE_TOPICS = ('flow_heatmap', 'annotated')
FACE_PATCH_TOPIC = 'face_patch'
"""The detector's cut-out of the frame around the face; never the input."""
# What --output-bag adds, under its namespace.
DERIVED_TOPIC_TYPES = {'faces': 'facesym_ros/msg/FaceDetections', 'landmarks': 'facesym_ros/msg/FaceLandmarks',
                       'region_motion': 'facesym_ros/msg/RegionMotion', 'annotated': 'sensor_msgs/msg/Image',
                       'score': 'facesym_ros/msg/SymmetryScore'}


@dataclass(frozen=True)
class TrialRange:
    """A trial given on the command line: seconds after the first image's stamp."""

    start: float
    stop: float

    @classmethod
    def parse(cls, text: str) -> TrialRange:
        match = re.fullmatch(r'\s*([0-9]*\.?[0-9]+)\s*:\s*([0-9]*\.?[0-9]+)\s*', text)
        if not match:
            raise ValueError(f'--trial takes START:STOP in seconds, e.g. 12.0:18.5; got {text!r}')
        start, stop = float(match.group(1)), float(match.group(2))
        if stop <= start:
            raise ValueError(f'--trial {text}: the stop must come after the start')
        return cls(start, stop)


@dataclass
class BagScore:
    """What score-bag found: the final score of every trial, and what it could not use."""

    bag: Path
    image_topic: str
    trials_from: str
    scores: list[ScoreResult] = field(default_factory=list)
    frames_read: int = 0
    last_log_time_ns: int = 0
    frames_skipped: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def to_json_dict(self) -> dict:
        return {'bag': str(self.bag), 'image_topic': self.image_topic, 'trials_from': self.trials_from,
                'frames_read': self.frames_read, 'frames_skipped': dict(self.frames_skipped),
                'problems': list(self.problems), 'trials': [score.to_json_dict() for score in self.scores]}


def pick_image_topic(bag: BagContents, requested: str | None) -> Topic:
    """The camera image topic: the one asked for, or the only candidate, or the one named image_raw."""
    # the face patch holds only the part of the frame around the face: never a camera
    images = [topic for topic in bag.topics.values()
              if topic.msgtype in IMAGE_TYPES and topic.base_name != FACE_PATCH_TOPIC]
    if requested is not None:
        topic = bag.topics.get(requested) or bag.topics.get('/' + requested.lstrip('/'))
        if topic is None:
            raise BagError(f'{bag.path}: no topic {requested}; image topics: '
                           f'{", ".join(t.name for t in images) or "none"}')
        if topic.msgtype not in IMAGE_TYPES:
            raise BagError(f'{bag.path}: {topic.name} holds {topic.msgtype}, not an image ({" or ".join(IMAGE_TYPES)})')
        if topic.base_name == FACE_PATCH_TOPIC:
            raise BagError(f'{bag.path}: {topic.name} holds only the face patch, not the camera\'s frames')
        return topic
    if not images:
        listed = ', '.join(f'{t.name} ({t.msgtype})' for t in bag.topics.values()) or 'none'
        raise BagError(f'{bag.path}: no image topic ({" or ".join(IMAGE_TYPES)}); its topics: {listed}')
    cameras = [t for t in images if t.base_name not in DERIVED_IMAGE_TOPICS] or images
    if len(cameras) == 1:
        return cameras[0]
    raw = [t for t in cameras if t.base_name == 'image_raw']
    if len(raw) == 1:
        return raw[0]
    raise BagError(f'{bag.path}: several image topics ({", ".join(t.name for t in cameras)}); choose one with --topic')


def recorded_marks(bag: BagContents) -> list[TrialMark]:
    """The trial events the scorer recorded, in stamp order (empty when the bag has none)."""
    topics = [t.name for t in bag.topics.values() if t.msgtype == TRIAL_EVENT_TYPE]
    store = typestore()
    marks = []
    for message in bag.messages(topics):
        try:
            event = store.deserialize_cdr(bytes(message.data), TRIAL_EVENT_TYPE)
            TrialEventKind(event.event)
        except (SerdeError, ValueError, KeyError, IndexError, AssertionError) as error:
            bag.note(f'{message.topic}: a trial marker that is not a readable {TRIAL_EVENT_TYPE} was left out '
                     f'({str(error) or type(error).__name__}); the trials it marks are not scored as recorded',
                     key=('marker', message.topic))
            continue
        labels = TrialLabels(event.task, event.session_id, event.subject_id)
        marks.append(TrialMark(stamp_to_ns(event.header.stamp), TrialEventKind(event.event), event.trial_id, labels))
    # A transient-local topic can deliver the same event twice (e.g. to a late recorder): order_marks keeps one.
    return order_marks(marks)


def range_marks(ranges: Sequence[TrialRange], first_stamp_ns: int) -> list[TrialMark]:
    marks = []
    for index, trial in enumerate(sorted(ranges, key=lambda r: r.start), start=1):
        trial_id = f'trial-{index:04d}'
        marks += [TrialMark(first_stamp_ns + seconds_to_ns(trial.start), TrialEventKind.START, trial_id),
                  TrialMark(first_stamp_ns + seconds_to_ns(trial.stop), TrialEventKind.STOP, trial_id)]
    for earlier, later in zip(marks[1::2], marks[2::2], strict=False):
        if later.stamp_ns <= earlier.stamp_ns:
            raise ValueError('--trial ranges overlap')
    return marks


class DerivedTopics:
    """The output bag's extra topics: faces, landmarks, region motion, annotated images and scores."""

    def __init__(self, writer: Writer, namespace: str, heatmap_max: float) -> None:
        self._writer = writer
        self._heatmap_max = heatmap_max
        prefix = '/' + namespace.strip('/') + '/' if namespace.strip('/') else '/'
        self.connections: dict[str, Connection] = {
            name: writer.add_connection(prefix + name, msgtype, typestore=typestore())
            for name, msgtype in DERIVED_TOPIC_TYPES.items()}
        self._latest: ScoreResult | None = None

    def frame(self, result: FrameResult, frame_id: str, log_time_ns: int, detector: str) -> None:
        header = Header(stamp=ns_to_stamp(result.frame.stamp_ns), frame_id=frame_id)
        track = result.track
        place = PatchPlace.of(result.patch, result.frame.width, result.frame.height)
        self._write('faces', track_to_msg(track, header, detector, place), log_time_ns)
        self._write('landmarks', landmarks_to_msg(result.landmarks, track, header, place), log_time_ns)
        self._write('region_motion', motion_to_msg(result.motion, header), log_time_ns)
        latest = self._latest
        picture = annotated_frame(result, self._heatmap_max, scores=latest.regions if latest else (),
                                  title=f'{latest.trial_id} (final)' if latest else 'no score yet',
                                  notes=latest.quality.notes if latest else ())
        self._write('annotated', bgr_to_image(picture, header), log_time_ns)

    def score(self, score: ScoreResult, frame_id: str, log_time_ns: int) -> None:
        self._latest = score
        self._write('score', score_to_msg(score, int(ScoreKind.FINAL), frame_id), log_time_ns)

    def _write(self, name: str, msg: object, log_time_ns: int) -> None:
        self._writer.write(self.connections[name], log_time_ns, serialize_message(msg))


@dataclass(frozen=True)
class _BagStep:
    """What the reading thread hands on: the messages read since its last step (to copy, in order) and the usable
    image among them, observed, with its frame id and log time; a last step with no image carries the bag's tail."""

    read: tuple[BagMessage, ...]
    observed: Observation | None = None
    frame_id: str = ''
    log_time_ns: int = 0


def _observed_images(bag: BagContents, image_topic: Topic, report: BagScore, *, keep_read: bool,
                     on_first_stamp: Callable[[int], None], face_trials: TrialController,
                     pipeline: FacePipeline) -> Iterator[_BagStep]:
    """Every usable image in stamp order, decoded and observed (the face side: face_detector's and
    landmark_detector's work live), face_trials applying the marks due before each; keep_read: with every
    message read, for the output bag."""
    store = typestore()
    last_stamp: int | None = None
    read: list[BagMessage] = []
    first_log_ns = -1
    for message in bag.messages(None if keep_read else [image_topic.name]):
        if keep_read:
            read.append(message)
        if message.topic != image_topic.name:
            continue
        if first_log_ns < 0:
            first_log_ns = message.log_time_ns
        report.frames_read += 1
        try:
            image = store.deserialize_cdr(bytes(message.data), image_topic.msgtype)
            stamp = stamp_to_ns(image.header.stamp)
            frame = Frame.from_bgr(image_to_bgr(image), stamp)
        except (ImageConversionError, SerdeError, ValueError, KeyError, IndexError, AssertionError) as error:
            reason = str(error) or type(error).__name__
            if not report.frames_skipped[reason]:
                after = ns_to_seconds(message.log_time_ns - first_log_ns)
                report.problems.append(f'{image_topic.name}: image logged {after:.3f} s after the first '
                                       f'({ns_to_seconds(message.log_time_ns):.3f}) skipped: {reason}')
            report.frames_skipped[reason] += 1
            continue
        if last_stamp is not None and stamp <= last_stamp:
            report.frames_skipped['stamp not after the previous image'] += 1
            continue
        if last_stamp is None:
            on_first_stamp(stamp)
        last_stamp = stamp
        face_trials.before_frame(stamp)
        yield _BagStep(tuple(read), pipeline.observe(frame), image.header.frame_id, message.log_time_ns)
        read = []
    if read:
        yield _BagStep(tuple(read))


def score_bag(bag: BagContents, config: PipelineSettings, *, topic: str | None = None,
              trials: Sequence[TrialRange] = (), use_markers: bool = True, output_bag: Path | None = None,
              output_storage: str = 'mcap', output_namespace: str = 'rescored', heatmap_max: float = 5.0,
              progress: Callable[[int], None] | None = None,
              on_frame: Callable[[FrameResult], None] | None = None, read_ahead: int = READ_AHEAD,
              markers: Sequence[TrialMark] | None = None) -> BagScore:
    """Score the bag's trials; with output_bag, also write the bag again with the results added.

    on_frame sees every frame's result (with its flow map) in stamp order, e.g. for a session report's pictures.
    markers: the trial marks to use in place of the bag's own (e.g. a session's only), in order_marks order.
    A second thread reads and observes up to read_ahead images ahead of the flow. The face side and the flow side
    each take every image in stamp order, as the nodes do live, so the scores do not change; 0: one thread.
    """
    image_topic = pick_image_topic(bag, topic)
    marks = (list(markers) if markers is not None else recorded_marks(bag)) if use_markers and not trials else []
    trials_from = 'ranges' if trials else 'markers' if marks else 'whole bag'
    report = BagScore(bag.path, image_topic.name, trials_from)
    pipeline = FacePipeline(config)
    trials_control = TrialController(TrialScorer(config.scoring, max_trial_seconds=1e9), pipeline.motion)
    face_trials = TrialController(tracker=pipeline.tracker)  # the face side's, in the reading thread, as live

    def schedule(first_stamp_ns: int) -> None:
        """The trial marks, once the first image's stamp is known."""
        due = range_marks(trials, first_stamp_ns) if trials else (
            marks or [TrialMark(first_stamp_ns, TrialEventKind.START, bag.path.stem)])
        _schedule((trials_control, face_trials), due, report, first_stamp_ns)

    writer = create_writer(output_bag, output_storage) if output_bag is not None else None
    derived = copy = None
    try:
        if writer is not None:
            copy = _copier(writer, bag, report)
            derived = DerivedTopics(writer, output_namespace, heatmap_max)
        first = True
        frame_id = ''
        steps = _observed_images(bag, image_topic, report, keep_read=copy is not None, on_first_stamp=schedule,
                                 face_trials=face_trials, pipeline=pipeline)
        with contextlib.closing(run_ahead(steps, read_ahead)) as ahead:
            for step in ahead:
                if copy is not None:
                    for message in step.read:
                        copy(message)
                if step.observed is None:
                    continue
                first = False
                frame_id = step.frame_id
                finals = trials_control.before_frame(step.observed.frame.stamp_ns)
                result = pipeline.measure(step.observed)
                if on_frame is not None:
                    on_frame(result)
                finals += [score for kind, score in trials_control.add(result.motion) if kind == ScoreKind.FINAL]
                report.scores += finals
                if derived is not None:
                    for score in finals:
                        derived.score(score, frame_id, step.log_time_ns)
                    derived.frame(result, frame_id, step.log_time_ns, pipeline.detector.name)
                if progress is not None:
                    progress(1)
        unstopped = 'the bag ends before the trial was stopped; scored up to its last frame'
        finals = trials_control.end_of_stream(unstopped if trials_from != 'whole bag' else '')
        report.scores += finals
        for score in finals:
            if derived is not None:
                derived.score(score, frame_id, report.last_log_time_ns + 1)
        if first:
            why = '; '.join(report.frames_skipped) or '; '.join(bag.problems) or 'none in the bag'
            raise BagError(f'{bag.path}: no usable image on {image_topic.name} ({report.frames_read} read; {why})')
    finally:
        if writer is not None:
            writer.close()
        report.problems[:0] = bag.problems  # what could not be read of the bag comes first
    return report


def _schedule(controllers: Sequence[TrialController], marks: Sequence[TrialMark], report: BagScore,
              first_stamp_ns: int) -> None:
    """Schedule the bag's trial marks on every controller; one that does not fit (a stop without a start) is a
    problem, not an error, said once: the controllers are given the same marks, so they refuse the same ones.

    The problem names the mark's time as --trial ranges count it, from the first image's stamp.
    """
    for mark in marks:
        refused: TrialError | None = None
        for controller in controllers:
            try:
                controller.command(mark)
            except TrialError as error:
                refused = error
        if refused is not None:
            report.problems.append(f'trial marker {ns_to_seconds(mark.stamp_ns - first_stamp_ns):.3f} s after the '
                                   f'first image (stamped {ns_to_seconds(mark.stamp_ns):.3f}) ignored: {refused}')


def _copier(writer: Writer, bag: BagContents, report: BagScore) -> Callable[[BagMessage], None]:
    """A function that copies each message of the bag, unchanged, into the output bag (every topic, even empty)."""
    connections: dict[str, Connection] = {}
    for name, topic in bag.topics.items():
        try:
            connections[name] = add_topic(writer, topic)
        except (WriterError, TypesysError) as error:  # a type neither stored in the bag nor known here
            report.problems.append(f'{name}: not copied to the output bag ({error})')

    def copy(message: BagMessage) -> None:
        report.last_log_time_ns = max(report.last_log_time_ns, message.log_time_ns)
        connection = connections.get(message.topic)
        if connection is not None:
            writer.write(connection, message.log_time_ns, message.data)

    return copy
