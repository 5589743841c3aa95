"""A simulated clock shared by the driver and the engine's processes through a small file.

The file holds three numbers: a simulated epoch `base`, the wall epoch `ref` at which
`base` was true, and a `rate` (simulated seconds per wall second). Readers compute
`base + (time.time() - ref) * rate`. The driver runs time at 1x while the engine works
(heartbeats and rescue periods stay meaningful) and jumps it forward when nothing is due.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path


class SimClock:
    """The engine's `Clock` (jobs.clock) read from the shared file; the driver also sets it."""

    def __init__(self, path: Path):
        self.path = Path(path)

    # -- reading (any process) ------------------------------------------------
    def _state(self) -> tuple[float, float, float]:
        for _ in range(50):
            try:
                base, ref, rate = (float(x) for x in self.path.read_text().split())
                return base, ref, rate
            except (ValueError, FileNotFoundError):  # caught mid-replace: read again
                time.sleep(0.001)
        raise RuntimeError(f"simulated clock file {self.path} is unreadable")

    def epoch(self) -> float:
        base, ref, rate = self._state()
        return base + (time.time() - ref) * rate

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.epoch(), UTC)

    # -- writing (the driver) -------------------------------------------------
    def set(self, when: datetime, rate: float = 1.0) -> None:
        """Jump to `when` and run on at `rate` simulated seconds per wall second."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{when.timestamp():.6f} {time.time():.6f} {rate}")
        os.replace(tmp, self.path)  # readers see the old or the new, never half

    def run_at(self, rate: float) -> None:
        """Keep the current time, change the pace."""
        self.set(self.now(), rate)
