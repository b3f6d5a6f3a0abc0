"""Test-wide setup: every test session talks DDS on a ROS domain of its own, on this host only.

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

from facesym_ros.graph import dds_environment

# Fast DDS maps domain ids above 101 to ports that can collide; stay in 1..101.
DOMAIN_IDS = range(1, 102)
_domain_lock = None


def _claim_domain_id() -> int:
    global _domain_lock
    start = os.getpid() % len(DOMAIN_IDS)
    for offset in range(len(DOMAIN_IDS)):
        domain = DOMAIN_IDS[(start + offset) % len(DOMAIN_IDS)]
        lock = open(Path(tempfile.gettempdir()) / f'facesym-ros-domain-{domain}.lock', 'w')  # noqa: SIM115
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        _domain_lock = lock  # held until the session ends
        return domain
    raise RuntimeError('no free ROS domain id for this test session')


def pytest_configure(config: pytest.Config) -> None:
    os.environ['ROS_DOMAIN_ID'] = str(_claim_domain_id())
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
