"""Wall-clock time for the engine, injectable for tests."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


def sleep(clock: Clock, stop: threading.Event, seconds: float) -> bool:
    """Wait up to `seconds` of wall time, or until `stop` is set; returns whether it is.

    A clock that can jump ahead (the simulation's: `simulation.clock.SimClock`) may end
    the wait early through its own `wait(stop, seconds)`, so a process sleeping until
    something is due looks again as soon as the time moved; the system clock has none,
    so in production this is `stop.wait(seconds)`."""
    wait = getattr(clock, "wait", None)
    if wait is None:
        return stop.wait(seconds)
    return wait(stop, seconds)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to (thread-safe)."""

    def __init__(self, start: datetime):
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now
