"""A simulated clock shared by the driver and the engine's processes through a small file.

The file holds three numbers: a simulated epoch `base`, the wall epoch `ref` at which
`base` was true, and a `rate` (simulated seconds per wall second). Readers compute
`base + (time.time() - ref) * rate`. The driver runs time at 1x while the engine works
(heartbeats and rescue periods stay meaningful) and jumps it forward when nothing is due.

A process that sleeps until something is due (the scheduler) waits with `wait`, which also
ends when the driver sets the clock: after a jump, what was due later may be due now.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

# How often a waiting process looks at the clock file for a jump (a read of a few bytes).
WAKE_POLL_S = 0.005


class SimClock:
    """The engine's `Clock` (jobs.clock) read from the shared file; the driver also sets it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._seen = ""  # the file's text as last read by this process

    # -- reading (any process) ------------------------------------------------
    def _state(self) -> tuple[float, float, float]:
        for _ in range(50):
            try:
                raw = self.path.read_text()
                base, ref, rate = (float(x) for x in raw.split())
                self._seen = raw
                return base, ref, rate
            except (ValueError, FileNotFoundError):  # caught mid-replace: read again
                time.sleep(0.001)
        raise RuntimeError(f"simulated clock file {self.path} is unreadable")

    def epoch(self) -> float:
        base, ref, rate = self._state()
        return base + (time.time() - ref) * rate

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.epoch(), UTC)

    def wait(self, stop: threading.Event, timeout: float) -> bool:
        """Wait up to `timeout` wall seconds for `stop`, or less: until the clock is set
        (jumped, or its pace changed) after this process last read it. The caller then
        reads the new time and decides again. Returns whether `stop` is set."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.path.read_text() != self._seen:
                    return stop.is_set()
            except FileNotFoundError:
                pass
            left = deadline - time.monotonic()
            if left <= 0 or stop.wait(min(WAKE_POLL_S, left)):
                return stop.is_set()

    # -- writing (the driver) -------------------------------------------------
    def set(self, when: datetime, rate: float = 1.0) -> None:
        """Jump to `when` and run on at `rate` simulated seconds per wall second."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{when.timestamp():.6f} {time.time():.6f} {rate}")
        os.replace(tmp, self.path)  # readers see the old or the new, never half

    def run_at(self, rate: float) -> None:
        """Keep the current time, change the pace."""
        self.set(self.now(), rate)
