"""Job type `cleanup`: retention for finished jobs and job logs, in bounded batches."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select

from superseller.db.schema import FINISHED_STATES, audit_log, job_logs, jobs
from superseller.jobs.context import JobContext
from superseller.jobs.registry import JobType, Registry


class CleanupPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jobDays: int | None = Field(default=None, ge=1, le=36_500)
    logDays: int | None = Field(default=None, ge=1, le=36_500)
    batchSize: int = Field(default=1000, ge=1, le=50_000)


def _delete_in_batches(ctx: JobContext, table, where, batch: int) -> int:
    """Delete matching rows `batch` at a time, each batch its own short transaction."""
    total = 0
    while True:
        ids = select(table.c.id).where(*where).limit(batch).scalar_subquery()
        with ctx.engine.begin() as conn:
            n = conn.execute(delete(table).where(table.c.id.in_(ids))).rowcount
        total += n
        ctx.add_records(n)
        if n < batch or ctx.cancelled:
            return total


def register(registry: Registry, *, job_days: int = 30, log_days: int = 60) -> None:
    def cleanup(ctx: JobContext) -> dict:
        p: CleanupPayload = ctx.payload
        now = ctx.clock.now()
        jdays, ldays = p.jobDays or job_days, p.logDays or log_days
        job_cutoff = now - timedelta(days=jdays)
        log_cutoff = now - timedelta(days=ldays)
        deleted_jobs = _delete_in_batches(
            ctx,
            jobs,
            (jobs.c.status.in_(FINISHED_STATES), jobs.c.finished_at < job_cutoff),
            p.batchSize,
        )
        deleted_logs = _delete_in_batches(
            ctx, job_logs, (job_logs.c.started_at < log_cutoff,), p.batchSize
        )
        deleted_audit = _delete_in_batches(
            ctx, audit_log, (audit_log.c.at < log_cutoff,), p.batchSize
        )  # the audit trail is kept as long as job logs
        ctx.raise_if_cancelled()
        return {
            "auditDeleted": deleted_audit,
            "jobsDeleted": deleted_jobs,
            "jobLogsDeleted": deleted_logs,
            "jobDays": jdays,
            "logDays": ldays,
        }

    registry.add(
        JobType(
            name="cleanup",
            handler=cleanup,
            payload_model=CleanupPayload,
            lock_key=lambda _p, _t: "cleanup",
            description="Delete finished jobs and old job logs (retention).",
        )
    )
