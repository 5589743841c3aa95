"""Read-only questions other features ask about jobs and their runs (`job_logs`).

The API, the web pages, the metrics freshness and Prometheus read the job tables only
through this module, `JobAdmin` (one job, lists, counts) and `stats` (counters): the job
tables stay the engine's own, whatever database is behind them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from superseller.db.rows import row_dict
from superseller.db.schema import job_logs, jobs

UNFINISHED_STATES = ("pending", "running")


def recent_runs(
    engine: Engine, *, job_type: str | None = None, tenant_id: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """The latest `job_logs` rows (one per attempt), newest first."""
    stmt = select(job_logs).order_by(job_logs.c.id.desc()).limit(limit)
    if job_type:
        stmt = stmt.where(job_logs.c.job_type == job_type)
    if tenant_id is not None:
        stmt = stmt.where(job_logs.c.tenant_id == tenant_id)
    with engine.connect() as conn:
        return [row_dict(r) for r in conn.execute(stmt)]


def last_successful_runs(
    engine: Engine, job_types: list[str], tenant_id: str | None = None
) -> dict[str, dict[str, Any]]:
    """The latest successful run of each of `job_types` that has one, by type."""
    out = {}
    with engine.connect() as conn:
        for job_type in job_types:
            stmt = select(job_logs).where(
                job_logs.c.job_type == job_type, job_logs.c.status == "success"
            )
            if tenant_id is not None:
                stmt = stmt.where(job_logs.c.tenant_id == tenant_id)
            row = conn.execute(stmt.order_by(job_logs.c.started_at.desc()).limit(1)).first()
            if row is not None:
                out[job_type] = row_dict(row)
    return out


def last_run_id(engine: Engine, job_id: int) -> int | None:
    """The id of a job's latest run (its `job_logs` row), if it ran."""
    with engine.connect() as conn:
        return conn.execute(
            select(job_logs.c.id)
            .where(job_logs.c.job_id == job_id)
            .order_by(job_logs.c.id.desc())
            .limit(1)
        ).scalar()


def unfinished_by_type(engine: Engine) -> list[tuple[str, str, int]]:
    """`(state, type, count)` of pending and running jobs (few: partial indexes)."""
    with engine.connect() as conn:
        return [
            (status, job_type, n)
            for status, job_type, n in conn.execute(
                select(jobs.c.status, jobs.c.type, func.count())
                .where(jobs.c.status.in_(UNFINISHED_STATES))
                .group_by(jobs.c.status, jobs.c.type)
            )
        ]


def has_unfinished(engine: Engine, tenant_id: str) -> bool:
    """Whether a tenant has a pending or running job."""
    with engine.connect() as conn:
        return (
            conn.execute(
                select(jobs.c.id)
                .where(jobs.c.tenant_id == tenant_id, jobs.c.status.in_(UNFINISHED_STATES))
                .limit(1)
            ).first()
            is not None
        )
