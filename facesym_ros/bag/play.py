"""Playing a bag: publish a bag's messages onto their topics again, to run the live graph on a recorded session.

Messages go out as they were stored (serialised bytes, no re-encoding), in
log-time order, at the recorded rate or a multiple of it, with the QoS their
publishers offered when recorded. `--step` plays lock-step with the graph:
after each image, it waits until the graph has published its result for it
(one message on the step topic, region_motion by default), so no frame is
dropped however slow the machine; a frame the graph never answers is
reported and playing goes on after --step-timeout.

`--clock HZ` also publishes the bag's time on /clock (rosgraph_msgs/Clock),
for nodes with use_sim_time: the log time of each message just before the
message goes out, and in between, HZ times a second, the log time the
playback has reached (with --step, only the messages' log times: the bag's
time stands still while the graph works).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from facesym_ros.bag.storage import IMAGE_TYPES, BagContents, BagError, Topic
from facesym_ros.ros.conversions import message_class, ns_to_stamp
from facesym_ros.ros.node_base import MATCH_SETTLE_SECONDS
from facesym_ros.ros.signals import StopSignals

PLAY_DEPTH = 100
CLOCK_TOPIC = '/clock'
DEFAULT_CLOCK_HZ = 40.0
"""/clock ticks a second between messages for --clock without a rate (as `ros2 bag play --clock`)."""


class ClockPublisher:
    """Publishes the bag's time on /clock: at every message, and between messages at most `hz` times a second."""

    def __init__(self, node: Node, hz: float) -> None:
        if not hz > 0:
            raise ValueError(f'--clock takes a positive rate in Hz, got {hz:g}')
        self._publisher = node.create_publisher(Clock, CLOCK_TOPIC, QoSProfile(depth=1))
        self._period = 1.0 / hz
        self._last_wall = -float('inf')
        self.last_ns: int | None = None
        self.published = 0

    def publish(self, bag_time_ns: int) -> None:
        if self.last_ns is not None and bag_time_ns < self.last_ns:
            return  # the bag's time never runs backwards
        self._publisher.publish(Clock(clock=ns_to_stamp(bag_time_ns)))
        self.last_ns = bag_time_ns
        self._last_wall = time.monotonic()
        self.published += 1

    def tick(self, bag_time_ns: int) -> None:
        if time.monotonic() - self._last_wall >= self._period:
            self.publish(bag_time_ns)


def publisher_qos(topic: Topic) -> QoSProfile:
    """The recorded publishers' reliability and durability (reliable and volatile when none were stored)."""
    offered = topic.offered_qos_profiles
    best_effort = any(q.reliability.value == ReliabilityPolicy.BEST_EFFORT.value for q in offered)
    latched = bool(offered) and all(q.durability.value == DurabilityPolicy.TRANSIENT_LOCAL.value for q in offered)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=PLAY_DEPTH,
                      reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


def parse_remaps(remaps: Sequence[str]) -> dict[str, str]:
    """FROM:=TO pairs, names compared without their leading slash."""
    mapping = {}
    for remap in remaps:
        source, separator, target = remap.partition(':=')
        if not separator or not source.strip('/') or not target.strip('/'):
            raise ValueError(f'--remap takes FROM:=TO, got {remap!r}')
        mapping[source.strip('/')] = target.strip('/')
    return mapping


class BagPlayerNode(Node):
    """Publishes the chosen topics of a bag; counts what the step topic answers."""

    def __init__(self, bag: BagContents, topics: Sequence[str], remaps: dict[str, str], step_topic: str | None,
                 **kwargs) -> None:
        super().__init__('facesym_player', **kwargs)
        self.bag = bag
        self.publishers_by_topic = {}
        for name in topics:
            topic = bag.topics[name]
            target = remaps.get(name.strip('/'), name.lstrip('/'))
            try:
                cls = message_class(topic.msgtype)
            except (ImportError, AttributeError, ValueError):
                print(f'facesym play: skipping {name}: its type {topic.msgtype} is not installed here',
                      file=sys.stderr)
                continue
            self.publishers_by_topic[name] = self.create_publisher(cls, target, publisher_qos(topic))
        self.answers = 0
        self.step_topic = step_topic
        self._step_subscription = None

    def ready_to_step(self) -> bool:
        """Subscribed to the step topic (once discovery shows its type) and matched with a publisher of it, so
        that the answer to the first image is heard too; or not stepping."""
        if self.step_topic is None:
            return True
        if self._step_subscription is None:
            types = dict(self.get_topic_names_and_types()).get(self.resolve_topic_name(self.step_topic))
            if types:
                self._step_subscription = self.create_subscription(
                    message_class(types[0]), self.step_topic, self._on_answer,
                    QoSProfile(depth=PLAY_DEPTH, reliability=ReliabilityPolicy.BEST_EFFORT), raw=True)
        return self._step_subscription is not None and self._step_subscription.get_publisher_count() > 0

    def _on_answer(self, _data: bytes) -> None:
        self.answers += 1

    def unsubscribed(self) -> list[str]:
        return [pub.topic_name for pub in self.publishers_by_topic.values() if pub.get_subscription_count() == 0]

    def match_counts(self) -> tuple[tuple[int, int], ...]:
        """Per topic, the subscriptions matched with our publisher and those the ROS graph knows of; and the
        publishers matched with the step topic's subscription and those the graph knows of."""
        counts = [(pub.get_subscription_count(), self.count_subscribers(pub.topic_name))
                  for pub in self.publishers_by_topic.values()]
        if self._step_subscription is not None:
            step = self._step_subscription
            counts.append((step.get_publisher_count(), self.count_publishers(step.topic_name)))
        return tuple(counts)


