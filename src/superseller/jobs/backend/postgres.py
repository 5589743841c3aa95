"""The PostgreSQL backend: row locks with SKIP LOCKED, a finish batch in one statement,
LISTEN/NOTIFY wake-ups, advisory locks. Statements: `postgres_sql`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine, Select, Table, func
from sqlalchemy.dialects import postgresql

from superseller.jobs.backend import postgres_sql as sql
from superseller.jobs.backend.base import (
    Backend,
    ClaimedJob,
    Outcome,
    claimed_jobs,
    queue_filter,
)

NOTIFY_CHANNEL = sql.NOTIFY_CHANNEL


def _load_payload(text_: str | None) -> dict:
    """A claimed job's payload from its JSON text; most payloads are empty objects."""
    if not text_ or text_ == "{}":
        return {}
    return json.loads(text_)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # as db.types.UTCDateTime: never guess a zone
        raise ValueError("naive datetime given where an aware one is required")
    return value.isoformat()


_FILTERS = {None: "", "queues": sql.QUEUE_FILTER, "exclude": sql.EXCLUDE_FILTER}


class PostgresBackend(Backend):
    name = "postgresql"
    listens = True
    concurrent_writers = True

    _CLAIMS = {
        (fair, kind): (sql.FAIR_CLAIM if fair else sql.CLAIM).format(queue_filter=where)
        for fair in (False, True)
        for kind, where in _FILTERS.items()
    }

    def begin_hot_path(self, conn: Connection) -> None:
        conn.exec_driver_sql(sql.HOT_PATH_PLANNER)

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
        params = {"limit": limit, "worker": worker_id, "now": now}
        if tenant_cap:
            params["tenant_cap"] = tenant_cap
            params["scan"] = scan
        kind = queue_filter(params, queues, exclude)
        stmt = self._CLAIMS[(tenant_cap > 0, kind)]
        return claimed_jobs(conn.exec_driver_sql(stmt, params).all(), _load_payload, now)

    def finish(self, conn: Connection, worker_id: str, outcomes: Sequence[Outcome]) -> set[int]:
        rows = [
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
        for row, o in zip(rows, outcomes, strict=True):
            if not o.counted:  # rare (a lost connection): the common row stays as it was
                row["uncounted"] = True
        data = json.dumps(rows)
        params = {"data": data, "ids": [o.job.id for o in outcomes], "worker": worker_id}
        return {row[0] for row in conn.exec_driver_sql(sql.FINISH, params).fetchall()}

    def insert_jobs(self, conn: Connection, rows: Sequence[dict]) -> list[int]:
        if len(rows) < 2:
            return super().insert_jobs(conn, rows)
        # One JSON document for the batch, carrying only what differs from the statement's
        # defaults: a missing key is NULL, and NULL means "as created" (run_at), "{}"
        # (payload) or "none" (the optional columns). Rows enqueued together usually share
        # their creation instant, which then travels once, as a parameter.
        created = rows[0]["created_at"]
        shared = all(r["created_at"] is created for r in rows) or all(
            r["created_at"] == created for r in rows
        )
        docs = []
        for n, r in enumerate(rows):
            d = {"n": n, "type": r["type"], "queue": r["queue"]}
            d["max_attempts"] = r["max_attempts"]
            if r["timeout_s"] is not None:
                d["timeout_s"] = r["timeout_s"]
            if r["priority"]:
                d["priority"] = r["priority"]
            for key in ("tenant_id", "lock_key", "schedule_id"):
                if r[key] is not None:
                    d[key] = r[key]
            if r["payload"]:
                d["payload"] = r["payload"]
            if not shared:
                d["created_at"] = _iso(r["created_at"])
            if r["run_at"] is not created and r["run_at"] != r["created_at"]:
                d["run_at"] = _iso(r["run_at"])
            if r["scheduled_for"] is not None:
                d["scheduled_for"] = _iso(r["scheduled_for"])
            docs.append(d)
        params = {"data": json.dumps(docs), "created_at": _iso(created) if shared else None}
        # Ids come from the sequence in the statement's ORDER BY: ascending is batch order.
        return sorted(conn.exec_driver_sql(sql.INSERT_JOBS, params).scalars().all())

    def heartbeat(
        self, conn: Connection, worker_id: str, job_ids: Sequence[int], now: datetime
    ) -> list[tuple[int, bool]]:
        params = {"now": now, "worker": worker_id, "ids": list(job_ids)}
        return [(r[0], bool(r[1])) for r in conn.exec_driver_sql(sql.HEARTBEAT, params)]

    def rescue(self, conn, *, now, cutoff, message, alive, held=None):
        params = {"now": now, "cutoff": cutoff, "message": message, "alive": alive}
        stmt = sql.RESCUE_OTHERS
        if held is not None:
            params["held"] = list(held)
            stmt = sql.RESCUE_ORPHANS
        return conn.exec_driver_sql(stmt, params).all()

    def release(self, conn, *, worker_id, job_id, attempt, now) -> bool:
        params = {"now": now, "id": job_id, "attempt": attempt, "worker": worker_id}
        return bool(conn.exec_driver_sql(sql.RELEASE, params).rowcount)

    def notify(self, conn: Connection, queues: Sequence[str]) -> None:
        for queue in queues:
            conn.exec_driver_sql(sql.NOTIFY, {"channel": NOTIFY_CHANNEL, "queue": queue})

    def listener(self, engine, queues, wake, watch):
        from superseller.jobs.listener import Listener  # psycopg's LISTEN loop

        return Listener(engine, queues, wake, watch)

    def insert_on_conflict(self, table: Table):
        return postgresql.insert(table)

    def hour_bucket(self, column):
        return func.date_trunc("hour", column)

    def skip_locked(self, stmt: Select) -> Select:
        return stmt.with_for_update(skip_locked=True)

    def snapshot(self, engine: Engine) -> Connection:
        return engine.connect().execution_options(isolation_level="REPEATABLE READ")

    def transaction_lock(self, conn: Connection, key: str) -> None:
        conn.exec_driver_sql(sql.TRANSACTION_LOCK, {"key": key})
