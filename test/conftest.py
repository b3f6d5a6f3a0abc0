"""Test-wide setup: every test session talks DDS on a ROS domain of its own, on this host only, and keeps
its ROS_HOME (the scorer's state file) in a folder of its own.

The domain id is claimed with a lock file, so parallel test sessions (and CI
next to a developer's run) never hear each other.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from facesym_ros.config.files import dds_environment

# Fast DDS maps domain ids above 101 to ports that can collide; stay in 1..101.
DOMAIN_IDS = range(1, 102)
_held_locks: list = []  # the claimed domain's lock file, held open until the session ends


def _claim_domain_id() -> int:
    start = os.getpid() % len(DOMAIN_IDS)
    for offset in range(len(DOMAIN_IDS)):
        domain = DOMAIN_IDS[(start + offset) % len(DOMAIN_IDS)]
        lock = open(Path(tempfile.gettempdir()) / f'facesym-ros-domain-{domain}.lock', 'w')  # noqa: SIM115
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        _held_locks.append(lock)
        return domain
    raise RuntimeError('no free ROS domain id for this test session')


def pytest_configure(config: pytest.Config) -> None:
    os.environ['ROS_DOMAIN_ID'] = str(_claim_domain_id())
    # The scorer's trial state (and ROS logs) of this session, apart from the user's ~/.ros.
    os.environ['ROS_HOME'] = tempfile.mkdtemp(prefix='facesym-test-ros-home-')
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    os.environ.update(dds_environment())


@pytest.fixture
def rclpy_context() -> Iterator[object]:
    """An initialised rclpy context for nodes created in the test process."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.try_shutdown(context=context)


@pytest.fixture
def live_graph(rclpy_context, tmp_path):
    """Start (part of) the facesym graph as real processes; yields start(names, overrides) -> (graph, client).

    `options` (bringup's GraphOptions) puts the graph in a namespace, on another camera topic or on sim time;
    the client joins the graph's namespace.
    """
    from facesym_ros.config.files import default_params_file
    from facesym_ros.config.registry import NODES
    from facesym_ros.ros.bringup import GraphOptions, ProcessGraph
    from facesym_ros.ros.graph_client import GraphClient

    started: list[tuple[ProcessGraph, GraphClient, object]] = []

    def start(names=None, overrides=None, params_file=None, options=None):
        options = options or GraphOptions()
        log = open(tmp_path / f'graph-{len(started)}.log', 'w')  # noqa: SIM115 - closed at teardown
        specs = [spec for spec in NODES if names is None or spec.name in names]
        # each graph its own scorer state: a trial left open by a failed test is not taken up by the next
        overrides = {**(overrides or {}), 'symmetry_scorer': {
            'state_dir': str(tmp_path / f'state-{len(started)}'), **(overrides or {}).get('symmetry_scorer', {})}}
        graph = ProcessGraph(specs, params_file or default_params_file(), options=options, overrides=overrides,
                             output=log)
        client = GraphClient(namespace=options.namespace, context=rclpy_context, name=f'test_client_{len(started)}')
        started.append((graph, client, log))
        return graph, client

    yield start
    for graph, client, log in started:
        graph.stop()
        client.close()
        log.close()
