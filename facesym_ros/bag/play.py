"""Playing a bag: publish a bag's messages onto their topics again, to run the live graph on a recorded session.

Messages go out as they were stored (serialised bytes, no re-encoding), in
log-time order, at the recorded rate or a multiple of it, with the QoS their
publishers offered when recorded. `--step` plays lock-step with the graph:
after each image, it waits until the graph has published its result for it
(one message on the step topic, region_motion by default), so no frame is
dropped however slow the machine; a frame the graph never answers is
reported and playing goes on after --step-timeout.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from facesym_ros.bag.storage import IMAGE_TYPES, BagContents, BagError, Topic
from facesym_ros.ros.conversions import message_class

PLAY_DEPTH = 100


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
        self._step_subscribed = step_topic is None

    def ready_to_step(self) -> bool:
        """Subscribed to the step topic (once discovery shows its type), or not stepping."""
        if not self._step_subscribed:
            types = dict(self.get_topic_names_and_types()).get(self.resolve_topic_name(self.step_topic))
            if types:
                self.create_subscription(message_class(types[0]), self.step_topic, self._on_answer,
                                         QoSProfile(depth=PLAY_DEPTH, reliability=ReliabilityPolicy.BEST_EFFORT),
                                         raw=True)
                self._step_subscribed = True
        return self._step_subscribed

    def _on_answer(self, _data: bytes) -> None:
        self.answers += 1

    def unsubscribed(self) -> list[str]:
        return [pub.topic_name for pub in self.publishers_by_topic.values() if pub.get_subscription_count() == 0]


def play(bag: BagContents, topics: Sequence[str], *, rate: float = 1.0, step_topic: str | None = None,
         step_timeout: float = 10.0, remaps: dict[str, str] | None = None, wait_for_subscribers: float = 10.0,
         context=None) -> dict[str, int]:
    """Publish the topics' messages in log-time order; return how many went out per topic (and unanswered steps)."""
    from rclpy.executors import SingleThreadedExecutor

    node = BagPlayerNode(bag, topics, remaps or {}, step_topic, context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)

    def spin_until(done, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() >= deadline:
                return False
            executor.spin_once(timeout_sec=0.005)
        return True

    try:
        if not spin_until(node.ready_to_step, wait_for_subscribers):
            raise BagError(f'--step: nothing is published on {step_topic} after {wait_for_subscribers:g} s; '
                           'is the graph running?')
        if not spin_until(lambda: not node.unsubscribed(), wait_for_subscribers):
            print(f'facesym play: no subscriber on {", ".join(node.unsubscribed())}; playing anyway',
                  file=sys.stderr)
        spin_until(lambda: False, 0.3)  # let the publishers match the subscriptions discovery reported
        images = {name for name in topics if bag.topics[name].msgtype in IMAGE_TYPES}
        counts = dict.fromkeys(topics, 0)
        counts['unanswered steps'] = 0
        first_log = wall_start = None
        for message in bag.messages(node.publishers_by_topic):
            if first_log is None:
                first_log, wall_start = message.log_time_ns, time.monotonic()
            if step_topic is None and rate > 0:
                due = wall_start + (message.log_time_ns - first_log) / 1e9 / rate
                spin_until(lambda due=due: time.monotonic() >= due, max(0.0, due - time.monotonic()) + 1.0)
            answers = node.answers
            node.publishers_by_topic[message.topic].publish(bytes(message.data))
            counts[message.topic] += 1
            stepped = step_topic is not None and message.topic in images
            if stepped and not spin_until(lambda answers=answers: node.answers > answers, step_timeout):
                counts['unanswered steps'] += 1
                print(f'facesym play: no {step_topic} for the image at {message.log_time_ns / 1e9:.3f} s '
                      f'within {step_timeout:g} s', file=sys.stderr)
        spin_until(lambda: False, 0.2)
        return counts
    finally:
        executor.remove_node(node)
        node.destroy_node()
