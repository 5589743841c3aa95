"""Job state transitions in the database: claim, finish, heartbeat, rescue, release.

These are the hot paths of the engine, so they are written as a few set-based
statements. PostgreSQL claims with `FOR UPDATE SKIP LOCKED` and finishes a
whole batch (job rows and their job_logs rows) in one statement; SQLite does
the same work inside one short `BEGIN IMMEDIATE` transaction.

Every worker-side update is guarded on (status = 'running', attempts, worker_id):
a job that was rescued, cancelled or re-claimed in the meantime is never
overwritten by a late worker.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, insert, text
from sqlalchemy.exc import IntegrityError

from superseller.db.engine import is_postgres
from superseller.db.schema import job_logs
from superseller.db.types import JSONType, UTCDateTime
from superseller.jobs.clock import Clock, SystemClock

NOTIFY_CHANNEL = "superseller_jobs"


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
    log_status: str  # success | error | timeout | cancelled
    log_type: str
    completed_at: datetime
    duration_ms: int
    records: int = 0
    result: dict | None = None
    error: str | None = None
    retry_at: datetime | None = None

    @property
    def metadata(self) -> dict | None:
        meta: dict[str, Any] = dict(self.result or {})
        if self.job.scheduled_for is not None:
            meta.setdefault("scheduledFor", self.job.scheduled_for.isoformat())
        if self.retry_at is not None:
            meta["retryAt"] = self.retry_at.isoformat()
        return meta or None


_CLAIM_SQL = """
WITH candidates AS (
    SELECT c.id, c.lock_key, c.priority, c.run_at
    FROM jobs c
    WHERE c.status = 'pending' AND c.run_at <= :now {queue_filter}
      AND (c.lock_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM jobs r WHERE r.status = 'running' AND r.lock_key = c.lock_key))
    ORDER BY c.priority DESC, c.run_at, c.id
    LIMIT :limit
    {lock_clause}
), ranked AS (
    SELECT id, lock_key,
           row_number() OVER (PARTITION BY lock_key ORDER BY priority DESC, run_at, id) AS rn
    FROM candidates
)
UPDATE jobs
SET status = 'running', attempts = attempts + 1, worker_id = :worker,
    started_at = :now, heartbeat_at = :now
WHERE id IN (SELECT id FROM ranked WHERE lock_key IS NULL OR rn = 1)
RETURNING id, type, queue, tenant_id, payload, attempts, max_attempts, timeout_s,
          lock_key, scheduled_for, schedule_id
"""

# The fair claim (JOB_TENANT_MAX_RUNNING > 0): no tenant holds more than :tenant_cap running
# jobs, fleet-wide. Candidates skip tenants already at the cap (`busy`: the running jobs per
# tenant, counted once per claim — running jobs are few) and the pick ranks each tenant's candidates (`tn`) so that one
# claim never takes a tenant past it; the scan window is wider than the claim so that a
# tenant with thousands of pending jobs cannot fill it. Jobs without a tenant are uncapped.
_FAIR_CLAIM_SQL = """
WITH busy AS (
    SELECT b.tenant_id, count(*) AS n
    FROM jobs b
    WHERE b.status = 'running' AND b.tenant_id IS NOT NULL
    GROUP BY b.tenant_id
), candidates AS (
    SELECT c.id, c.lock_key, c.tenant_id, c.priority, c.run_at
    FROM jobs c
    WHERE c.status = 'pending' AND c.run_at <= :now {queue_filter}
      AND (c.lock_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM jobs r WHERE r.status = 'running' AND r.lock_key = c.lock_key))
      AND (c.tenant_id IS NULL OR c.tenant_id NOT IN (
            SELECT tenant_id FROM busy WHERE n >= :tenant_cap))
    ORDER BY c.priority DESC, c.run_at, c.id
    LIMIT :scan
    {lock_clause}
), ranked AS (
    SELECT k.id, k.tenant_id, k.priority, k.run_at, k.lock_key, COALESCE(u.n, 0) AS busy,
           row_number() OVER (PARTITION BY k.lock_key ORDER BY k.priority DESC, k.run_at, k.id)
               AS rn,
           row_number() OVER (PARTITION BY k.tenant_id ORDER BY k.priority DESC, k.run_at, k.id)
               AS tn
    FROM candidates k LEFT JOIN busy u ON u.tenant_id = k.tenant_id
), picked AS (
    SELECT id FROM ranked
    WHERE (lock_key IS NULL OR rn = 1) AND (tenant_id IS NULL OR busy + tn <= :tenant_cap)
    ORDER BY priority DESC, run_at, id
    LIMIT :limit
)
UPDATE jobs
SET status = 'running', attempts = attempts + 1, worker_id = :worker,
    started_at = :now, heartbeat_at = :now
