"""SIGINT and SIGTERM counted, not raised: a loop that spins rclpy acts on them between two spins.

A handler that raises KeyboardInterrupt may fire while rclpy's C++ code is taking a message. pybind11 then turns
the exception into "RuntimeError: Unable to convert call argument '0' to Python object", and the command
crashes: a session without its partial report, a bag without its last messages. Counted signals cannot do that.
Each loop that uses them spins at most a few tens of milliseconds at a time, so a stop still takes effect at once.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Counts SIGINT and SIGTERM from install() to restore() (or within `with`); take() says whether one came
    since the last take(). Installed again inside, it counts alone until restored, then the outer one counts.

    Off the main thread (where Python allows no handler) install() changes nothing and no signal is counted.
    """

    def __init__(self) -> None:
        self.count = 0
        self._seen = 0
        self._previous: dict[int, object] = {}

    def install(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def __enter__(self) -> StopSignals:
        return self.install()

    def __exit__(self, *exc_info: object) -> None:
        self.restore()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1

    def take(self) -> bool:
        """True once for each run of signals since the last call."""
        new = self.count > self._seen
        self._seen = self.count
        return new
