"""A client of the live graph: waits until it is connected, drives trials, collects what it publishes.

The demo, the integration tests and the live benchmark use it. Trial ids
come from the TrialEvent the scorer publishes when it starts a trial.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from facesym_ros.config.registry import SOURCE_NODE, NodeSpec, internal_subscriptions
from facesym_ros.msg import RegionMotion, SymmetryScore, TrialEvent
from facesym_ros.ros.bringup import ProcessGraph
from facesym_ros.ros.conversions import ns_to_stamp, stamp_to_ns
from facesym_ros.ros.node_base import CONTROL_QUEUE_DEPTH, latched_qos, pipeline_qos

SETTLE_SECONDS = 0.5


class GraphClient(Node):
    """Drives and observes a running facesym graph."""

    def __init__(self, namespace: str = '', name: str = 'facesym_client', context=None) -> None:
        super().__init__(name, namespace=namespace, context=context)
        self.final_scores: list[SymmetryScore] = []
        self.running_scores: list[SymmetryScore] = []
        self.running_received_at: list[float] = []
        self.motion_stamps: list[int] = []
        self.motion_received_at: list[float] = []
        self.trial_events: list[TrialEvent] = []
        self.trial_start_ns: int | None = None  # the START stamp of the last start_trial
        self.on_score: Callable[[SymmetryScore], None] | None = None
        self.create_subscription(SymmetryScore, 'score', self._on_final, latched_qos())
        self.create_subscription(SymmetryScore, 'score_running', self._on_running, pipeline_qos(50))
        self.create_subscription(RegionMotion, 'region_motion', self._on_motion, pipeline_qos(200))
        # Volatile: only events after this client joined, never a latched one of an earlier trial.
        self.create_subscription(TrialEvent, 'trial_events', self.trial_events.append,
                                 pipeline_qos(CONTROL_QUEUE_DEPTH))
        self._trigger_clients = {name: self.create_client(Trigger, name)
                                 for name in ('start_trial', 'stop_trial', 'reset')}
        self._control_publisher = self.create_publisher(TrialEvent, 'trial_control', pipeline_qos(CONTROL_QUEUE_DEPTH))
        self._executor = SingleThreadedExecutor(context=context)
        self._executor.add_node(self)

    def _on_final(self, msg: SymmetryScore) -> None:
        self.final_scores.append(msg)
        if self.on_score:
            self.on_score(msg)

    def _on_running(self, msg: SymmetryScore) -> None:
        self.running_scores.append(msg)
        self.running_received_at.append(time.time())
        if self.on_score:
            self.on_score(msg)

    def _on_motion(self, msg: RegionMotion) -> None:
        self.motion_stamps.append(stamp_to_ns(msg.header.stamp))
        self.motion_received_at.append(time.time())

    def spin_until(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                return False
            self._executor.spin_once(timeout_sec=0.02)
        return True

    def graph_connected(self, connections: dict[str, int]) -> bool:
        return (all(client.service_is_ready() for client in self._trigger_clients.values())
                and all(self.count_subscribers(topic) >= count for topic, count in connections.items()))

    def wait_for_graph(self, nodes: Sequence[NodeSpec], timeout: float = 60.0) -> None:
        """Wait until these nodes have made their subscriptions to each other (and the scorer serves)."""
        connections = internal_subscriptions(nodes)
        if not self.spin_until(lambda: self.graph_connected(connections), timeout):
            counts = {topic: self.count_subscribers(topic) for topic in connections}
            raise TimeoutError(f'the facesym graph did not come up within {timeout:g} s (subscribers: {counts}, '
                               f'needed: {connections})')
        # Discovery saw every subscription; give the publishers a moment to match them too.
        self.spin_until(lambda: False, SETTLE_SECONDS)

    def start_trial(self, timeout: float = 10.0) -> str:
        """Start a trial, counting frames from now on; its id, from the scorer's START event."""
        self.motion_stamps.clear()
        self.motion_received_at.clear()
        known = len(self.trial_events)
        self._expect(self.trigger('start_trial'))
        event = self._event_after(known, TrialEvent.START, timeout)
        self.trial_start_ns = stamp_to_ns(event.header.stamp)
        return event.trial_id

    def trial_frames_seen(self) -> int:
        """Frames of region_motion heard that are stamped at or after the last start_trial's START.

        A lagging chain still delivers frames stamped before the START after start_trial returns: counting
        every frame heard since then overstates how much of the trial has been seen.
        """
        start = self.trial_start_ns
        return 0 if start is None else sum(stamp >= start for stamp in self.motion_stamps)

    def stop_trial(self, timeout: float = 10.0, stamp_ns: int | None = None) -> str:
        """Stop the running trial now (stop_trial service), or at stamp_ns (a TrialEvent on trial_control: the
        trial ends with the frame of that stamp, e.g. the last of a source that has ended); its id, from the
        scorer's STOP event."""
        known = len(self.trial_events)
        if stamp_ns is None:
            self._expect(self.trigger('stop_trial'))
        else:
            if not self.spin_until(lambda: self._control_publisher.get_subscription_count() > 0, timeout):
                raise TimeoutError(f'no scorer subscribes to trial_control within {timeout:g} s')
            self._control_publisher.publish(TrialEvent(header=Header(stamp=ns_to_stamp(stamp_ns)),
                                                       event=TrialEvent.STOP))
        return self._event_after(known, TrialEvent.STOP, timeout).trial_id

    @staticmethod
    def _expect(response: Trigger.Response) -> None:
        if not response.success:
            raise RuntimeError(f'the scorer refused: {response.message}')

    def _event_after(self, known: int, event: int, timeout: float) -> TrialEvent:
        def arrived() -> bool:
            return any(e.event == event for e in self.trial_events[known:])

        if not self.spin_until(arrived, timeout):
            raise TimeoutError(f'no trial event {event} within {timeout:g} s')
        return next(e for e in self.trial_events[known:] if e.event == event)

    def trigger(self, service: str, timeout: float = 10.0) -> Trigger.Response:
        future = self._trigger_clients[service].call_async(Trigger.Request())
        if not self.spin_until(future.done, timeout):
            raise TimeoutError(f'{service} did not answer within {timeout:g} s')
        return future.result()

    def wait_for_final(self, trial_id: str, timeout: float = 30.0) -> SymmetryScore:
        def arrived() -> bool:
            return any(score.trial_id == trial_id for score in self.final_scores)

        if not self.spin_until(arrived, timeout):
            raise TimeoutError(f'no final score for {trial_id} within {timeout:g} s')
        return next(score for score in self.final_scores if score.trial_id == trial_id)

    def wait_for_frames(self, count: int | None, timeout: float, idle: float = 3.0) -> int:
        """Spin until `count` region-motion messages arrived, or none for `idle` s after the first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if count is not None and len(self.motion_received_at) >= count:
                break
            if self.motion_received_at and time.time() - self.motion_received_at[-1] > idle:
                break
            self._executor.spin_once(timeout_sec=0.02)
        return len(self.motion_stamps)

    def close(self) -> None:
        self._executor.remove_node(self)
        self.destroy_node()


def run_source_trial(graph: ProcessGraph, client: GraphClient, expected_frames: int | None,
                     timeout: float = 120.0) -> SymmetryScore:
    """One trial over everything image_source publishes: the graph without the source is started (if it is
    not running), the trial started, the source started, and once its frames are through the trial is stopped
    at the last one (the source has ended: a stop stamped later would leave time without frames in the trial)."""
    chain = [spec for spec in graph.specs if spec.name != SOURCE_NODE]
    graph.start([spec.name for spec in chain])
    client.wait_for_graph(chain, timeout=timeout)
    trial = client.start_trial()
    graph.start([SOURCE_NODE])
    client.wait_for_frames(expected_frames, timeout=timeout)
    client.stop_trial(stamp_ns=max(client.motion_stamps, default=None))
    return client.wait_for_final(trial)