WHERE id IN (SELECT id FROM picked)
RETURNING id, type, queue, tenant_id, payload, attempts, max_attempts, timeout_s,
          lock_key, scheduled_for, schedule_id
"""
SCAN_FACTOR = 4  # the fair claim looks at this many candidates per job it may take
FAIR_ROUNDS = 3  # ...and looks again this many times when tenants at their cap filled it

_PG_FINISH_SQL = """
WITH v AS (
    SELECT * FROM jsonb_to_recordset(CAST(:data AS jsonb)) AS v(
        id bigint, attempt int, status text, result jsonb, error text, run_at timestamptz,
        completed_at timestamptz, log_type text, log_status text, started_at timestamptz,
        duration_ms int, records int, meta jsonb)
), done AS (
    UPDATE jobs j
    SET status = v.status,
        result = v.result,
        last_error = v.error,
        run_at = COALESCE(v.run_at, j.run_at),
        finished_at = CASE WHEN v.status = 'pending' THEN NULL ELSE v.completed_at END,
        worker_id = NULL,
        heartbeat_at = NULL
    FROM v
    -- `j.id = ANY(...)` lets the planner probe the primary key instead of
    -- hashing v against a scan of the whole (and bloating) jobs table.
    WHERE j.id = ANY(CAST(:ids AS bigint[])) AND j.id = v.id AND j.attempts = v.attempt
      AND {owned}
    RETURNING j.id, j.tenant_id
)
INSERT INTO job_logs (job_id, job_type, tenant_id, status, attempt, started_at, completed_at,
                      duration_ms, records_processed, error_message, metadata)
SELECT v.id, v.log_type, done.tenant_id, v.log_status, v.attempt, v.started_at, v.completed_at,
       v.duration_ms, v.records, v.error, v.meta
FROM v JOIN done ON done.id = v.id
RETURNING job_id
"""

_SQLITE_FINISH_SQL = """
UPDATE jobs
SET status = :status, result = :result, last_error = :error,
    run_at = COALESCE(:run_at, run_at),
    finished_at = CASE WHEN :status = 'pending' THEN NULL ELSE :completed END,
    worker_id = NULL, heartbeat_at = NULL
WHERE id = :id AND attempts = :attempt AND {owned}
"""

# Who may record an attempt's end: the worker that holds the job, or, fenced by the
# attempt number, the worker whose job was rescued while its outcome waited to be
# written (a stall, an outage) and that nobody has started again since.
_LOST_MESSAGE = "worker lost: no heartbeat for"
_OWNED = f"""(
    (status = 'running' AND worker_id = :worker)
    OR (status IN ('pending', 'failed') AND worker_id IS NULL AND NOT cancel_requested
        AND last_error LIKE '{_LOST_MESSAGE}%'))"""
_PG_FINISH_SQL = _PG_FINISH_SQL.format(
    owned=_OWNED.replace("status", "j.status")
    .replace("worker_id", "j.worker_id")
    .replace("cancel_requested", "j.cancel_requested")
    .replace("last_error", "j.last_error")
)
_SQLITE_FINISH_SQL = _SQLITE_FINISH_SQL.format(owned=_OWNED)

_RESCUE_SQL = """
UPDATE jobs
SET status = CASE WHEN cancel_requested THEN 'cancelled'
                  WHEN attempts < max_attempts THEN 'pending'
                  ELSE 'failed' END,
    finished_at = CASE WHEN cancel_requested OR attempts >= max_attempts THEN :now END,
    last_error = :message, worker_id = NULL, heartbeat_at = NULL, run_at = :now
