"""The admin jobs API of the seed's jobs system document, under `/api/admin/jobs` (admins).

Schedule routes are declared before `/{job_id}` so that `schedules` is never
read as a job id.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from superseller import limits
from superseller.api.admin_console import ActingAdmin, Actor, Reader, actor
from superseller.api.models import (
    AdminStats,
    Backfilled,
    Cancelled,
    Created,
    EngineState,
    Job,
    JobList,
    JobLogs,
    Occurrences,
    Schedule,
    ScheduleList,
)
from superseller.http.deps import MAX_ID, Services, Svc, body_within_limit, id_path
from superseller.http.errors import ApiError, invalid
from superseller.jobs import audit, pause, stats
from superseller.jobs.admin import JOB_STATES, JobAdmin, schedule_view, schedule_views
from superseller.jobs.queue import JobSpec
from superseller.jobs.scheduler import Scheduler
from superseller.jobs.schedules import Schedules
from superseller.tenant_jobs import enqueue_by_hand

router = APIRouter(
    prefix="/api/admin/jobs", tags=["admin jobs"], dependencies=[Depends(actor)]
)  # `actor`: admins only, and who acts is recorded in the audit trail

JobId = id_path("job id")
ScheduleId = id_path("schedule id")


def _scheduler(svc: Services) -> Scheduler:
    return Scheduler(svc.engine, svc.registry, clock=svc.clock)


@router.get("/stats", response_model=AdminStats)
def job_stats(svc: Svc):
    """Counts by state and queue (unfinished exactly, finished over 24 h), per-type run
    statistics from the maintained counters, and late schedules."""
    views = schedule_views(svc.engine, svc.registry, svc.clock)
    late = [s["name"] for s in views if (s["lateness"] or {}).get("late")]
    return {
        **stats.queue_counts(svc.engine, svc.clock),
        **stats.job_type_stats(svc.engine, svc.clock),
        "lateSchedules": late,
        "engine": pause.state(svc.engine),
    }


@router.get("", response_model=JobList)
def list_jobs(
    admin: Reader,
    state: Literal[JOB_STATES] | None = None,  # type: ignore[valid-type]
    type: str | None = Query(None, max_length=100),
    tenantId: str | None = Query(None, max_length=64),
    queue: str | None = Query(None, max_length=100),
    limit: int = Query(50, ge=1, le=500),
    before: int | None = Query(
        None, ge=1, le=MAX_ID, description="keyset: the last id of the previous page"
    ),
):
    """Newest first. The next page: `before=<nextBefore>`."""
    rows = admin.list(
        status=state, job_type=type, tenant_id=tenantId, queue=queue, limit=limit, before_id=before
    )
    return {"jobs": rows, "nextBefore": rows[-1]["id"] if len(rows) == limit else None}


class CreateJob(BaseModel):
    """Bounds from superseller.limits, shared with the CLI (the queue checks them again)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "metrics_aggregation",
                    "payload": {
                        "tenantId": "uuid-do-tenant",
                        "from": "2024-01-01",
                        "to": "2024-01-31",
                    },
                    "tenantId": "uuid-do-tenant",
                }
            ]
        },
    )
    type: str = Field(min_length=1, max_length=limits.JOB_TYPE_MAX_LEN)
    payload: dict[str, Any] = Field(default_factory=dict)
    tenantId: str | None = Field(default=None, min_length=1, max_length=limits.JOB_TENANT_MAX_LEN)
    queue: str | None = Field(default=None, min_length=1, max_length=limits.QUEUE_MAX_LEN)
    priority: int = Field(default=0, ge=limits.PRIORITY_MIN, le=limits.PRIORITY_MAX)
    maxAttempts: int | None = Field(default=None, ge=1, le=limits.MAX_ATTEMPTS_MAX)
    runAt: datetime | None = None
    uniqueKey: str | None = Field(default=None, min_length=1, max_length=limits.UNIQUE_KEY_MAX_LEN)


