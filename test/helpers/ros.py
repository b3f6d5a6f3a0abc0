"""Small helpers for tests that drive rclpy nodes in the test process."""

from __future__ import annotations

import time


def spin_call(executor, future, timeout: float = 10.0):
    """Spin `executor` until `future` (a service call) is done; its result."""
    deadline = time.monotonic() + timeout
    while not future.done() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    assert future.done(), 'no answer'
    return future.result()
