"""What every facesym node shares: parameters declared from settings classes, QoS profiles, stamp pairing,
diagnostics.

Parameters are the fields of the settings dataclasses the registry
(facesym_ros.config.registry) names for the node: each is declared with a
descriptor (description, range or choices), checked when the node starts and
whenever it is changed. A change that fails validation is rejected with the
reason, and the node keeps its old values.

Diagnostics (like hri_face_detect's): a node with DiagnosticsSettings publishes
one diagnostic_msgs/DiagnosticStatus, named by its fully qualified node name,
in a DiagnosticArray on /diagnostics every `diagnostics_period`. It holds the
rate and processing time of the frames handled since the last report (frame
callbacks are timed by `timed`, which subscribe_paired applies itself), the
frames that could not be paired by stamp, the images that could not be read,
and whatever the node adds in `diagnostic_values` (face present, model
loaded). The level is ERROR when the mean processing time exceeds
`processing_error_ms`, WARN when it exceeds `processing_warn_ms` or when
frames were dropped or unreadable since the last report, OK otherwise.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from facesym_ros.config.node_settings import DiagnosticsSettings, ExecutorSettings
from facesym_ros.config.registry import DIAGNOSTICS_TOPIC
from facesym_ros.config.registry import node as registered_node
from facesym_ros.core.frame import Frame
from facesym_ros.ros.conversions import ImageConversionError, PatchPlace, image_to_bgr, stamp_to_ns

S = TypeVar('S')
WARN_PERIOD = 5.0
"""Seconds between repeats of the same warning (rclpy throttles per call site)."""
CONTROL_QUEUE_DEPTH = 10
"""Depth of the control and score topics (trial events, scores): a few messages a trial, never a frame stream."""
MATCH_SETTLE_SECONDS = 1.0
"""After a publisher sees its subscribers matched, the time their side takes to match it too (discovery is
two-sided; a best-effort reader drops frames of a writer it has not matched yet). image_source and
`facesym play` wait this long before their first frame."""

# The keys of every node's DiagnosticStatus (values are plain numbers or true/false; n/a when unknown).
KEY_RATE = 'rate (Hz)'
KEY_MEAN_MS = 'processing time mean (ms)'
KEY_MAX_MS = 'processing time max (ms)'
KEY_UNPAIRED = 'frames unpaired'
KEY_UNREADABLE = 'images unreadable'
KEY_FACE = 'face present'
KEY_MODEL = 'model loaded'
NOT_KNOWN = 'n/a'
LEVEL_NAMES = {DiagnosticStatus.OK: 'OK', DiagnosticStatus.WARN: 'WARN', DiagnosticStatus.ERROR: 'ERROR',
               DiagnosticStatus.STALE: 'STALE'}


def yes_no(value: bool | None) -> str:
    """A diagnostic value of a flag: true, false, or n/a before the node knows."""
    return NOT_KNOWN if value is None else str(bool(value)).lower()


def image_qos(depth: int) -> QoSProfile:
    """Sensor-data QoS for images: best effort, keep the newest `depth` frames."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.VOLATILE)


def pipeline_qos(depth: int) -> QoSProfile:
    """Per-frame results (faces, landmarks, region motion): reliable, but bounded to `depth`."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


def latched_qos(depth: int = CONTROL_QUEUE_DEPTH) -> QoSProfile:
    """Scores and trial events: reliable and transient-local, so late subscribers get the latest."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _descriptor(field: dataclasses.Field) -> ParameterDescriptor:
    meta = field.metadata
    descriptor = ParameterDescriptor(name=field.name, description=meta['description'],
                                     read_only=bool(meta.get('read_only')))
    default = field.default
    if meta.get('min') is not None and isinstance(default, float):
        descriptor.floating_point_range = [FloatingPointRange(
            from_value=float(meta['min']), to_value=float(meta['max']), step=0.0)]
    elif meta.get('min') is not None and isinstance(default, int) and not isinstance(default, bool):
        descriptor.integer_range = [IntegerRange(from_value=int(meta['min']), to_value=int(meta['max']), step=1)]
    if meta.get('choices'):
        descriptor.additional_constraints = 'one of: ' + ', '.join(meta['choices'])
    return descriptor


