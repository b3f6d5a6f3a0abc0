"""The time base of the whole package: integer nanoseconds, as header stamps and bag log times carry them."""

from __future__ import annotations

from collections import deque

NS_PER_SECOND = 1_000_000_000


def seconds_to_ns(seconds: float) -> int:
    return round(seconds * NS_PER_SECOND)


def ns_to_seconds(nanoseconds: int) -> float:
    return nanoseconds / NS_PER_SECOND


class StampClock:
    """A camera's time base as seen from another clock: which image stamp a clock time stands for.

    Every frame heard gives one offset, (clock at its arrival - its stamp): the transport's delay plus the
    difference between the two clocks, whatever it is (a camera on its own clock, hours or seconds ahead or
    behind; a replay's /clock; a drift, which the window follows). The smallest offset of the last `window`
    frames is the one with the least delay in it, so clock - that offset is at or after the stamp of every
    frame that had arrived by then: a command stamped so takes effect at the frames that arrive after it.
    Before any frame is heard the clock is taken as it is.
    """

    def __init__(self, window: int = 30) -> None:
        self._offsets: deque[int] = deque(maxlen=window)

    def heard(self, clock_ns: int, stamp_ns: int) -> None:
        """A frame stamped stamp_ns arrived at clock_ns."""
        self._offsets.append(clock_ns - stamp_ns)

    def to_stamp(self, clock_ns: int) -> int:
        """clock_ns in the time base of the image stamps."""
        return clock_ns - min(self._offsets) if self._offsets else clock_ns


STAMP_SLACK_NS = 2_000_000
"""Stamps are rounded (1/30 s is no whole number of ns): a frame this much before it is due is on time."""


class RateGate:
    """Picks frames for people at `rate` a second on average, by their stamps, whatever the camera's rate.

    A frame is taken when its stamp is due (within STAMP_SLACK_NS); the next is due one period later, so
    a 30 fps camera gives every other frame at 15 and two of three at 20. Arrival jitter skips no extra
    frame, since only stamps count. After a gap of over a period, or stamps that went back (a replay
    restarted), the next frame is taken and the schedule starts anew. A rate of 0 takes every frame.
    """

    def __init__(self, rate: float) -> None:
        self.period_ns = round(NS_PER_SECOND / rate) if rate > 0 else 0
        self._due_ns: int | None = None

    def take(self, stamp_ns: int) -> bool:
        due = self._due_ns
        if not self.period_ns:
            return True
        if due is not None and due - 2 * self.period_ns <= stamp_ns < due - STAMP_SLACK_NS:
            return False
        on_time = due is not None and abs(stamp_ns - due) < self.period_ns
        self._due_ns = (due if on_time else stamp_ns) + self.period_ns
        return True
