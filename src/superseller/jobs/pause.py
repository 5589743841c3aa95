"""Pause and resume the whole engine (the seeds' "power" routine, without losing anything).

While paused, workers finish what they hold but claim nothing new, and schedulers
enqueue nothing. Ticks that fall due meanwhile stay due: on resume the scheduler
meets them as misfires and its misfire policy decides (`latest`, `all`, `skip`),
recording each in the ledger. Jobs enqueued meanwhile simply wait.

A queue can also be paused on its own (`paused_queues`): workers leave it out of their
claim, its jobs wait, running ones finish, other queues and the schedulers go on. Workers
read both with `PauseFlag`, at most once a second, so a pause takes effect within about
a second; a claim in flight at that moment may still take a job of the queue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update

from superseller import limits
from superseller.db.schema import engine_state, paused_queues
from superseller.jobs import audit
from superseller.jobs.backend import backend_for
from superseller.jobs.clock import Clock, SystemClock


def state(engine: Engine) -> dict[str, Any]:
    """Whether the engine is paused (why, since when) and which queues are paused on their
    own (`pausedQueues`: queue, reason, actor, pausedAt; by name)."""
    # A plain read: it must not queue behind a held write lock.
    with backend_for(engine).reader(engine) as conn:
        row = conn.execute(select(engine_state).where(engine_state.c.id == 1)).first()
        queues = _paused_queues(conn)
    if row is None:
        return {"paused": False, "reason": None, "changedAt": None, "pausedQueues": queues}
    return {
        "paused": bool(row.paused),
        "reason": row.reason,
        "changedAt": row.changed_at.isoformat() if row.changed_at else None,
        "pausedQueues": queues,
    }


def _paused_queues(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(paused_queues).order_by(paused_queues.c.queue)).all()
    return [
        {
            "queue": r.queue,
            "reason": r.reason,
            "actor": r.actor,
            "pausedAt": r.paused_at.isoformat(),
        }
        for r in rows
    ]


def check_queue_name(queue: str) -> str:
    """Queues are free strings (whatever a job was enqueued with): any name of 1 to
    `limits.QUEUE_MAX_LEN` characters can be paused, known or not yet used."""
    if not queue:
        raise limits.LimitError("the queue name is empty")
    limits.check_len(queue, limits.QUEUE_MAX_LEN, "the queue name")
    return queue


def set_queue_paused(
    engine: Engine,
    queue: str,
    paused: bool,
    reason: str | None = None,
    actor: str = audit.CLI,
    clock: Clock | None = None,
) -> dict[str, Any]:
    """Pause one queue (again: a new reason, actor and time) or resume it (a queue not
    paused stays as it is), audited as `actor` in the same transaction. Returns `state()`."""
    check_queue_name(queue)
    limits.check_len(reason, limits.REASON_MAX_LEN, "the reason")
    now = (clock or SystemClock()).now()
    with engine.begin() as conn:
        conn.execute(delete(paused_queues).where(paused_queues.c.queue == queue))
        if paused:
            conn.execute(
                insert(paused_queues).values(
                    queue=queue, reason=reason or None, actor=actor[:254], paused_at=now
                )
            )
        detail = {"reason": reason or None} if paused else None
        action = "queue.pause" if paused else "queue.resume"
        audit.record(conn, actor, action, "queue", queue, detail, clock)
    return state(engine)


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
    """`paused` (and the paused queues) read at most once per `ttl_s`: a worker loop can
    ask every iteration.

    A failed read raises and leaves the last known value in place (the caller retries
    with back-off); `stale` says whether the next `paused` goes to the database."""

    engine: Engine
    ttl_s: float = 1.0
    _value: bool = False
    _queues: frozenset[str] = frozenset()
    _read_at: float = field(default=float("-inf"))

    @property
    def stale(self) -> bool:
        return time.monotonic() - self._read_at >= self.ttl_s

    @property
    def last(self) -> bool:
        """The last value read, without a database call."""
        return self._value

    @property
    def queues(self) -> frozenset[str]:
        """The queues paused on their own, as last read (no database call)."""
        return self._queues

    @property
    def paused(self) -> bool:
        if self.stale:
            now = time.monotonic()
            s = state(self.engine)
            self._value = s["paused"]
            self._queues = frozenset(q["queue"] for q in s["pausedQueues"])
            self._read_at = now
        return self._value
