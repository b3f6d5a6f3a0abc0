"""Each executor a node can run on serves its services, topics, timers and parameters, and stops on SIGTERM."""

from __future__ import annotations

import signal

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient

from facesym_ros.config.node_settings import ExecutorSettings
from facesym_ros.config.registry import DIAGNOSTICS_TOPIC
from facesym_ros.msg import TrialEvent
from facesym_ros.ros.node_base import pipeline_qos

EXECUTORS = ExecutorSettings.__dataclass_fields__['executor'].metadata['choices']


@pytest.mark.parametrize('executor', EXECUTORS)
def test_the_scorer_works_on_each_executor_and_exits_cleanly(live_graph, executor):
    graph, client = live_graph(names=['symmetry_scorer'], overrides={'symmetry_scorer': {
        'executor': executor, 'stop_grace': '0.2', 'diagnostics_period': '0.2'}})
    statuses: list[str] = []
    client.create_subscription(DiagnosticArray, DIAGNOSTICS_TOPIC,
                               lambda msg: statuses.extend(status.name for status in msg.status), pipeline_qos(10))
    graph.start()

    # a timer: the node's diagnostics, several times
    assert client.spin_until(lambda: statuses.count('/symmetry_scorer') >= 3, 30.0), statuses
    # a service, then a subscription (trial_control) and the final score its timer gives after the stop
    trial = client.start_trial()
    start_ns = next(e for e in client.trial_events if e.trial_id == trial).header.stamp
    assert client.stop_trial(stamp_ns=start_ns.sec * 1_000_000_000 + start_ns.nanosec + 1) == trial
    assert client.wait_for_final(trial, timeout=10.0).frame_count == 0

    # the parameter services: a changed trial prefix names the next trial
    parameters = AsyncParameterClient(client, 'symmetry_scorer')
    assert client.spin_until(parameters.services_are_ready, 10.0)
    future = parameters.set_parameters([Parameter('trial_prefix', value=f'on-{executor}')])
    assert client.spin_until(future.done, 10.0) and future.result().results[0].successful
    refused = parameters.set_parameters([Parameter('executor', value='single_threaded')])
    assert client.spin_until(refused.done, 10.0) and not refused.result().results[0].successful
    assert client.start_trial().startswith(f'on-{executor}-')
    assert any(e.event == TrialEvent.START for e in client.trial_events[-1:])

    process = graph.processes['symmetry_scorer']
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0
