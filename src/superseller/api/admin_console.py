"""The operator console's admin API, under `/api/admin/jobs` (admins): filtered job search
with keyset pages, capped counts per state (the cheap endpoint pages poll), actions on a
filtered set, run again, run a schedule now, the audit trail and hourly throughput.

Included before `admin_jobs` so that `/search`, `/counts`, `/audit`… are never read as a
job id.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from superseller.api.auth import require_admin
from superseller.api.deps import MAX_ID, id_path, services
from superseller.api.errors import ApiError
from superseller.jobs import audit, pause, stats
from superseller.jobs.admin import COUNT_CAP, JOB_STATES, JobAdmin, JobFilter
from superseller.jobs.cron import zone
from superseller.jobs.queue import Queue
from superseller.jobs.scheduler import Scheduler
from superseller.jobs.schedules import Schedules
from superseller.limits import DATE_MAX, DATE_MIN, JOB_TYPE_MAX_LEN, QUEUE_MAX_LEN
from superseller.users.accounts import User

router = APIRouter(prefix="/api/admin/jobs", tags=["admin jobs"])

CONSOLE_TZ = "America/Sao_Paulo"  # local days in filters are the sellers' days


# -- response models -----------------------------------------------------------
class Job(BaseModel):
    """A row of `jobs` (times ISO 8601, UTC)."""

    model_config = ConfigDict(extra="allow")
    id: int
    type: str
    queue: str
    tenant_id: str | None
    payload: dict[str, Any]
    status: Literal["pending", "running", "completed", "failed", "cancelled"]
    priority: int
    run_at: str
    attempts: int
    max_attempts: int
    unique_key: str | None = None
    lock_key: str | None = None
    cancel_requested: bool
    last_error: str | None = None
    result: dict[str, Any] | None = None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    schedule_id: int | None = None
    scheduled_for: str | None = None


class JobLog(BaseModel):
    """A row of `job_logs`: one attempt."""

    model_config = ConfigDict(extra="allow")
    id: int
    job_id: int
    job_type: str
    tenant_id: str | None
    status: Literal["success", "error", "timeout", "cancelled", "lost", "interrupted"]
    attempt: int
    started_at: str
    completed_at: str
    duration_ms: int
    records_processed: int
    error_message: str | None
    metadata: dict[str, Any] | None


class JobLogs(BaseModel):
    logs: list[JobLog]


class JobList(BaseModel):
    jobs: list[Job]
    nextBefore: int | None = Field(description="pass as `before` for the next page")


class Created(BaseModel):
    job: Job
    created: bool = Field(description="false: an unfinished job with the same uniqueKey")


class Cancelled(BaseModel):
    outcome: Literal["cancelled", "cancel_requested"]
    job: Job


class NextPage(BaseModel):
    before: int = Field(description="pass as `before`")
    beforeFinished: str | None = Field(None, description="pass as `beforeFinished` (sort=finished)")


class JobPage(BaseModel):
    jobs: list[Job]
    next: NextPage | None = Field(description="the next page's keys; null on the last page")


class EngineState(BaseModel):
    paused: bool
    reason: str | None
    changedAt: str | None


class Counts(BaseModel):
    byState: dict[str, int] = Field(description="jobs per state under the filter (state aside)")
    capped: list[str] = Field(description="states with more than `cap` jobs (shown as cap+)")
    cap: int
    finishedWindowHours: int | None = Field(
        description="finished jobs counted over the last N hours (null: the filter's window, "
        "or allTime)"
    )
    latestId: int | None = Field(description="the newest job under the filter")
    engine: EngineState


class BulkResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    cancelled: int | None = None
    cancelRequested: int | None = None
    retried: int | None = None


class RunNow(BaseModel):
    schedule: str
    job: Job


class AuditEntry(BaseModel):
    id: int
    at: str
    actor: str = Field(description="a user's email, or `cli`, `internal-key`, `scheduler`")
    action: str
    target_type: Literal["job", "jobs", "schedule", "engine"]
    target_id: str | None
    detail: dict[str, Any] | None


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    nextBefore: int | None


class HourBucket(BaseModel):
    hour: str
    jobType: str
    runs: int
    failures: int


class Hourly(BaseModel):
    hours: int
    since: str
    buckets: list[HourBucket]


# -- who acts ------------------------------------------------------------------
def actor(request: Request, user: User = Depends(require_admin)) -> str:
    """The acting admin's email (recorded in the audit trail)."""
    request.state.actor = user.email
    return user.email


