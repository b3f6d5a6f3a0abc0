"""Recording live topics into a rosbag2 bag (MCAP by default, sqlite3 on request).

Messages are written as they arrive, serialised as they came off the wire
(rclpy's raw subscriptions), with the message definitions of every type,
this package's included, so the bag opens without facesym_ros installed.
A topic is subscribed once a publisher offers it, with QoS matching what its
publishers offer (as rosbag2 does): best effort if any of them is, transient
local only if all are. The bag is flushed to disk every second, and Ctrl-C
or SIGTERM closes it cleanly after taking what the middleware already holds.
A write that fails (a full disk) stops the recording at once: the bag keeps
what was flushed before, without a metadata.yaml that would claim more, and
the command ends with one line saying so (exit status 2).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.topic_endpoint_info import TopicEndpointInfo
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import WriterError
from rosbags.typesys import TypesysError

from facesym_ros.bag.storage import BagWriteError, BagWriter, create_writer, typestore
from facesym_ros.ros.conversions import message_class
from facesym_ros.ros.signals import StopSignals

# What a session needs to be scored again and reviewed (the drawn images can be made again by score-bag).
DEFAULT_TOPICS = ('image_raw', 'camera_info', 'faces', 'landmarks', 'region_motion', 'score', 'score_running',
                  'trial_events', 'prompt', 'session_info')
RECORD_DEPTH = 100
FLUSH_PERIOD = 1.0
DISCOVERY_PERIOD = 0.2


def _bag_qos(info: TopicEndpointInfo) -> Qos:
    profile = info.qos_profile
    def qos_time(duration) -> QosTime:
        nanoseconds = duration.nanoseconds
        return QosTime(sec=nanoseconds // 1_000_000_000, nsec=nanoseconds % 1_000_000_000)

    return Qos(history=QosHistory(int(profile.history)), depth=int(profile.depth),
               reliability=QosReliability(int(profile.reliability)),
               durability=QosDurability(int(profile.durability)), deadline=qos_time(profile.deadline),
               lifespan=qos_time(profile.lifespan), liveliness=QosLiveliness(int(profile.liveliness)),
               liveliness_lease_duration=qos_time(profile.liveliness_lease_duration),
               avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions))


def subscription_qos(publishers: Sequence[TopicEndpointInfo]) -> QoSProfile:
    """A profile that matches every publisher and gets latched messages where they all latch."""
    reliable = all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in publishers)
    latched = all(p.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in publishers)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=RECORD_DEPTH,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


class BagRecorderNode(Node):
    """Subscribes to the chosen topics as their publishers appear and writes every message to the bag."""

    def __init__(self, writer: BagWriter, topics: Sequence[str] | None, *,
                 keep: Mapping[str, Callable[[bytes], bool]] | None = None, **kwargs) -> None:
        """keep: per topic (a name as in `topics`), which of its serialised messages to record (e.g. a
        session's own trial events); the others are not written."""
        super().__init__('facesym_recorder', **kwargs)
        self._writer = writer
        self._wanted = None if topics is None else {self.resolve_topic_name(t) for t in topics}
        self._keep = {self.resolve_topic_name(name): accept for name, accept in (keep or {}).items()}
        self._subscribed: set[str] = set()
        self._skipped: set[str] = set()
        self.counts: dict[str, int] = {}
        self.failure: BagWriteError | None = None  # the write that stopped the recording
        self.create_timer(DISCOVERY_PERIOD, self._discover)
        self.create_timer(FLUSH_PERIOD, lambda: self._guarded(self._writer.flush))
        self._discover()

    def _guarded(self, call, *args) -> bool:
        """Run a writer call; a failure is kept (it ends the recording) rather than raised in the executor."""
        if self.failure is not None:
            return False
        try:
            call(*args)
        except BagWriteError as error:
            self.failure = error
            return False
        return True

    def _discover(self) -> None:
        for name, types in self.get_topic_names_and_types():
            if name in self._subscribed or name in self._skipped:
                continue
            if self._wanted is not None and name not in self._wanted:
                continue
            publishers = self.get_publishers_info_by_topic(name)
            if not publishers:
                continue  # wait for a publisher: only then is its QoS known
            self._subscribe(name, types[0], publishers)

    def _subscribe(self, name: str, msgtype: str, publishers: list[TopicEndpointInfo]) -> None:
        if self.failure is not None:
            return
        try:
            cls = message_class(msgtype)
            connection = self._writer.add_connection(
                name, msgtype, typestore=typestore(), offered_qos_profiles=[_bag_qos(p) for p in publishers])
        except BagWriteError as error:
            self.failure = error
            return
        except (ImportError, AttributeError, ValueError, WriterError, TypesysError) as error:
            # a type this environment cannot load or describe: skipped, loudly
            self._skipped.add(name)
            self.get_logger().error(f'not recording {name} ({msgtype}): {error}')
            return

        accept = self._keep.get(name)

        def write(data: bytes) -> None:
            if accept is not None and not accept(data):
                return
            if self._guarded(self._writer.write, connection, self.get_clock().now().nanoseconds, data):
                self.counts[name] += 1

        self.counts[name] = 0
        self.create_subscription(cls, name, write, subscription_qos(publishers), raw=True)
        self._subscribed.add(name)
        print(f'recording {name} ({msgtype})', flush=True)

    @property
    def waiting_for(self) -> list[str]:
        return sorted((self._wanted or set()) - self._subscribed - self._skipped)


def record(output: Path, topics: Sequence[str] | None, storage: str, duration: float | None = None) -> dict[str, int]:
    """Record until Ctrl-C, SIGTERM or `duration` seconds; return the message count per topic.

    Raises BagWriteError if the bag could not be written (a full disk): the
    recording stops there, and the bag keeps what was flushed before.
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    writer = create_writer(output, storage)
    stop = StopSignals().install()
    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = BagRecorderNode(writer, topics)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        if node.waiting_for:
            print(f'waiting for publishers of {", ".join(node.waiting_for)}', flush=True)
        deadline = None if duration is None else time.monotonic() + duration
        while not stop.count and node.failure is None and (deadline is None or time.monotonic() < deadline):
            executor.spin_once(timeout_sec=0.05)
        # Take what the middleware received before the signal, then close the bag.
        drain_until = time.monotonic() + 0.5
        while node.failure is None and time.monotonic() < drain_until:
            executor.spin_once(timeout_sec=0.01)
        if node.failure is not None:
            raise node.failure
        return dict(node.counts)
    finally:
        try:
            writer.close()  # after a failed write, already closed; a close that fails raises BagWriteError
        finally:
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown()
            stop.restore()

