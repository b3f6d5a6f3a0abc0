"""A client of the live graph, and `facesym demo`: the whole graph on the bundled sample.

GraphClient waits until the graph is connected, drives trials through the
scorer's services and collects what the graph publishes. The demo, the
integration tests and the live benchmark all use it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_srvs.srv import Trigger

from facesym_ros.bringup import ProcessGraph
from facesym_ros.core.video import FrameSource
from facesym_ros.graph import GRAPH
from facesym_ros.msg import RegionMotion, SymmetryScore
from facesym_ros.params import default_params_file, load_params_file
from facesym_ros.report import format_table
from facesym_ros.ros.conversions import msg_to_score, stamp_to_ns
from facesym_ros.ros.node_base import latched_qos, pipeline_qos
from facesym_ros.samples import SAMPLE_VIDEO

# Subscriptions each topic has once the scoring chain is up (the source excluded).
GRAPH_CONNECTIONS = {'image_raw': 3, 'faces': 1, 'landmarks': 1, 'region_motion': 1}
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
        self.on_score: Callable[[SymmetryScore], None] | None = None
        self.create_subscription(SymmetryScore, 'score', self._on_final, latched_qos())
        self.create_subscription(SymmetryScore, 'score_running', self._on_running, pipeline_qos(50))
        self.create_subscription(RegionMotion, 'region_motion', self._on_motion, pipeline_qos(200))
        self._trigger_clients = {name: self.create_client(Trigger, name)
                                 for name in ('start_trial', 'stop_trial', 'reset')}
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

    def graph_connected(self, connections: dict[str, int] | None = None) -> bool:
        needed = GRAPH_CONNECTIONS if connections is None else connections
        return (all(client.service_is_ready() for client in self._trigger_clients.values())
                and all(self.count_subscribers(topic) >= count for topic, count in needed.items()))

    def wait_for_graph(self, timeout: float = 60.0, connections: dict[str, int] | None = None) -> None:
        if not self.spin_until(lambda: self.graph_connected(connections), timeout):
            counts = {topic: self.count_subscribers(topic) for topic in GRAPH_CONNECTIONS}
            raise TimeoutError(f'the facesym graph did not come up within {timeout:g} s (subscribers: {counts})')
        # Discovery saw every subscription; give the publishers a moment to match them too.
        self.spin_until(lambda: False, SETTLE_SECONDS)

    def start_trial(self) -> Trigger.Response:
        """Start a trial, counting frames from now on."""
        self.motion_stamps.clear()
        self.motion_received_at.clear()
        return self.trigger('start_trial')

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


def trial_id_of(response: Trigger.Response) -> str:
    """The trial id in a start_trial/stop_trial answer ('<id> started', '<id> stopped; ...')."""
    if not response.success:
        raise RuntimeError(f'the scorer refused: {response.message}')
    return response.message.split()[0]


def run_source_trial(graph: ProcessGraph, client: GraphClient, expected_frames: int | None,
                     timeout: float = 120.0) -> SymmetryScore:
    """One trial over everything image_source publishes: the graph without the source is started (if it is
    not running), the trial started, the source started, and the trial stopped once its frames are through."""
    graph.start([spec.name for spec in graph.specs if spec.name != 'image_source'])
    client.wait_for_graph(timeout=timeout)
    trial = trial_id_of(client.start_trial())
    graph.start(['image_source'])
    client.wait_for_frames(expected_frames, timeout=timeout)
    trial_id_of(client.trigger('stop_trial'))
    return client.wait_for_final(trial)


def demo_command(args: argparse.Namespace) -> int:
    """Run the whole graph on a source, one trial over all of it, printing scores as they arrive."""
    import rclpy

    params_file = (args.params_file or default_params_file()).resolve()
    load_params_file(params_file)
    source = args.source or 'sample'
    expected = FrameSource.open(SAMPLE_VIDEO if source == 'sample' else source).frame_count
    overrides = {'image_source': {'source': source, 'wait_for_subscribers': '3'}}
    if args.frame_rate:
        overrides['image_source']['frame_rate'] = repr(float(args.frame_rate))
    specs = [spec for spec in GRAPH if spec.name != 'annotator' or not args.no_annotator]
    log = open(args.log, 'w') if args.log else None  # noqa: SIM115 - closed below
    rclpy.init()
    client = GraphClient()
    client.on_score = lambda msg: print(
        ('FINAL ' if msg.kind == SymmetryScore.KIND_FINAL else 'running ') + f'{msg.trial_id} after '
        f'{msg.frame_count} frames: ' + ', '.join(f'{r.region} SS {r.symmetry:.3f}' for r in msg.regions),
        flush=True)
    graph = ProcessGraph(specs, params_file, overrides=overrides, output=log)
    try:
        print(f'facesym demo: starting the graph; one trial over {source} ({expected} frames)', file=sys.stderr)
        final = run_source_trial(graph, client, expected, timeout=max(120.0, expected))
        print()
        print(format_table(msg_to_score(final), title=f'{final.trial_id}: live graph on {source} '
                                                       f'({len(client.motion_stamps)} of {expected} frames)'))
        return 0
    finally:
        graph.stop()
        client.close()
        rclpy.try_shutdown()
        if log:
            log.close()


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--params-file', type=Path, help='ROS 2 parameter file (default: config/facesym.yaml)')
    parser.add_argument('--source', help='what image_source publishes (default: the bundled sample clip)')
    parser.add_argument('--frame-rate', type=float, help='publishing rate [Hz] (default: the source\'s)')
    parser.add_argument('--no-annotator', action='store_true', help='do not start the annotator')
    parser.add_argument('--log', help='write the nodes\' output to this file instead of the terminal')
