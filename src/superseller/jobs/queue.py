"""Enqueueing jobs: validation against the registry and the input bounds (`limits`),
unique keys, batch insert, wake-ups."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from superseller import limits
from superseller.jobs.backend import backend_for
from superseller.jobs.clock import Clock, SystemClock
from superseller.jobs.registry import Registry


@dataclass
class JobSpec:
    type: str
    payload: dict[str, Any] | None = None
    tenant_id: str | None = None
    queue: str | None = None
    priority: int = 0
    run_at: datetime | None = None
    max_attempts: int | None = None
    unique_key: str | None = None
    lock_key: str | None = None
    timeout_s: float | None = None
    schedule_id: int | None = None
    scheduled_for: datetime | None = None
    # A private run: `queue` is a runner's own queue (a command line's) and the job belongs
    # on its type's queue, with its type's attempts (at least `max_attempts`): where the
    # engine sends it when the runner vanishes (see JobAdmin.lend_pending).
    private_run: bool = False


@dataclass(frozen=True)
class Enqueued:
    id: int
    created: bool  # False: an unfinished job with the same unique_key was returned


@dataclass
class Queue:
    """The producer side of the engine."""

    engine: Engine
    registry: Registry
    clock: Clock | None = field(default_factory=SystemClock)

    def __post_init__(self) -> None:
        self.clock = self.clock or SystemClock()
        self.backend = backend_for(self.engine)

    def enqueue(self, job_type: str, payload: dict | None = None, **options: Any) -> Enqueued:
        return self.enqueue_many([JobSpec(type=job_type, payload=payload, **options)])[0]

    def enqueue_many(self, specs: list[JobSpec], conn: Connection | None = None) -> list[Enqueued]:
        """Insert jobs, in one transaction (the caller's, when `conn` is given).

        Every spec is validated first, so a bad one refuses the whole batch.
        """
        now = self.clock.now()  # one instant for the whole batch
        checked: dict[tuple, dict[str, Any]] = {}
        rows = [self._checked_row(spec, now, checked) for spec in specs]
        if conn is not None:
            return self._insert(conn, rows)
        with self.engine.begin() as own:
            return self._insert(own, rows)

    def _checked_row(
        self, spec: JobSpec, now: datetime, checked: dict[tuple, dict[str, Any]]
    ) -> dict[str, Any]:
        """`_row`, validating once per batch the specs that differ only in what has no
        bounds to check: jobs with an empty payload and the same type, tenant, queue,
        priority and options (a fan-out's usual shape) share one validation."""
        if spec.payload or spec.unique_key is not None or spec.run_at is not None:
            return self._row(spec, now)
        key = (
            spec.type,
            spec.tenant_id,
            spec.queue,
            spec.priority,
            spec.max_attempts,
            spec.lock_key,
            spec.timeout_s,
            spec.private_run,
        )
        row = checked.get(key)
        if row is None:
            row = checked[key] = self._row(spec, now)
        return {**row, "schedule_id": spec.schedule_id, "scheduled_for": spec.scheduled_for}

    def _row(self, spec: JobSpec, now: datetime) -> dict[str, Any]:
        jt = self.registry.get(spec.type)
        limits.check_payload_size(spec.payload or {})  # before parsing a huge one
        parsed = self.registry.parse_payload(spec.type, spec.payload)
        lock_key = spec.lock_key
        if lock_key is None and jt.lock_key is not None:
            lock_key = jt.lock_key(parsed, spec.tenant_id)
        # The bounds shared with the CLI and the API (LimitError: nothing is stored).
        limits.check_job(
            job_type=spec.type,
            payload=spec.payload,
            tenant_id=spec.tenant_id,
            queue=spec.queue,
            priority=spec.priority,
            max_attempts=spec.max_attempts,
            unique_key=spec.unique_key,
            lock_key=lock_key,
            timeout_s=spec.timeout_s,
            run_at=spec.run_at,
        )
        queue = spec.queue or jt.queue
        max_attempts = spec.max_attempts or jt.max_attempts
        away = spec.private_run and queue != jt.queue
        return {
            "type": jt.name,  # the one name, also when asked by a former one
            "queue": queue,
            "tenant_id": spec.tenant_id,
            "payload": spec.payload or {},
            "status": "pending",
            "priority": spec.priority,
            "run_at": spec.run_at or now,
            "attempts": 0,
            "max_attempts": max_attempts,
            "unique_key": spec.unique_key,
            "lock_key": lock_key,
            "timeout_s": spec.timeout_s if spec.timeout_s is not None else jt.timeout_s,
            "cancel_requested": False,
            "created_at": now,
            "schedule_id": spec.schedule_id,
            "scheduled_for": spec.scheduled_for,
            "home_queue": jt.queue if away else None,
            "home_max_attempts": max(jt.max_attempts, max_attempts) if away else None,
        }

    def _insert(self, conn: Connection, rows: list[dict]) -> list[Enqueued]:
        results: list[Enqueued | None] = [None] * len(rows)
        plain = [i for i, r in enumerate(rows) if r["unique_key"] is None]
        if plain:
            ids = self.backend.insert_jobs(conn, [rows[i] for i in plain])
            for i, job_id in zip(plain, ids, strict=True):
                results[i] = Enqueued(job_id, True)
        seen: dict[str, Enqueued] = {}
        for i, row in enumerate(rows):
            key = row["unique_key"]
            if key is None:
                continue
            if key in seen:  # the same key twice in one batch: one job
                results[i] = Enqueued(seen[key].id, False)
                continue
            results[i] = seen[key] = Enqueued(*self.backend.insert_unique(conn, row))
        # Wake idle workers of the queues with due jobs (on commit; where the backend can).
        now = rows[0]["created_at"] if rows else self.clock.now()
        due = {r["queue"] for r in rows if r["run_at"] is now or r["run_at"] <= now}
        self.backend.notify(conn, sorted(due))
        return [r for r in results if r is not None]