@router.post("", status_code=201, response_model=Created, dependencies=[Depends(body_within_limit)])
def create_job(body: CreateJob, svc: Svc, who: Actor):
    """Enqueue a job of a registered type (its payload is validated by the type's schema).
    It belongs to the tenant its payload names (`payload.tenantId`), else to `tenantId`:
    an unknown tenant is 404 `tenant_not_found`, two different ones 400
    `tenant_mismatch`, and nothing is stored. An unfinished job with the same
    `uniqueKey` is returned instead of a second one. Audited as `job.create`."""
    run_at = body.runAt
    if run_at is not None and run_at.tzinfo is None:
        raise invalid("runAt", "runAt needs a time zone offset", "naive datetime")
    limits.check_datetime(run_at, "runAt")  # before the UTC conversion, which could overflow
    spec = JobSpec(
        body.type,
        body.payload,
        tenant_id=body.tenantId,
        queue=body.queue,
        priority=body.priority,
        max_attempts=body.maxAttempts,
        unique_key=body.uniqueKey,
        run_at=run_at.astimezone(UTC) if run_at else None,
    )
    job = enqueue_by_hand(svc.engine, svc.registry, spec, who, svc.clock)
    return {"job": JobAdmin(svc.engine, svc.clock).get(job.id), "created": job.created}


class PauseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=500)


@router.post("/pause", response_model=EngineState)
def pause_engine(svc: Svc, who: Actor, body: PauseBody | None = None):
    """Stop claiming and scheduling everywhere (running jobs finish; nothing is lost)."""
    reason = body.reason if body else None
    audit.record(svc.engine, who, "engine.pause", "engine", None, {"reason": reason}, svc.clock)
    return pause.set_paused(svc.engine, True, reason, svc.clock)


@router.post("/resume", response_model=EngineState)
def resume_engine(svc: Svc, who: Actor):
    """Claim and schedule again; ticks due meanwhile meet their misfire policy."""
    audit.record(svc.engine, who, "engine.resume", "engine", None, None, svc.clock)
    return pause.set_paused(svc.engine, False, clock=svc.clock)


class QueuePauseBody(BaseModel):
    """Queues are free strings: any name of 1 to 100 characters, known or not yet used."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"queue": "mercadolivre", "reason": "ML fora do ar"}]},
    )
    queue: str = Field(min_length=1, max_length=limits.QUEUE_MAX_LEN)
    reason: str | None = Field(default=None, max_length=limits.REASON_MAX_LEN)


class QueueResumeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"queue": "slow"}]})
    queue: str = Field(min_length=1, max_length=limits.QUEUE_MAX_LEN)


@router.post("/queues/pause", response_model=EngineState)
def pause_queue(body: QueuePauseBody, svc: Svc, who: Actor):
    """Stop claiming from one queue: its jobs wait (running ones finish), other queues and
    the schedulers go on. Pausing it again replaces the reason. Workers see it within
    about a second."""
    return pause.set_queue_paused(svc.engine, body.queue, True, body.reason, who, svc.clock)


@router.post("/queues/resume", response_model=EngineState)
def resume_queue(body: QueueResumeBody, svc: Svc, who: Actor):
    """Claim from the queue again (a queue that is not paused stays as it is)."""
    return pause.set_queue_paused(svc.engine, body.queue, False, None, who, svc.clock)


# -- schedules (before /{job_id}) ----------------------------------------------
@router.get("/schedules", response_model=ScheduleList)
def list_schedules(svc: Svc):
    """Every schedule with its next run, last outcome and lateness."""
    return {"schedules": schedule_views(svc.engine, svc.registry, svc.clock)}


def _schedule_name(svc: Services, schedule_id: int) -> str:
    return Schedules(svc.engine, svc.registry, svc.clock).get(schedule_id)["name"]


class PatchSchedule(BaseModel):
    """Absent fields stay as they are. Fields whose column cannot be empty refuse `null`
    (422); `deadlineS`, `priority`, `maxAttempts` take `null` for "the default"."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"cron": "0 3 * * *", "timezone": "America/Sao_Paulo"}]},
    )
    enabled: bool = Field(default=None)
    cron: str = Field(default=None, min_length=1, max_length=120)
    timezone: str = Field(default=None, min_length=1, max_length=64)
    payload: dict[str, Any] = Field(default=None)
    misfirePolicy: Literal["latest", "all", "skip"] = Field(default=None)
    overlapPolicy: Literal["allow", "skip", "queue_one"] = Field(default=None)
    deadlineS: int | None = Field(default=None, ge=1, le=limits.DEADLINE_MAX_S)
    priority: int | None = Field(default=None, ge=limits.PRIORITY_MIN, le=limits.PRIORITY_MAX)
    maxAttempts: int | None = Field(default=None, ge=1, le=limits.MAX_ATTEMPTS_MAX)


