"""The SQLite backend: one writer at a time (every write transaction begins IMMEDIATE),
so claims need no row locks and named locks are the write lock itself; workers poll
(no notifications). Statements: `sqlite_sql`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine, Select, Table, bindparam, func, insert, text
from sqlalchemy.dialects import sqlite

from superseller.db.schema import job_logs, jobs
from superseller.db.types import JSONType, UTCDateTime
from superseller.jobs.backend import sqlite_sql as sql
from superseller.jobs.backend.base import (
    Backend,
    ClaimedJob,
    Outcome,
    claimed_jobs,
    queue_filter,
)


def _dt(name: str):
    return bindparam(name, type_=UTCDateTime)


_FILTERS = {None: "", "queues": sql.QUEUE_FILTER, "exclude": sql.EXCLUDE_FILTER}


def _claim(template: str, kind: str | None):
    stmt = text(template.format(queue_filter=_FILTERS[kind]))
    params = [_dt("now")]
    if kind:
        params.append(bindparam(kind, expanding=True))
    return stmt.bindparams(*params).columns(payload=JSONType, scheduled_for=UTCDateTime)


def _as_payload(value: dict | None) -> dict:
    return value or {}


class SQLiteBackend(Backend):
    name = "sqlite"
    listens = False
    concurrent_writers = False

    def __init__(self) -> None:
        self._claims = {
            (fair, kind): _claim(sql.FAIR_CLAIM if fair else sql.CLAIM, kind)
            for fair in (False, True)
            for kind in _FILTERS
        }
        self._finish = text(sql.FINISH).bindparams(
            _dt("run_at"), _dt("completed"), bindparam("result", type_=JSONType)
        )
        self._heartbeat = text(sql.HEARTBEAT).bindparams(
            _dt("now"), bindparam("ids", expanding=True)
        )
        rescue = {"now": _dt("now"), "cutoff": _dt("cutoff")}
        self._rescue_others = (text(sql.RESCUE_OTHERS).bindparams(*rescue.values())).columns(
            started_at=UTCDateTime
        )
        self._rescue_orphans = (
            text(sql.RESCUE_ORPHANS)
            .bindparams(*rescue.values(), bindparam("held", expanding=True))
            .columns(started_at=UTCDateTime)
        )
        self._release = text(sql.RELEASE).bindparams(_dt("now"))

    def begin_hot_path(self, conn: Connection) -> None:
        """Nothing to tune."""

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
        stmt = self._claims[(tenant_cap > 0, kind)]
        return claimed_jobs(conn.execute(stmt, params).all(), _as_payload, now)

    def finish(self, conn: Connection, worker_id: str, outcomes: Sequence[Outcome]) -> set[int]:
        applied: set[int] = set()
        logs = []
        for o in outcomes:
            res = conn.execute(
                self._finish,
                {
                    "status": o.status,
                    "result": o.result,
                    "error": o.error,
                    "run_at": o.retry_at,
                    "completed": o.completed_at,
                    "id": o.job.id,
                    "attempt": o.job.attempt,
                    "worker": worker_id,
                    "uncounted": 0 if o.counted else 1,
                },
            )
            if res.rowcount:
                applied.add(o.job.id)
                logs.append(
                    {
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
                )
        if logs:
            conn.execute(insert(job_logs), logs)
        return applied

    def insert_jobs(self, conn: Connection, rows: Sequence[dict]) -> list[int]:
        if len(rows) < 2:
            return super().insert_jobs(conn, rows)
        # executemany (no RETURNING: SQLAlchemy would build a multi-row VALUES per batch).
        # The transaction holds the database's write lock, so the rows' ids are
        # consecutive and end at last_insert_rowid().
        conn.execute(insert(jobs), list(rows))
        last = conn.exec_driver_sql(sql.LAST_ID).scalar_one()
        return list(range(last - len(rows) + 1, last + 1))

    def heartbeat(
        self, conn: Connection, worker_id: str, job_ids: Sequence[int], now: datetime
    ) -> list[tuple[int, bool]]:
        params = {"now": now, "worker": worker_id, "ids": list(job_ids)}
        return [(r[0], bool(r[1])) for r in conn.execute(self._heartbeat, params)]

    def rescue(self, conn, *, now, cutoff, message, alive, held=None):
        params = {"now": now, "cutoff": cutoff, "message": message, "alive": alive}
        stmt = self._rescue_others
        if held is not None:
            params["held"] = list(held)
            stmt = self._rescue_orphans
        return conn.execute(stmt, params).all()

    def release(self, conn, *, worker_id, job_id, attempt, now) -> bool:
        params = {"now": now, "id": job_id, "attempt": attempt, "worker": worker_id}
        return bool(conn.execute(self._release, params).rowcount)

    def notify(self, conn: Connection, queues: Sequence[str]) -> None:
        """Nothing to send: SQLite workers poll."""

    def insert_on_conflict(self, table: Table):
        return sqlite.insert(table)

    def hour_bucket(self, column):
        return func.strftime(sql.HOUR_BUCKET_FORMAT, column)

    def skip_locked(self, stmt: Select) -> Select:
        return stmt  # the write transaction already excludes every other writer

    def transaction_lock(self, conn: Connection, key: str) -> None:
        """Nothing to take: a write transaction holds the database's write lock."""

    def snapshot(self, engine: Engine) -> Connection:
        # WAL: a deferred read transaction sees one snapshot from its first read on.
        return self.reader(engine)

    def reader(self, engine: Engine) -> Connection:
        # A deferred BEGIN: a plain read must not queue behind a held write lock.
        return engine.connect().execution_options(sqlite_deferred=True)