class MatchSettler:
    """True once every subscription the graph shows is matched and no count has changed for `settle` seconds.

    A topic often has several subscribers (the camera's frames go to face_detector, the annotator and a
    recorder); they match one by one, and a subscriber only takes messages once its side has matched too, so
    the wait restarts at every change.
    """

    def __init__(self, node: BagPlayerNode, settle: float) -> None:
        self._node, self._settle = node, settle
        self._counts: tuple[tuple[int, int], ...] | None = None
        self._since = 0.0

    def __call__(self) -> bool:
        counts = self._node.match_counts()
        if counts != self._counts:
            self._counts, self._since = counts, time.monotonic()
        all_matched = all(matched >= known for matched, known in counts)
        return all_matched and time.monotonic() - self._since >= self._settle


def play(bag: BagContents, topics: Sequence[str], *, rate: float = 1.0, step_topic: str | None = None,
         step_timeout: float = 10.0, remaps: dict[str, str] | None = None, wait_for_subscribers: float = 10.0,
         clock_hz: float | None = None, context=None) -> dict[str, int]:
    """Publish the topics' messages in log-time order; return how many went out per topic (and unanswered steps).

    With clock_hz, the bag's time goes out on /clock too (see the module's description).
    """
    from rclpy.executors import SingleThreadedExecutor

    node = BagPlayerNode(bag, topics, remaps or {}, step_topic, context=context)
    clock = ClockPublisher(node, clock_hz) if clock_hz is not None else None
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    signals = StopSignals().install()  # Ctrl-C stops the playback between spins: see facesym_ros/ros/signals.py

    def spin_until(done, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() >= deadline:
                return False
            if signals.take():
                raise KeyboardInterrupt
            executor.spin_once(timeout_sec=0.005)
        return True

    try:
        if not spin_until(node.ready_to_step, wait_for_subscribers):
            raise BagError(f'--step: nothing is published on {step_topic} after {wait_for_subscribers:g} s; '
                           'is the graph running?')
        if not spin_until(lambda: not node.unsubscribed(), wait_for_subscribers):
            print(f'facesym play: no subscriber on {", ".join(node.unsubscribed())}; playing anyway',
                  file=sys.stderr)
        # let every subscription match (theirs too); late ones are played to anyway, as before
        spin_until(MatchSettler(node, MATCH_SETTLE_SECONDS), wait_for_subscribers)
        images = {name for name in topics if bag.topics[name].msgtype in IMAGE_TYPES}
        counts = dict.fromkeys(topics, 0)
        counts['unanswered steps'] = 0
        first_log = wall_start = None
        for message in bag.messages(node.publishers_by_topic):
            if first_log is None:
                first_log, wall_start = message.log_time_ns, time.monotonic()
            if step_topic is None and rate > 0:
                due = wall_start + (message.log_time_ns - first_log) / 1e9 / rate

                def reached(due=due, log_time_ns=message.log_time_ns) -> bool:
                    now = time.monotonic()
                    if clock is not None:  # the bag's time the playback has reached
                        clock.tick(log_time_ns - round(max(0.0, due - now) * rate * 1e9))
                    return now >= due

                spin_until(reached, max(0.0, due - time.monotonic()) + 1.0)
            if clock is not None:
                clock.publish(message.log_time_ns)
            answers = node.answers
            node.publishers_by_topic[message.topic].publish(bytes(message.data))
            counts[message.topic] += 1
            stepped = step_topic is not None and message.topic in images
            if stepped and not spin_until(lambda answers=answers: node.answers > answers, step_timeout):
                counts['unanswered steps'] += 1
                print(f'facesym play: no {step_topic} for image {counts[message.topic]} of {message.topic}, '
                      f'logged at {message.log_time_ns / 1e9:.3f} s, '
                      f'within {step_timeout:g} s', file=sys.stderr)
        spin_until(lambda: False, 0.2)
        if clock is not None:
            counts[CLOCK_TOPIC] = clock.published
        return counts
    finally:
        signals.restore()
        executor.remove_node(node)
        node.destroy_node()
