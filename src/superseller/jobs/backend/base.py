"""The engine's database seam: what every backend does, one documented method per operation.

`JobStore`, `Queue`, `Scheduler`, `stats` and `Worker` hold a `Backend` (picked once from
the engine's dialect by `backend_for`) and never test which database they talk to. The
caller owns the transaction and the clock: a backend method runs its statements on the
connection it is given, with the times it is given, and commits nothing.

Rules every backend keeps (the conformance suite, tests/test_backend_conformance.py,
checks them on each database):

- a claim hands a job to one worker only, never two jobs sharing a lock_key at once,
  and (with a tenant cap) never more than the cap of one tenant's jobs running;
- every worker-side write is fenced on (status, attempts, worker_id): a late outcome
  of a rescued, cancelled or re-claimed attempt changes nothing;
- an outcome and its job_logs row are written together or not at all.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, Table, insert, select, text

from superseller.db.schema import UNFINISHED, jobs

# The last_error of a job given back by rescue; finish() accepts the late outcome of
# such an attempt (nobody started it again since), and only of such an attempt.
LOST_MESSAGE = "worker lost: no heartbeat for"

_UNIQUE_WHERE = text(f"status IN {UNFINISHED} AND unique_key IS NOT NULL")


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~3x more per job
class ClaimedJob:
    id: int
    type: str
    queue: str
    tenant_id: str | None
    payload: dict
    attempt: int
    max_attempts: int
    timeout_s: float | None
    lock_key: str | None
    scheduled_for: datetime | None
    schedule_id: int | None
    started_at: datetime
    started_iso: str  # started_at.isoformat(), formatted once per claimed batch


@dataclass(slots=True)
class Outcome:
    """The end of one attempt, as the worker saw it."""

    job: ClaimedJob
    status: str  # the job's next state: completed | pending (retry) | failed | cancelled
    log_status: str  # success | error | timeout | cancelled | disconnected
    log_type: str
    completed_at: datetime
    duration_ms: int
    records: int = 0
    result: dict | None = None
    error: str | None = None
    retry_at: datetime | None = None
    # False: the attempt is given back, not counted (`attempts` goes down by one): the
    # database connection was lost under it. `fallback` is the counted outcome the store
    # records instead once the job's attempts were given back too many times in a row.
    counted: bool = True
    fallback: Outcome | None = None

    @property
    def metadata(self) -> dict | None:
        meta: dict[str, Any] = dict(self.result or {})
        if self.job.scheduled_for is not None:
            meta.setdefault("scheduledFor", self.job.scheduled_for.isoformat())
        if self.retry_at is not None:
            meta["retryAt"] = self.retry_at.isoformat()
        return meta or None


def queue_filter(
    params: dict[str, Any], queues: Sequence[str] | None, exclude: Sequence[str] | None
) -> str | None:
    """Which queue filter a claim takes ("queues", "exclude" or None), its parameter set in
    `params`. Given both, the claim takes `queues` without those of `exclude`."""
    if queues:
        params["queues"] = [q for q in queues if q not in (exclude or ())]
        return "queues"
    if exclude:
        params["exclude"] = list(exclude)
        return "exclude"
    return None


def claimed_jobs(rows, load_payload: Callable[[Any], dict], now: datetime) -> list[ClaimedJob]:
    """ClaimedJobs from a claim's RETURNING rows (id, type, queue, tenant_id, payload,
    attempts, max_attempts, timeout_s, lock_key, scheduled_for, schedule_id), positional:
    cheaper than named access per field."""
    started_iso = now.isoformat()
    return [
        ClaimedJob(
            id_,
            type_,
            queue,
            tenant_id,
            load_payload(payload),
            attempts,
            max_attempts,
            timeout_s,
            lock_key,
            scheduled_for,
            schedule_id,
            now,
            started_iso,
        )
        for (
            id_,
            type_,
            queue,
            tenant_id,
            payload,
            attempts,
            max_attempts,
            timeout_s,
            lock_key,
            scheduled_for,
            schedule_id,
        ) in rows
    ]


class Backend(ABC):
    """One database's implementation of the engine's statements."""

    name: str
    # Capabilities the worker plans with (not dialect tests):
    listens: bool = False  # enqueues wake idle workers (listener()); else poll often
    concurrent_writers: bool = False  # write transactions run side by side (claim lanes)

    # -- the worker's hot path ----------------------------------------------
    @abstractmethod
    def begin_hot_path(self, conn: Connection) -> None:
        """Per-transaction settings for the claim/finish round trip, if any."""

    @abstractmethod
    def claim(
        self,
        conn: Connection,
        worker_id: str,
        limit: int,
        now: datetime,
        queues: Sequence[str] | None = None,
        tenant_cap: int = 0,
        scan: int = 0,
        exclude: Sequence[str] | None = None,
    ) -> list[ClaimedJob]:
        """Move up to `limit` due pending jobs (of `queues`, or all but those of `exclude`:
        the paused queues) to running for `worker_id` at `now`; returns them (build with
        `claimed_jobs`). With `tenant_cap` > 0, no tenant ends with more than that many
        running jobs, looking at `scan` candidates. Concurrent claims never return the
        same job."""

    @abstractmethod
    def finish(self, conn: Connection, worker_id: str, outcomes: Sequence[Outcome]) -> set[int]:
        """Record attempts' ends and their job_logs rows; returns the ids applied. An
        outcome whose attempt is no longer this worker's (fencing) is dropped. An outcome
        not `counted` takes its attempt back (`attempts` - 1), fenced the same way."""

    def finish_and_claim(
        self,
        conn: Connection,
        worker_id: str,
        outcomes: Sequence[Outcome],
        limit: int,
        now: datetime,
        queues: Sequence[str] | None = None,
        tenant_cap: int = 0,
        scan: int = 0,
        exclude: Sequence[str] | None = None,
    ) -> tuple[set[int], list[ClaimedJob]]:
        """The worker's round trip, in the caller's transaction: `begin_hot_path`, then
        `finish(outcomes)` (if any), then `claim(limit, ...)` (if `limit` > 0). Returns
        (ids applied, jobs claimed). A backend may send the three at once."""
        self.begin_hot_path(conn)
        applied = self.finish(conn, worker_id, outcomes) if outcomes else set()
        if limit <= 0:
            return applied, []
        return applied, self.claim(conn, worker_id, limit, now, queues, tenant_cap, scan, exclude)

    @abstractmethod
    def heartbeat(
        self, conn: Connection, worker_id: str, job_ids: Sequence[int], now: datetime
    ) -> list[tuple[int, bool]]:
        """Touch this worker's running jobs; returns (id, cancel_requested) of those
        it still holds."""

    @abstractmethod
    def rescue(
        self,
        conn: Connection,
        *,
        now: datetime,
        cutoff: datetime,
        message: str,
        alive: str,
        held: Sequence[int] | None = None,
    ) -> list[Any]:
        """Give back running jobs silent since `cutoff` (not `alive`'s, except those
        not in `held` when given): pending to retry, failed when out of attempts,
        cancelled when asked; a job lent to a private runner (`home_queue` set) goes home
        to `home_queue` with its home's attempts (`home_max_attempts`, if more). Returns
        rows (id, type, tenant_id, attempts, started_at, status, queue)."""

    @abstractmethod
    def release(
        self, conn: Connection, *, worker_id: str, job_id: int, attempt: int, now: datetime
    ) -> bool:
        """Put one unfinished attempt back to pending (not counted); True if it was
        still this worker's."""

    # -- producers -----------------------------------------------------------
    def insert_jobs(self, conn: Connection, rows: Sequence[dict]) -> list[int]:
        """Insert new pending job rows (no unique key, no attempt yet); returns their ids
        in order."""
        stmt = insert(jobs).returning(jobs.c.id, sort_by_parameter_order=True)
        return list(conn.execute(stmt, list(rows)).scalars().all())

    def insert_unique(self, conn: Connection, row: dict) -> tuple[int, bool]:
        """Insert a job with a unique_key unless an unfinished one holds the key;
        returns (id, created)."""
        stmt = (
            self.insert_on_conflict(jobs)
            .values(**row)
            .on_conflict_do_nothing(index_elements=[jobs.c.unique_key], index_where=_UNIQUE_WHERE)
            .returning(jobs.c.id)
        )
        existing = select(jobs.c.id).where(
            jobs.c.unique_key == row["unique_key"], jobs.c.status.in_(("pending", "running"))
        )
        # The holder may finish between our insert and our select: try again.
        for _ in range(10):
            job_id = conn.execute(stmt).scalar()
            if job_id is not None:
                return job_id, True
            job_id = conn.execute(existing).scalar()
            if job_id is not None:
                return job_id, False
        raise RuntimeError(f"could not enqueue unique key {row['unique_key']!r}")

    @abstractmethod
    def notify(self, conn: Connection, queues: Sequence[str]) -> None:
        """Wake idle workers of `queues` once the transaction commits (or nothing)."""

    def listener(self, engine: Engine, queues: list[str] | None, wake: Callable[[], None], watch):
        """A started-on-demand object with start()/stop() that calls `wake()` on each
        notification, or None when this database has none (workers poll)."""
        return None

    # -- building blocks for the rest of the engine ---------------------------
    @abstractmethod
    def insert_on_conflict(self, table: Table):
        """This dialect's `insert(table)`, with on_conflict_do_nothing/_update."""

    @abstractmethod
    def hour_bucket(self, column):
        """SQL expression: the UTC hour a timestamp column falls in (stats buckets)."""

    def upsert_stats(self, conn: Connection, table: Table, rows: list[dict]) -> None:
        """Add `rows` to the hourly stats counters, creating missing buckets."""
        stmt = self.insert_on_conflict(table).values(rows)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["job_type", "hour", "status"],
                set_={
                    c: table.c[c] + stmt.excluded[c]
                    for c in ("runs", "total_duration_ms", "records", "retries")
                },
            )
        )

    @abstractmethod
    def skip_locked(self, stmt: Select) -> Select:
        """`stmt` locking its rows for this transaction, skipping rows another holds."""

    @abstractmethod
    def transaction_lock(self, conn: Connection, key: str) -> None:
        """Hold a named lock until the transaction ends (advisory, e.g. per tenant)."""

    @abstractmethod
    def snapshot(self, engine: Engine) -> Connection:
        """A connection whose reads, until it closes, all see one snapshot (stats add
        the folded counters to the unfolded tail: a fold in between must not show)."""

    def reader(self, engine: Engine) -> Connection:
        """A connection for reads that must not queue behind a writer (pause state)."""
        return engine.connect()
