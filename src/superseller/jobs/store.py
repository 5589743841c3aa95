"""Job state transitions in the database: claim, finish, heartbeat, rescue, release.

These are the hot paths of the engine, so they are written as a few set-based
statements, one set per database behind `jobs.backend` (this module owns the
transactions, retries and the clock; the backend owns the SQL). The claim and the
finish of a batch share one transaction: the worker's whole conversation is one round
trip and one commit per batch.

Every worker-side update is guarded on (status = 'running', attempts, worker_id):
a job that was rescued, cancelled or re-claimed in the meantime is never
overwritten by a late worker.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from superseller.db.schema import job_logs
from superseller.jobs.backend import LOST_MESSAGE, ClaimedJob, Outcome, backend_for
from superseller.jobs.clock import Clock, SystemClock

__all__ = ["DISCONNECTED", "FAIR_ROUNDS", "SCAN_FACTOR", "ClaimedJob", "JobStore", "Outcome"]

log = logging.getLogger("superseller.jobs.store")

# The job_logs status of an attempt given back, not counted: the database connection was
# lost under it (docs/jobs.md, "When the database goes away during a job").
DISCONNECTED = "disconnected"

SCAN_FACTOR = 4  # the fair claim looks at this many candidates per job it may take
FAIR_ROUNDS = 3  # ...and looks again this many times when tenants at their cap filled it


class JobStore:
    """Database operations of the worker side of the engine."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock | None = None,
        tenant_max_running: int = 0,
        max_db_interruptions: int = 5,
    ):
        self.engine = engine
        self.clock = clock or SystemClock()
        self.backend = backend_for(engine)
        # > 0: no tenant gets more running jobs than this across every worker (fairness).
        self.tenant_cap = max(0, tenant_max_running)
        # A job's attempts are given back (not counted) for a lost database connection at
        # most this many times in a row; the next one counts.
        self.max_db_interruptions = max(0, max_db_interruptions)

    # -- claim ---------------------------------------------------------------

    def claim(
        self, worker_id: str, limit: int, queues: list[str] | None = None
    ) -> list[ClaimedJob]:
        """Move up to `limit` due pending jobs to running for this worker."""
        return self.finish_and_claim(worker_id, [], limit, queues)[1]

    def finish(self, worker_id: str, outcomes: list[Outcome]) -> set[int]:
        """Record the end of attempts; returns the job ids whose state changed."""
        return self.finish_and_claim(worker_id, outcomes, 0)[0]

    def finish_and_claim(
        self,
        worker_id: str,
        outcomes: list[Outcome],
        limit: int,
        queues: list[str] | None = None,
        exclude: list[str] | None = None,
    ) -> tuple[set[int], list[ClaimedJob]]:
        """Record finished attempts and claim the next batch in one transaction:
        one round trip and one commit per batch, the worker's whole conversation."""
        if not outcomes and limit <= 0:
            return set(), []
        for attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    if any(not o.counted for o in outcomes):
                        outcomes = self._cap_give_backs(conn, outcomes)
                    want = limit if attempt < 4 else 0
                    # Read the time only once the write lock is held (SQLite took it at
                    # BEGIN and may have waited for it): a stale heartbeat would invite a
                    # false rescue.
                    now = self.clock.now()
                    cap, scan = self.tenant_cap, want * SCAN_FACTOR
                    applied, claimed = self.backend.finish_and_claim(
                        conn, worker_id, outcomes, want, now, queues, cap, scan, exclude
                    )
                    if cap and want:
                        claimed = self._claim_more(
                            conn, worker_id, want, now, queues, exclude, claimed
                        )
                    return applied, claimed
            except IntegrityError:
                # Two workers picked different jobs sharing a lock_key at the same
                # moment; the unique index refused the second. Try again (the
                # last try only records outcomes).
                continue
        raise AssertionError("unreachable")

    def _cap_give_backs(self, conn, outcomes: list[Outcome]) -> list[Outcome]:
        """An attempt given back for a lost connection counts after all (its `fallback`)
        when the job's last `max_db_interruptions` runs were all given back: a handler
        that breaks its own connection must not run for ever. Decided here, when the
        outcome is recorded (the database answers), in the transaction that records it."""
        capped = []
        for o in outcomes:
            if not o.counted and o.fallback is not None:
                if self._given_back_in_a_row(conn, o.job.id) >= self.max_db_interruptions:
                    log.warning(
                        "job %s lost its database connection more than %d times in a row: "
                        "attempt %d counted",
                        o.job.id,
                        self.max_db_interruptions,
                        o.job.attempt,
                    )
                    o = o.fallback
            capped.append(o)
        return capped

    def _given_back_in_a_row(self, conn, job_id: int) -> int:
        """How many of the job's latest job_logs rows are give-backs, newest first."""
        cap = self.max_db_interruptions
        if cap <= 0:
            return 0
        rows = conn.execute(
            select(job_logs.c.status)
            .where(job_logs.c.job_id == job_id)
            .order_by(job_logs.c.id.desc())
            .limit(cap)
        ).scalars()
        streak = 0
        for status in rows:
            if status != DISCONNECTED:
                break
            streak += 1
        return streak

    def _claim_more(
        self, conn, worker_id: str, limit: int, now, queues, exclude, rows: list[ClaimedJob]
    ) -> list[ClaimedJob]:
        """Fair claim: a scan window filled by tenants at their cap yields a short batch;
        look again (same transaction: the jobs just taken count as running and are no
        longer pending) a few times while each look still finds something."""
        cap = self.tenant_cap
        for _ in range(FAIR_ROUNDS):
            if not rows or len(rows) >= limit:
                break
            want = limit - len(rows)
            scan = want * SCAN_FACTOR
            more = self.backend.claim(conn, worker_id, want, now, queues, cap, scan, exclude)
            if not more:
                break
            rows = [*rows, *more]
        return rows

    # -- heartbeat, rescue, release -----------------------------------------
    def heartbeat(self, worker_id: str, job_ids: list[int]) -> tuple[set[int], set[int]]:
        """Touch running jobs; returns (still owned ids, ids with cancel requested)."""
        if not job_ids:
            return set(), set()
        with self.engine.begin() as conn:
            now = self.clock.now()  # after the lock, as in claim()
            rows = self.backend.heartbeat(conn, worker_id, job_ids, now)
        return {id_ for id_, _ in rows}, {id_ for id_, cancel in rows if cancel}

    def rescue(
        self, grace_s: float, log_type_of, alive: str = "", proceed=None, held=None
    ) -> list[int]:
        """Give back running jobs whose worker stopped heart-beating `grace_s` ago.

        `alive` is the calling worker's id: it is running, so its own jobs are not lost even
        when their heartbeat is late (a heartbeat can wait behind a long write on SQLite).
        Worker ids are never empty, so the default excludes nobody. `proceed()`, asked once
        the write lock is held, can call the rescue off (the caller saw the database stall:
        the silence may be the stall's, not the workers'). A job lent to a private runner
        (`JobAdmin.lend_pending`) goes back to its home queue with its home's attempts.
        `held()`, asked then too, gives
        the ids of the jobs the caller holds: its other silent jobs are orphans of a claim
        whose answer it never got, and are given back as well."""
        message = f"{LOST_MESSAGE} {grace_s:g}s"
        with self.engine.begin() as conn:
            if proceed is not None and not proceed():
                return []
            now = self.clock.now()
            rows = self.backend.rescue(
                conn,
                now=now,
                cutoff=now - timedelta(seconds=grace_s),
                message=message,
                alive=alive,
                held=None if held is None else (sorted(held()) or [-1]),  # ids are positive
            )
            if rows:
                # Wake the idle workers of the queues the jobs are pending on again (a job
                # lent to a vanished private runner: its home's).
                self.backend.notify(conn, sorted({r.queue for r in rows if r.status == "pending"}))
                conn.execute(
                    insert(job_logs),
                    [
                        {
                            "job_id": r.id,
                            "job_type": log_type_of(r.type),
                            "tenant_id": r.tenant_id,
                            "status": "lost",
                            "attempt": r.attempts,
                            "started_at": r.started_at or now,
                            "completed_at": now,
                            "duration_ms": _ms((now - (r.started_at or now)).total_seconds()),
                            "records_processed": 0,
                            "error_message": message,
                            "metadata": {"nextStatus": r.status},
                        }
                        for r in rows
                    ],
                )
        return [r.id for r in rows]

    def release(self, worker_id: str, jobs_: list[ClaimedJob], log_type_of) -> list[int]:
        """Put back jobs a stopping worker did not finish (the attempt is not counted)."""
        now = self.clock.now()
        released = []
        with self.engine.begin() as conn:
            for job in jobs_:
                if self.backend.release(
                    conn, worker_id=worker_id, job_id=job.id, attempt=job.attempt, now=now
                ):
                    released.append(job.id)
                    conn.execute(
                        insert(job_logs),
                        {
                            "job_id": job.id,
                            "job_type": log_type_of(job.type),
                            "tenant_id": job.tenant_id,
                            "status": "interrupted",
                            "attempt": job.attempt,
                            "started_at": job.started_at,
                            "completed_at": now,
                            "duration_ms": _ms((now - job.started_at).total_seconds()),
                            "records_processed": 0,
                            "error_message": "worker shut down before the job finished",
                            "metadata": None,
                        },
                    )
        return released


def _ms(seconds: float) -> int:
    return max(0, int(round(seconds * 1000)))