_PATCH_FIELDS = {
    "misfirePolicy": "misfire_policy",
    "overlapPolicy": "overlap_policy",
    "deadlineS": "deadline_s",
    "maxAttempts": "max_attempts",
}


@router.patch(
    "/schedules/{schedule_id}",
    response_model=Schedule,
    dependencies=[Depends(body_within_limit)],
)
def patch_schedule(body: PatchSchedule, svc: Svc, who: Actor, schedule_id: int = ScheduleId):
    """Switch a schedule on or off, or change its cron, time zone or policies. Invalid cron
    or time zone: 400 with the reason; nothing is changed."""
    name = _schedule_name(svc, schedule_id)
    changes = {_PATCH_FIELDS.get(k, k): v for k, v in body.model_dump(exclude_unset=True).items()}
    if not changes:
        raise ApiError(422, "invalid_request", "nothing to change")
    updated = Schedules(svc.engine, svc.registry, svc.clock).update(name, **changes)
    audit.record(svc.engine, who, "schedule.update", "schedule", name, changes, svc.clock)
    return schedule_view(_scheduler(svc), updated)


@router.get("/schedules/{schedule_id}/occurrences", response_model=Occurrences)
def schedule_occurrences(
    svc: Svc, schedule_id: int = ScheduleId, limit: int = Query(50, ge=1, le=500)
):
    """The ledger: one row per tick with its outcome and job."""
    name = _schedule_name(svc, schedule_id)
    return {"schedule": name, "occurrences": _scheduler(svc).occurrences(name, limit=limit)}


class Backfill(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={"examples": [{"from": "2024-01-01", "to": "2024-01-31"}]},
    )
    from_: date = Field(alias="from")
    to: date
    mode: Literal["missing", "failed", "all"] = "missing"
    concurrency: int = Field(default=2, ge=1, le=20)


@router.post("/schedules/{schedule_id}/backfill", status_code=202, response_model=Backfilled)
def backfill(body: Backfill, svc: Svc, who: Actor, schedule_id: int = ScheduleId):
    """One job per tick of the range (local days, inclusive), by mode."""
    limits.check_range(body.from_, body.to)  # LimitError: 400, nothing enqueued
    name = _schedule_name(svc, schedule_id)
    done = _scheduler(svc).backfill(
        name, body.from_, body.to, mode=body.mode, concurrency=body.concurrency
    )
    detail = {"from": str(body.from_), "to": str(body.to), "mode": body.mode, "jobs": len(done)}
    audit.record(svc.engine, who, "schedule.backfill", "schedule", name, detail, svc.clock)
    return {"schedule": name, "enqueued": done}


# -- one job -------------------------------------------------------------------
@router.get("/{job_id}", response_model=Job)
def get_job(admin: Reader, job_id: int = JobId):
    return admin.get(job_id)


@router.get("/{job_id}/logs", response_model=JobLogs)
def job_logs(admin: Reader, job_id: int = JobId):
    """One job_logs row per attempt."""
    return {"logs": admin.logs(job_id)}


@router.post("/{job_id}/execute", response_model=Job)
def execute(admin: ActingAdmin, job_id: int = JobId):
    """Run a pending job now (make it due at once)."""
    return admin.run_now(job_id)


@router.post("/{job_id}/cancel", response_model=Cancelled)
def cancel(admin: ActingAdmin, job_id: int = JobId):
    """A pending job is cancelled at once; a running one is asked to stop."""
    outcome = admin.cancel(job_id)
    return {"outcome": outcome, "job": admin.get(job_id)}


@router.post("/{job_id}/retry", response_model=Job)
def retry(admin: ActingAdmin, job_id: int = JobId):
    """Re-queue a failed (dead-letter) or cancelled job with a fresh set of attempts."""
    return admin.retry(job_id)