def admin_for(request: Request) -> JobAdmin:
    """A JobAdmin that audits as the logged-in admin (after `actor` ran)."""
    svc = services(request)
    return JobAdmin(svc.engine, svc.clock, actor=getattr(request.state, "actor", None))


# -- filters -------------------------------------------------------------------
def moment(value: str | None, name: str, end: bool = False) -> datetime | None:
    """`YYYY-MM-DD` (a local day in São Paulo; as an upper bound, the whole day) or an ISO
    date-time with an offset."""
    if value is None or value == "":
        return None
    bad = ApiError(
        422,
        "invalid_request",
        f"{name} must be a date YYYY-MM-DD or a date-time with an offset",
        [{"field": name, "problem": "not a date or date-time with offset"}],
    )
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            if end:
                day += timedelta(days=1)
            at = datetime.combine(day, time.min, zone(CONSOLE_TZ))
        else:
            at = datetime.fromisoformat(value)
    except ValueError:
        raise bad from None
    if at.tzinfo is None:
        raise bad
    if not DATE_MIN <= at.date() <= DATE_MAX + timedelta(days=1):
        raise ApiError(
            422,
            "invalid_request",
            f"{name} must be between {DATE_MIN} and {DATE_MAX}",
            [{"field": name, "problem": "out of range"}],
        )
    return at.astimezone(UTC)


def job_filter(
    state: Literal[JOB_STATES] | None = None,  # type: ignore[valid-type]
    type: str | None = Query(None, max_length=JOB_TYPE_MAX_LEN),
    tenantId: str | None = Query(None, max_length=64),
    queue: str | None = Query(None, max_length=QUEUE_MAX_LEN),
    createdFrom: str | None = Query(None, max_length=40, description="YYYY-MM-DD or date-time"),
    createdTo: str | None = Query(None, max_length=40, description="inclusive day, or date-time"),
    finishedFrom: str | None = Query(None, max_length=40),
    finishedTo: str | None = Query(None, max_length=40),
) -> JobFilter:
    f = JobFilter(
        status=state,
        job_type=type or None,
        tenant_id=tenantId or None,
        queue=queue or None,
        created_from=moment(createdFrom, "createdFrom"),
        created_to=moment(createdTo, "createdTo", end=True),
        finished_from=moment(finishedFrom, "finishedFrom"),
        finished_to=moment(finishedTo, "finishedTo", end=True),
    )
    for lo, hi, name in (
        (f.created_from, f.created_to, "createdTo"),
        (f.finished_from, f.finished_to, "finishedTo"),
    ):
        if lo is not None and hi is not None and hi <= lo:
            raise ApiError(
                422,
                "invalid_request",
                f"{name} is before its start",
                [{"field": name, "problem": "before the start"}],
            )
    return f


def next_page(rows: list[dict], limit: int, sort: str) -> dict | None:
    if len(rows) < limit:
        return None
    last = rows[-1]
    return {
        "before": last["id"],
        "beforeFinished": last["finished_at"] if sort == "finished" else None,
    }


# -- routes --------------------------------------------------------------------
@router.get("/search", response_model=JobPage, dependencies=[Depends(require_admin)])
def search_jobs(
    request: Request,
    f: JobFilter = Depends(job_filter),
    sort: Literal["created", "finished"] = "created",
    limit: int = Query(50, ge=1, le=500),
    before: int | None = Query(None, ge=1, le=MAX_ID, description="keyset: `next.before`"),
    beforeFinished: str | None = Query(None, max_length=40, description="`next.beforeFinished`"),
):
    """Jobs under the filter, newest first (`sort=created`) or last finished first
    (`sort=finished`, finished jobs only); keyset pages."""
    svc = services(request)
    rows = JobAdmin(svc.engine, svc.clock).search(
        f,
        sort=sort,
        limit=limit,
        before_id=before,
        before_finished=moment(beforeFinished, "beforeFinished"),
    )
    return {"jobs": rows, "next": next_page(rows, limit, sort)}