def quiet_after_shutdown(callback: Callable[..., Any], context: Any) -> Callable[..., Any]:
    """The callback, made quiet once `context` is shut down: what it raises then is dropped without a word.

    SIGINT or SIGTERM shuts the context down from the signal handler while a callback may be halfway through a
    frame; its next call into rcl (publish, get_subscription_count) raises "publisher's context is invalid",
    which the executor logs as FATAL with a Python stack. After shutdown nothing the callback does can reach
    anyone, so an exception then is the shutdown itself, not a fault. SIGINT raises KeyboardInterrupt inside
    the callback that runs, before rclpy's own handler may have shut the context down: the callback shuts it
    down itself (the executor loop then ends) and returns. While the context is up every other exception is
    raised as before. The checks run only when the callback raises: nothing per frame.
    """
    @functools.wraps(callback)
    def run(*args: Any) -> Any:
        try:
            return callback(*args)
        except KeyboardInterrupt:  # SIGINT, raised wherever the callback was: the node is to stop
            context.try_shutdown()
            return None
        except Exception:
            if context.ok():
                raise
            return None

    return run


class QuietShutdownNode(Node):
    """A node whose timer, subscription and service callbacks end quietly when the process shuts down (see
    quiet_after_shutdown): Ctrl-C or SIGTERM with frames in flight prints no FATAL line and no stack."""

    def create_subscription(self, msg_type: Any, topic: str, callback: Callable[..., Any], *args: Any,
                            **kwargs: Any) -> Any:
        return super().create_subscription(msg_type, topic, quiet_after_shutdown(callback, self.context), *args,
                                           **kwargs)

    def create_timer(self, timer_period_sec: float, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return super().create_timer(timer_period_sec, quiet_after_shutdown(callback, self.context), *args, **kwargs)

    def create_service(self, srv_type: Any, srv_name: str, callback: Callable[..., Any], *args: Any,
                       **kwargs: Any) -> Any:
        return super().create_service(srv_type, srv_name, quiet_after_shutdown(callback, self.context), *args,
                                      **kwargs)


class SettingsNode(QuietShutdownNode):
    """A node whose parameters are the fields of the settings dataclasses its registry entry names."""

    def __init__(self, node_name: str, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._settings_classes = registered_node(node_name).settings_classes()
        values: dict[str, Any] = {}
        for cls in self._settings_classes:
            for field in dataclasses.fields(cls):
                values[field.name] = self.declare_parameter(field.name, field.default, _descriptor(field)).value
        # rclpy ignores parameters given for this node that it never declares: a misspelt name in a
        # parameter file or on the command line would silently leave the default in place.
        unknown = sorted(name for name in self._parameter_overrides
                         if not self.has_parameter(name) and not name.startswith('qos_overrides.'))
        if unknown:
            raise ValueError(f'{self.get_name()}: unknown parameters {", ".join(unknown)} (this node has '
                             f'{", ".join(sorted(values))})')
        try:
            self._settings = self._build(values)
            self.check_settings(self._settings)
        except ValueError as error:
            raise ValueError(f'{self.get_name()}: invalid parameters: {error}') from None
        self._pending: dict[type, Any] | None = None
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        self._pairers: list[StampPairer] = []
        self._frame_seconds: list[float] = []
        self._unreadable = 0
        self._hardware_id = ''
        self._lost_reported = 0
        self._reported_at = time.monotonic()
        if DiagnosticsSettings in self._settings:
            self._diagnostics_publisher = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC,
                                                                pipeline_qos(CONTROL_QUEUE_DEPTH))
            self.create_timer(self.settings(DiagnosticsSettings).diagnostics_period, self.publish_diagnostics)

    def settings(self, cls: type[S]) -> S:
        """The node's current (validated) settings of one class."""
        return self._settings[cls]

    def check_settings(self, settings: dict[type, Any]) -> None:
        """Node-specific checks beyond ranges (e.g. that a model loads); raise ValueError to reject."""

    def settings_changed(self, previous: dict[type, Any]) -> None:
        """Called after accepted parameter changes; self.settings() already holds the new values."""

    def frame_of(self, image: Any, place: PatchPlace | None = None) -> Frame | None:
        """The core's Frame of an image message, or of a face_patch at its place in the image; None, with a
        warning, for an image it cannot read (counted)."""
        try:
            bgr = image_to_bgr(image)
            if place is None:
                return Frame.from_bgr(bgr, stamp_to_ns(image.header.stamp))
            if place.box is None or bgr.shape[:2] != (place.box.height, place.box.width):
                raise ValueError(f'the face patch is {bgr.shape[1]}x{bgr.shape[0]}, its place {place.box}')
            return Frame.from_bgr(bgr, stamp_to_ns(image.header.stamp), origin=(place.box.x, place.box.y),
                                  image_size=place.image_size)
        except (ImageConversionError, ValueError) as error:
            self._unreadable += 1
            self.get_logger().warning(f'skipping image: {error}', throttle_duration_sec=WARN_PERIOD)
            return None

    # -- diagnostics ----------------------------------------------------------------------------------------------

    def timed(self, callback: Callable[..., None]) -> Callable[..., None]:
        """A frame callback whose calls count as processed frames in the diagnostics, with their time.

        A call in which frame_of could not read the image counts as unreadable instead.
        """
        @functools.wraps(callback)
        def run(*msgs: Any) -> None:
            started, unreadable = time.perf_counter(), self._unreadable
            callback(*msgs)
            if self._unreadable == unreadable:
                self.record_frame(time.perf_counter() - started, getattr(msgs[0], 'header', None))

        return run

    def record_frame(self, seconds: float, header: Any = None) -> None:
        """Count one processed frame that took `seconds`; its header's frame_id is the hardware id reported."""
        self._frame_seconds.append(seconds)
        if header is not None:
            self._hardware_id = header.frame_id

    def diagnostic_values(self) -> list[tuple[str, str]]:
        """Node-specific (key, value) pairs of the status, e.g. (KEY_FACE, yes_no(...)); none by default."""
        return []

    def diagnostic_status(self) -> DiagnosticStatus:
        """The node's status over the frames since the last call; starts the next period."""
        now = time.monotonic()
        elapsed, self._reported_at = max(now - self._reported_at, 1e-9), now
        seconds, self._frame_seconds = self._frame_seconds, []
        unpaired = sum(pairer.unpaired for pairer in self._pairers)
        lost, self._lost_reported = unpaired + self._unreadable - self._lost_reported, unpaired + self._unreadable
        mean_ms = 1000.0 * sum(seconds) / len(seconds) if seconds else None
        max_ms = 1000.0 * max(seconds) if seconds else None
        settings = self.settings(DiagnosticsSettings)
        level, problems = DiagnosticStatus.OK, []
        if mean_ms is not None and mean_ms > settings.processing_error_ms:
            level = DiagnosticStatus.ERROR
            problems.append(f'processing time {mean_ms:.1f} ms > error threshold {settings.processing_error_ms:g} ms')
        elif mean_ms is not None and mean_ms > settings.processing_warn_ms:
            level = DiagnosticStatus.WARN
            problems.append(f'processing time {mean_ms:.1f} ms > warn threshold {settings.processing_warn_ms:g} ms')
        if lost:
            level = max(level, DiagnosticStatus.WARN)
            problems.append(f'{lost} frames dropped or unreadable')
        message = '; '.join(problems) or ('ok' if seconds else 'no frames')

        def number(value: float | None) -> str:
            return NOT_KNOWN if value is None else f'{value:.2f}'

        values = [(KEY_RATE, number(len(seconds) / elapsed)), (KEY_MEAN_MS, number(mean_ms)),
                  (KEY_MAX_MS, number(max_ms)), (KEY_UNPAIRED, str(unpaired)),
                  (KEY_UNREADABLE, str(self._unreadable)), *self.diagnostic_values()]
        return DiagnosticStatus(level=level, name=self.get_fully_qualified_name(), message=message,
                                hardware_id=self._hardware_id,
                                values=[KeyValue(key=key, value=value) for key, value in values])

    def publish_diagnostics(self) -> None:
        array = DiagnosticArray(status=[self.diagnostic_status()])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_publisher.publish(array)

    def subscribe_paired(self, streams: Sequence[tuple[type, str, QoSProfile]], callback: Callable[..., None],
                         depth: int) -> StampPairer:
        """Subscribe to several topics and call callback(*messages) with the messages of one header stamp.

        A message that cannot be paired is dropped, counted in the returned pairer's `unpaired` (and in the
        diagnostics) and warned of. The callback is `timed`.
        """
        pairer = StampPairer(len(streams), depth)
        self._pairers.append(pairer)
        callback = self.timed(callback)
        topics = '/'.join(topic for _, topic, _ in streams)

        def add(stream: int, msg: Any) -> None:
            unpaired = pairer.unpaired
            pair = pairer.add(stream, stamp_to_ns(msg.header.stamp), msg)
            if pairer.unpaired > unpaired:
                self.get_logger().warning(f'{pairer.unpaired} {topics} messages could not be paired by stamp',
                                          throttle_duration_sec=WARN_PERIOD)
            if pair is not None:
                callback(*pair)

        for index, (msg_type, topic, qos) in enumerate(streams):
            self.create_subscription(msg_type, topic, lambda msg, index=index: add(index, msg), qos)
        return pairer

    def _build(self, values: dict[str, Any]) -> dict[type, Any]:
        built = {}
        for cls in self._settings_classes:
            names = {field.name for field in dataclasses.fields(cls)}
            built[cls] = cls(**{name: value for name, value in values.items() if name in names})
        return built

    def _current_values(self) -> dict[str, Any]:
        return {name: value for settings in self._settings.values()
                for name, value in dataclasses.asdict(settings).items()}

    def _validate_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        values = self._current_values()
        ours = [p for p in parameters if p.name in values]
        if not ours:
            return SetParametersResult(successful=True)
        values.update({p.name: p.value for p in ours})
        try:
            candidate = self._build(values)
            self.check_settings(candidate)
        except (ValueError, TypeError) as error:
            reason = f'rejected {", ".join(p.name for p in ours)}: {error}'
            self.get_logger().warning(reason)
            return SetParametersResult(successful=False, reason=reason)
        self._pending = candidate
        return SetParametersResult(successful=True)

    def _apply_parameters(self, parameters: list[Parameter]) -> None:
        if self._pending is None:
            return
        previous, self._settings, self._pending = self._settings, self._pending, None
        self.settings_changed(previous)


class StampPairer:
    """Exact-time pairing of several message streams by header stamp, with bounded buffers.

    Items wait until every stream has delivered the same stamp. An item that
    can no longer be paired (a newer stamp was paired, or its buffer is full)
    is dropped and counted in `unpaired`, never guessed.
    """

    def __init__(self, streams: int, capacity: int) -> None:
        self._buffers: list[OrderedDict[int, Any]] = [OrderedDict() for _ in range(streams)]
        self.capacity = capacity
        self.unpaired = 0

    def add(self, stream: int, stamp_ns: int, item: Any) -> tuple[Any, ...] | None:
        buffer = self._buffers[stream]
        buffer[stamp_ns] = item
        while len(buffer) > self.capacity:
            buffer.popitem(last=False)
            self.unpaired += 1
        if not all(stamp_ns in other for other in self._buffers):
            return None
        matched = tuple(other.pop(stamp_ns) for other in self._buffers)
        for other in self._buffers:
            for older in [stamp for stamp in other if stamp < stamp_ns]:
                del other[older]
                self.unpaired += 1
        return matched

    def clear(self) -> None:
        for buffer in self._buffers:
            buffer.clear()


EVENTS_WAKE_SECONDS = 0.5
"""The events executor's longest sleep between checks that the process is shutting down."""


def events_executor(context=None):
    """rclpy's EventsExecutor (about half the CPU per message of SingleThreadedExecutor), for a process that
    turns it with spin_once; SingleThreadedExecutor with an rclpy that has none."""
    try:
        from rclpy.experimental import EventsExecutor
    except ImportError:
        from rclpy.executors import SingleThreadedExecutor

        return SingleThreadedExecutor(context=context)
    return EventsExecutor(context=context)


def spin(node: Node, executor_name: str) -> None:
    """Run the node's callbacks on the named executor until the context shuts down.

    events is rclpy.experimental.EventsExecutor, turned by spin_once in a loop: its own spin() runs no
    callback with the rclpy of these wheels (9.1.2), while spin_once runs timers, subscriptions, services and
    parameter services alike (test_executor.py).
    """
    import rclpy

    try:
        from rclpy.experimental import EventsExecutor
    except ImportError:  # an rclpy without it
        if executor_name != 'single_threaded':
            node.get_logger().warning('this rclpy has no EventsExecutor: running on rclpy.spin '
                                      '(executor: single_threaded)')
        executor_name = 'single_threaded'
    if executor_name == 'single_threaded':
        rclpy.spin(node)
        return

    executor = EventsExecutor(context=node.context)
    executor.add_node(node)
    try:
        while node.context.ok():
            executor.spin_once(timeout_sec=EVENTS_WAKE_SECONDS)
    finally:
        executor.shutdown()


def use_opencv_threads(threads: int) -> None:
    """OpenCV's worker threads for this process (ExecutorSettings.opencv_threads; 0: OpenCV's default)."""
    import cv2

    cv2.setNumThreads(threads if threads > 0 else -1)


def spin_node(node_class: type[Node], args: Sequence[str] | None = None) -> int:
    """Run one node until Ctrl-C or SIGTERM; a node that cannot start reports why and exits 1."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    from facesym_ros.ros.bringup import die_with_parent

    die_with_parent()
    rclpy.init(args=args)
    node = None
    try:
        node = node_class()
        use_opencv_threads(node.settings(ExecutorSettings).opencv_threads)
        spin(node, node.settings(ExecutorSettings).executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        if rclpy.ok():
            raise  # a real error; during shutdown rclpy's calls may fail and that is fine
    except (ValueError, FileNotFoundError) as error:
        print(f'{node_class.__name__}: {error}', file=sys.stderr)
        return 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
