"""The time base of the whole package: integer nanoseconds, as header stamps and bag log times carry them."""

from __future__ import annotations

NS_PER_SECOND = 1_000_000_000


def seconds_to_ns(seconds: float) -> int:
    return round(seconds * NS_PER_SECOND)


def ns_to_seconds(nanoseconds: int) -> float:
    return nanoseconds / NS_PER_SECOND
