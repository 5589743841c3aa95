"""Pause and resume the whole engine (the seeds' "power" routine, without losing anything).

While paused, workers finish what they hold but claim nothing new, and schedulers
enqueue nothing. Ticks that fall due meanwhile stay due: on resume the scheduler
meets them as misfires and its misfire policy decides (`latest`, `all`, `skip`),
recording each in the ledger. Jobs enqueued meanwhile simply wait.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select, update

from superseller.db.schema import engine_state
from superseller.jobs.backend import backend_for
from superseller.jobs.clock import Clock, SystemClock


def state(engine: Engine) -> dict[str, Any]:
    # A plain read: it must not queue behind a held write lock.
    with backend_for(engine).reader(engine) as conn:
        row = conn.execute(select(engine_state).where(engine_state.c.id == 1)).first()
    if row is None:
        return {"paused": False, "reason": None, "changedAt": None}
    return {
        "paused": bool(row.paused),
        "reason": row.reason,
        "changedAt": row.changed_at.isoformat() if row.changed_at else None,
    }


def set_paused(
    engine: Engine, paused: bool, reason: str | None = None, clock: Clock | None = None
) -> dict[str, Any]:
    with engine.begin() as conn:
        conn.execute(
            update(engine_state)
            .where(engine_state.c.id == 1)
            .values(
                paused=paused,
                reason=reason if paused else None,
                changed_at=(clock or SystemClock()).now(),
            )
        )
    return state(engine)


@dataclass
class PauseFlag:
    """`paused` read at most once per `ttl_s`: a worker loop can ask every iteration.

    A failed read raises and leaves the last known value in place (the caller retries
    with back-off); `stale` says whether the next `paused` goes to the database."""

    engine: Engine
    ttl_s: float = 1.0
    _value: bool = False
    _read_at: float = field(default=float("-inf"))

    @property
    def stale(self) -> bool:
        return time.monotonic() - self._read_at >= self.ttl_s

    @property
    def last(self) -> bool:
        """The last value read, without a database call."""
        return self._value

    @property
    def paused(self) -> bool:
        if self.stale:
            now = time.monotonic()
            self._value = state(self.engine)["paused"]
            self._read_at = now
        return self._value