WHERE status = 'running' AND heartbeat_at < :cutoff AND {whose}
RETURNING id, type, tenant_id, attempts, started_at, status
"""
# Others' silent jobs; and the caller's own silent jobs that it does not hold: a claim
# whose answer was lost with the connection (committed, but the worker never saw it).
_RESCUE_OTHERS_SQL = _RESCUE_SQL.format(whose="worker_id <> :alive")
_RESCUE_ORPHANS_SQL = _RESCUE_SQL.format(whose="(worker_id <> :alive OR id NOT IN :held)")

_RELEASE_SQL = """
UPDATE jobs
SET status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'pending' END,
    finished_at = CASE WHEN cancel_requested THEN :now END,
    attempts = CASE WHEN cancel_requested THEN attempts ELSE attempts - 1 END,
    worker_id = NULL, heartbeat_at = NULL, run_at = :now
WHERE id = :id AND status = 'running' AND attempts = :attempt AND worker_id = :worker
"""


def _dt(name: str):
    return bindparam(name, type_=UTCDateTime)


class JobStore:
    """Database operations of the worker side of the engine."""

    def __init__(self, engine: Engine, clock: Clock | None = None, tenant_max_running: int = 0):
        self.engine = engine
        self.clock = clock or SystemClock()
        self.pg = is_postgres(engine)
        # > 0: no tenant gets more running jobs than this across every worker (fairness).
        self.tenant_cap = max(0, tenant_max_running)
        self._claim_all = self._claim_statement(with_queues=False)
        self._claim_queues = self._claim_statement(with_queues=True)
        self._pg_all, self._pg_queues = _pg_claims(self.tenant_cap > 0)
        self._sqlite_finish = text(_SQLITE_FINISH_SQL).bindparams(
            _dt("run_at"), _dt("completed"), bindparam("result", type_=JSONType)
        )

    # -- claim ---------------------------------------------------------------
    def _claim_statement(self, with_queues: bool):
        sql = (_FAIR_CLAIM_SQL if self.tenant_cap else _CLAIM_SQL).format(
            queue_filter="AND c.queue IN :queues" if with_queues else "",
            lock_clause="FOR UPDATE SKIP LOCKED" if self.pg else "",
        )
        params = [_dt("now")]
        if with_queues:
            params.append(bindparam("queues", expanding=True))
        return text(sql).bindparams(*params).columns(payload=JSONType, scheduled_for=UTCDateTime)

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
    ) -> tuple[set[int], list[ClaimedJob]]:
        """Record finished attempts and claim the next batch in one transaction:
        one round trip and one commit per batch, the worker's whole conversation."""
        if not outcomes and limit <= 0:
            return set(), []
        for attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    if self.pg:
                        conn.exec_driver_sql(_PG_HOT_PATH_PLANNER)
                    applied = self._finish(conn, worker_id, outcomes) if outcomes else set()
                    claimed = (
                        self._claim(conn, worker_id, limit, queues)
                        if limit > 0 and attempt < 4
                        else []
                    )
                    return applied, claimed
            except IntegrityError:
                # Two workers picked different jobs sharing a lock_key at the same
                # moment; the unique index refused the second. Try again (the
                # last try only records outcomes).
                continue
        raise AssertionError("unreachable")

    def _claim(
        self, conn, worker_id: str, limit: int, queues: list[str] | None
    ) -> list[ClaimedJob]:
        params: dict[str, Any] = {"limit": limit, "worker": worker_id}
        if self.tenant_cap:
            params["tenant_cap"] = self.tenant_cap
            params["scan"] = limit * SCAN_FACTOR
        if queues:
            params["queues"] = list(queues)
        # Read the time only once the write lock is held (SQLite may have waited
        # for it): a stale heartbeat would invite a false rescue.
        now = params["now"] = self.clock.now()
        if self.pg:  # driver-level: psycopg returns aware datetimes; payload comes as text
            sql = self._pg_queues if queues else self._pg_all
            rows = conn.exec_driver_sql(sql, params).all()
            load = _load_payload
        else:
            stmt = self._claim_queues if queues else self._claim_all
            rows = conn.execute(stmt, params).all()
            load = _as_payload
        # Fair claim: a scan window filled by tenants at their cap yields a short batch; look
        # again (same transaction: the jobs just taken count as running and are no longer
        # pending) a few times while each look still finds something.
        for _ in range(FAIR_ROUNDS if self.tenant_cap else 0):
            if not rows or len(rows) >= limit:
                break
            params["limit"] = limit - len(rows)
            params["scan"] = params["limit"] * SCAN_FACTOR
            more = (
                conn.exec_driver_sql(sql, params).all()
                if self.pg
                else conn.execute(stmt, params).all()
            )
            if not more:
                break
            rows = [*rows, *more]
        # Positional: the RETURNING list's order (cheaper than named access per field).
        started_iso = now.isoformat()
        return [
            ClaimedJob(
                id_,
                type_,
                queue,
                tenant_id,
                load(payload),
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

    def _finish(self, conn, worker_id: str, outcomes: list[Outcome]) -> set[int]:
        if self.pg:
            return self._finish_pg(conn, worker_id, outcomes)
        return self._finish_sqlite(conn, worker_id, outcomes)

    def _finish_pg(self, conn, worker_id: str, outcomes: list[Outcome]) -> set[int]:
        # One JSON document for the whole batch: far cheaper to send than a
        # dozen typed arrays, and PostgreSQL unpacks it with jsonb_to_recordset.
        data = json.dumps(
            [
                {
                    "id": o.job.id,
                    "attempt": o.job.attempt,
                    "status": o.status,
                    "result": o.result,
                    "error": o.error,
                    "run_at": o.retry_at.isoformat() if o.retry_at else None,
                    "completed_at": o.completed_at.isoformat(),
                    "log_type": o.log_type,
                    "log_status": o.log_status,
                    "started_at": o.job.started_iso,
                    "duration_ms": o.duration_ms,
                    "records": o.records,
                    "meta": o.metadata,
                }
                for o in outcomes
            ]
        )
        params = {"data": data, "ids": [o.job.id for o in outcomes], "worker": worker_id}
        return {row[0] for row in conn.exec_driver_sql(_PG_FINISH_DRIVER_SQL, params).fetchall()}

    def _finish_sqlite(self, conn, worker_id: str, outcomes: list[Outcome]) -> set[int]:
        applied: set[int] = set()
        logs = []
        for o in outcomes:
            res = conn.execute(
                self._sqlite_finish,
                {
                    "status": o.status,
                    "result": o.result,
                    "error": o.error,
                    "run_at": o.retry_at,
                    "completed": o.completed_at,
                    "id": o.job.id,
                    "attempt": o.job.attempt,
                    "worker": worker_id,
                },
            )
            if res.rowcount:
                applied.add(o.job.id)
                logs.append(_log_row(o))
        if logs:
            conn.execute(insert(job_logs), logs)
        return applied

    # -- heartbeat, rescue, release -----------------------------------------
    def heartbeat(self, worker_id: str, job_ids: list[int]) -> tuple[set[int], set[int]]:
        """Touch running jobs; returns (still owned ids, ids with cancel requested)."""
        if not job_ids:
            return set(), set()
        stmt = text(
            "UPDATE jobs SET heartbeat_at = :now WHERE worker_id = :worker "
            "AND status = 'running' AND id IN :ids RETURNING id, cancel_requested"
        ).bindparams(_dt("now"), bindparam("ids", expanding=True))
        with self.engine.begin() as conn:
            now = self.clock.now()  # after the lock, as in claim()
            rows = conn.execute(stmt, {"now": now, "worker": worker_id, "ids": list(job_ids)}).all()
        return {r.id for r in rows}, {r.id for r in rows if r.cancel_requested}

    def rescue(
        self, grace_s: float, log_type_of, alive: str = "", proceed=None, held=None
    ) -> list[int]:
        """Give back running jobs whose worker stopped heart-beating `grace_s` ago.

        `alive` is the calling worker's id: it is running, so its own jobs are not lost even
        when their heartbeat is late (a heartbeat can wait behind a long write on SQLite).
        Worker ids are never empty, so the default excludes nobody. `proceed()`, asked once
        the write lock is held, can call the rescue off (the caller saw the database stall:
        the silence may be the stall's, not the workers'). `held()`, asked then too, gives
        the ids of the jobs the caller holds: its other silent jobs are orphans of a claim
        whose answer it never got, and are given back as well."""
        stmt = (
            text(_RESCUE_OTHERS_SQL if held is None else _RESCUE_ORPHANS_SQL)
            .bindparams(_dt("now"), _dt("cutoff"))
            .columns(started_at=UTCDateTime)
        )
        if held is not None:
            stmt = stmt.bindparams(bindparam("held", expanding=True))
        message = f"{_LOST_MESSAGE} {grace_s:g}s"
        with self.engine.begin() as conn:
            if proceed is not None and not proceed():
                return []
            now = self.clock.now()
            params = {
                "now": now,
                "cutoff": now - timedelta(seconds=grace_s),
                "message": message,
                "alive": alive,
            }
            if held is not None:
                params["held"] = sorted(held()) or [-1]  # ids are positive
            rows = conn.execute(stmt, params).all()
            if rows:
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
        stmt = text(_RELEASE_SQL).bindparams(_dt("now"))
        released = []
        with self.engine.begin() as conn:
            for job in jobs_:
                res = conn.execute(
                    stmt, {"now": now, "id": job.id, "attempt": job.attempt, "worker": worker_id}
                )
                if res.rowcount:
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


def _log_row(o: Outcome) -> dict:
    return {
        "job_id": o.job.id,
        "job_type": o.log_type,
        "tenant_id": o.job.tenant_id,
        "status": o.log_status,
        "attempt": o.job.attempt,
        "started_at": o.job.started_at,
        "completed_at": o.completed_at,
        "duration_ms": o.duration_ms,
        "records_processed": o.records,
        "error_message": o.error,
        "metadata": o.metadata,
    }


# Without statistics (a new or freshly filled table, before autovacuum's first
# ANALYZE) the planner takes the queue for tiny and answers a claim with a bitmap scan
# of *every* pending job plus a sort, and a finish with a bitmap scan of every index
# entry ever written for 'running' (bitmap scans never mark dead entries, so that grows
# with each job until vacuum). Plain index scans are what these statements need at any
# size: the claim reads its LIMIT in index order and both skip dead entries once seen.
_PG_HOT_PATH_PLANNER = "SET LOCAL enable_bitmapscan = off"


def _load_payload(text_: str | None) -> dict:
    """A claimed job's payload from its JSON text; most payloads are empty objects."""
    if not text_ or text_ == "{}":
        return {}
    return json.loads(text_)


def _as_payload(value: dict | None) -> dict:
    return value or {}


def _pg_named(sql: str) -> str:
    """`:name` placeholders to psycopg's `%(name)s`, for exec_driver_sql."""
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql)


_PG_FINISH_DRIVER_SQL = _pg_named(_PG_FINISH_SQL).replace("%'", "%%'")  # psycopg's escape


# psycopg would parse each payload with json.loads on bytes; text lets the common
# empty payload skip parsing altogether.
def _pg_claims(fair: bool) -> tuple[str, str]:
    """(all queues, some queues) claim statements for psycopg."""
    base = _FAIR_CLAIM_SQL if fair else _CLAIM_SQL
    sql = base.replace("tenant_id, payload,", "tenant_id, payload::text AS payload,")
    assert sql != base
    return (
        _pg_named(sql.format(queue_filter="", lock_clause="FOR UPDATE SKIP LOCKED")),
        _pg_named(
            sql.format(
                queue_filter="AND c.queue = ANY(:queues)", lock_clause="FOR UPDATE SKIP LOCKED"
            )
        ),
    )
