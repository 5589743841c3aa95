"""The PostgreSQL backend: row locks with SKIP LOCKED, a finish batch in one statement,
LISTEN/NOTIFY wake-ups, advisory locks. Statements: `postgres_sql`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import psycopg
from sqlalchemy import Connection, Engine, Select, Table, func
from sqlalchemy import exc as sa_exc
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

    def _claim_statement(self, worker_id, limit, now, queues, tenant_cap, scan, exclude):
        params = {"limit": limit, "worker": worker_id, "now": now}
        if tenant_cap:
            params["tenant_cap"] = tenant_cap
            params["scan"] = scan
        kind = queue_filter(params, queues, exclude)
        return self._CLAIMS[(tenant_cap > 0, kind)], params

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
        stmt, params = self._claim_statement(
            worker_id, limit, now, queues, tenant_cap, scan, exclude
        )
        return claimed_jobs(conn.exec_driver_sql(stmt, params).all(), _load_payload, now)

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
        """One network round trip instead of four: BEGIN, the planner setting, the finish
        and the claim go out together in psycopg's pipeline mode, on the connection's
        own cursors (their rows are plain tuples). The statements run in order, in the
        caller's transaction, exactly as sent one by one; the first error aborts the
        rest and is raised as SQLAlchemy's, as `exec_driver_sql` would."""
        raw = conn.connection.driver_connection
        finish = (sql.FINISH, self._finish_params(worker_id, outcomes)) if outcomes else None
        claim = None
        if limit > 0:
            claim = self._claim_statement(worker_id, limit, now, queues, tenant_cap, scan, exclude)
        # The error names every statement of the pipeline: the first failure aborts the
        # rest, and psycopg does not say which one it was.
        statement = "\n".join(s[0] for s in (finish, claim) if s) or sql.HOT_PATH_PLANNER
        try:
            with raw.pipeline():
                raw.execute(sql.HOT_PATH_PLANNER)
                finished = raw.execute(*finish) if finish else None
                claimed = raw.execute(*claim) if claim else None
            applied = {row[0] for row in finished.fetchall()} if finished else set()
            rows = claimed.fetchall() if claimed else []
        except psycopg.Error as exc:
            lost = conn.dialect.is_disconnect(exc, raw, None)
            if lost:
                conn.invalidate(exc)
            raise sa_exc.DBAPIError.instance(
                statement,
                None,
                exc,
                psycopg.Error,
                hide_parameters=True,
                connection_invalidated=lost,
                dialect=conn.dialect,
            ) from exc
        return applied, claimed_jobs(rows, _load_payload, now)

    def finish(self, conn: Connection, worker_id: str, outcomes: Sequence[Outcome]) -> set[int]:
        params = self._finish_params(worker_id, outcomes)
        return {row[0] for row in conn.exec_driver_sql(sql.FINISH, params).fetchall()}

    def _finish_params(self, worker_id: str, outcomes: Sequence[Outcome]) -> dict:
        # One JSON document for the batch. A key whose value is NULL (or, for `records`, 0)
        # is left out: jsonb_to_recordset reads a missing key as NULL, and most outcomes
        # are a success without result, error, retry or metadata.
        rows = []
        for o in outcomes:
            job = o.job
            row = {
                "id": job.id,
                "attempt": job.attempt,
                "status": o.status,
                "completed_at": o.completed_at.isoformat(),
                "log_type": o.log_type,
                "log_status": o.log_status,
                "started_at": job.started_iso,
                "duration_ms": o.duration_ms,
            }
            if o.result is not None:
                row["result"] = o.result
            if o.error is not None:
                row["error"] = o.error
            if o.retry_at is not None:
                row["run_at"] = o.retry_at.isoformat()
            if o.records:
                row["records"] = o.records
            if o.result or job.scheduled_for is not None or o.retry_at is not None:
                row["meta"] = o.metadata
            if not o.counted:  # rare (a lost connection)
                row["uncounted"] = True
            rows.append(row)
        return {"data": json.dumps(rows), "worker": worker_id}

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
            for key in ("tenant_id", "lock_key", "schedule_id", "home_queue", "home_max_attempts"):
                if r.get(key) is not None:
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