@router.get("/counts", response_model=Counts, dependencies=[Depends(require_admin)])
def count_jobs(
    request: Request,
    f: JobFilter = Depends(job_filter),
    allTime: bool = Query(False, description="finished jobs of any age (bulk confirmations)"),
):
    """Jobs per state under the filter, each counted up to a cap (finished ones over the
    last 24 h unless the filter has a time window or `allTime`), the newest job's id and
    whether the engine is paused: cheap enough to poll every few seconds."""
    svc = services(request)
    admin = JobAdmin(svc.engine, svc.clock)
    return {
        **admin.counts(f, COUNT_CAP, all_time=allTime),
        "latestId": admin.latest_id(f),
        "engine": pause.state(svc.engine),
    }


@router.post("/bulk/cancel", response_model=BulkResult, dependencies=[Depends(actor)])
def bulk_cancel(request: Request, f: JobFilter = Depends(job_filter)):
    """Cancel every pending job under the filter (query parameters as for `/search`) and ask
    the running ones to stop. Audited with the filter and the numbers."""
    return admin_for(request).bulk_cancel(_bulk_scope(f))


@router.post("/bulk/retry", response_model=BulkResult, dependencies=[Depends(actor)])
def bulk_retry(request: Request, f: JobFilter = Depends(job_filter)):
    """Re-queue every failed or cancelled job under the filter, except permanent failures
    (retrying cannot fix them) and jobs whose unique key a live job holds."""
    return admin_for(request).bulk_retry(_bulk_scope(f))


def _bulk_scope(f: JobFilter) -> JobFilter:
    if f == JobFilter():
        raise ApiError(
            422, "invalid_request", "a bulk action needs at least one filter (e.g. state or type)"
        )
    return f


@router.get("/audit", response_model=AuditPage, dependencies=[Depends(require_admin)])
def audit_trail(
    request: Request,
    actor_: str | None = Query(None, alias="actor", max_length=254),
    action: str | None = Query(None, max_length=64),
    targetType: Literal["job", "jobs", "schedule", "engine"] | None = None,
    targetId: str | None = Query(None, max_length=100),
    limit: int = Query(50, ge=1, le=500),
    before: int | None = Query(None, ge=1, le=MAX_ID),
):
    """Who did what to which job, schedule or the engine, newest first; keyset pages."""
    rows = audit.entries(
        services(request).engine,
        actor=actor_,
        action=action,
        target_type=targetType,
        target_id=targetId,
        limit=limit,
        before_id=before,
    )
    return {"entries": rows, "nextBefore": rows[-1]["id"] if len(rows) == limit else None}


@router.get("/stats/hourly", response_model=Hourly, dependencies=[Depends(require_admin)])
def hourly(
    request: Request,
    hours: int = Query(24, ge=1, le=24 * 31),
    type: str | None = Query(None, max_length=JOB_TYPE_MAX_LEN),
):
    """Runs and failures per UTC hour and job type over the last `hours`, from the
    maintained hourly counters (plus the unfolded tail)."""
    svc = services(request)
    stats.fold(svc.engine, svc.clock)
    return stats.hourly(svc.engine, hours, job_type=type, clock=svc.clock)


@router.post(
    "/schedules/{schedule_id}/run-now",
    status_code=201,
    response_model=RunNow,
    dependencies=[Depends(actor)],
)
def run_schedule_now(request: Request, schedule_id: int = id_path("schedule id")):
    """Enqueue one run of the schedule now (recorded in its ledger as a tick at this instant)."""
    svc = services(request)
    name = Schedules(svc.engine, svc.registry, svc.clock).get(schedule_id)["name"]
    job_id = Scheduler(svc.engine, svc.registry, clock=svc.clock).run_now(name)
    audit.record(
        svc.engine,
        request.state.actor,
        "schedule.run_now",
        "schedule",
        name,
        {"jobId": job_id},
        svc.clock,
    )
    return {"schedule": name, "job": JobAdmin(svc.engine, svc.clock).get(job_id)}


@router.post(
    "/{job_id}/run-again", status_code=201, response_model=Job, dependencies=[Depends(actor)]
)
def run_again(request: Request, job_id: int = id_path("job id")):
    """A new job with the same type, payload, tenant, queue and priority as a finished one."""
    svc = services(request)
    return admin_for(request).run_again(job_id, Queue(svc.engine, svc.registry, svc.clock))
