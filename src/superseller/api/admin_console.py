"""The operator console's admin API, under `/api/admin/jobs` (admins): filtered job search
with keyset pages, capped counts per state (the cheap endpoint pages poll), actions on a
filtered set, run again, run a schedule now, the audit trail and hourly throughput.

Included before `admin_jobs` so that `/search`, `/counts`, `/audit`… are never read as a
job id.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from superseller.api.models import (
    AuditPage,
    BulkResult,
    Counts,
    Hourly,
    Job,
    JobPage,
    RunNow,
)
from superseller.http.deps import MAX_ID, Svc, id_path
from superseller.http.errors import ApiError, invalid
from superseller.http.job_filters import Filter, moment, next_page
from superseller.http.sessions import AdminUser
from superseller.jobs import audit, pause, stats
from superseller.jobs.admin import BULK_COUNT_CAP, COUNT_CAP, JobAdmin, JobFilter
from superseller.jobs.queue import Queue
from superseller.jobs.scheduler import Scheduler
from superseller.jobs.schedules import Schedules
from superseller.limits import JOB_TYPE_MAX_LEN

router = APIRouter(prefix="/api/admin/jobs", tags=["admin jobs"])
MAX_WATCHED = 100  # job ids one counts poll may ask the states of (a page shows 50)


# -- who acts ------------------------------------------------------------------
def actor(request: Request, user: AdminUser) -> str:
    """The acting admin's email (recorded in the audit trail); admins only."""
    request.state.actor = user.email
    return user.email


Actor = Annotated[str, Depends(actor)]


def acting_admin(svc: Svc, who: Actor) -> JobAdmin:
    """A JobAdmin that audits as the logged-in admin."""
    return JobAdmin(svc.engine, svc.clock, actor=who)


ActingAdmin = Annotated[JobAdmin, Depends(acting_admin)]


def reader(svc: Svc, _: AdminUser) -> JobAdmin:
    """A JobAdmin for reading; admins only."""
    return JobAdmin(svc.engine, svc.clock)


Reader = Annotated[JobAdmin, Depends(reader)]


# -- routes --------------------------------------------------------------------
@router.get("/search", response_model=JobPage)
def search_jobs(
    admin: Reader,
    f: Filter,
    sort: Literal["created", "finished"] = "created",
    limit: int = Query(50, ge=1, le=500),
    before: int | None = Query(None, ge=1, le=MAX_ID, description="keyset: `next.before`"),
    beforeFinished: str | None = Query(None, max_length=40, description="`next.beforeFinished`"),
):
    """Jobs under the filter, newest first (`sort=created`) or last finished first
    (`sort=finished`, finished jobs only); keyset pages."""
    rows = admin.search(
        f,
        sort=sort,
        limit=limit,
        before_id=before,
        before_finished=moment(beforeFinished, "beforeFinished"),
    )
    return {"jobs": rows, "next": next_page(rows, limit, sort)}


@router.get("/counts", response_model=Counts)
def count_jobs(
    admin: Reader,
    svc: Svc,
    f: Filter,
    allTime: bool = Query(False, description="finished jobs of any age (bulk confirmations)"),
    retryable: bool = Query(False, description="also count what a bulk retry would re-queue"),
    cancellable: bool = Query(False, description="also count what a bulk cancel would touch"),
    ids: str | None = Query(
        None,
        max_length=MAX_WATCHED * 20,
        pattern=r"^[0-9]{1,19}(,[0-9]{1,19})*$",
        description=f"up to {MAX_WATCHED} comma-separated job ids: their states (`jobStates`)",
    ),
):
    """Jobs per state under the filter, each counted up to a cap (finished ones over the
    last 24 h unless the filter has a time window or `allTime`), the newest job's id,
    whether the engine and which queues are paused and, asked, the states of a page's
    visible rows (by primary key) and how many a bulk retry would re-queue or a bulk cancel
    would touch (up to 100,000: asked once per click, not polled): cheap enough to poll
    every few seconds."""
    watched = [int(i) for i in ids.split(",")] if ids else []
    if len(watched) > MAX_WATCHED or any(not 1 <= i <= MAX_ID for i in watched):
        raise invalid("ids", f"ids takes 1 to {MAX_WATCHED} job ids", "too many or out of range")
    return {
        **admin.counts(f, COUNT_CAP, all_time=allTime),
        "latestId": admin.latest_id(f),
        "engine": pause.state(svc.engine),
        # A bulk action's confirmation: exact up to BULK_COUNT_CAP (once per click).
        "retryable": admin.retryable(f, BULK_COUNT_CAP) if retryable else None,
        "cancellable": admin.cancellable(f) if cancellable else None,
        "jobStates": admin.states_of(watched) if ids else None,
    }


def _bulk_scope(f: Filter) -> JobFilter:
    if f == JobFilter():
        raise ApiError(
            422, "invalid_request", "a bulk action needs at least one filter (e.g. state or type)"
        )
    return f


BulkScope = Annotated[JobFilter, Depends(_bulk_scope)]


@router.post("/bulk/cancel", response_model=BulkResult, response_model_exclude_none=True)
def bulk_cancel(admin: ActingAdmin, f: BulkScope):
    """Cancel every pending job under the filter (query parameters as for `/search`) and ask
    the running ones to stop. Audited with the filter and the numbers."""
    return admin.bulk_cancel(f)


@router.post("/bulk/retry", response_model=BulkResult, response_model_exclude_none=True)
def bulk_retry(admin: ActingAdmin, f: BulkScope):
    """Re-queue every failed or cancelled job under the filter, except permanent failures
    (retrying cannot fix them) and jobs whose unique key a live job holds."""
    return admin.bulk_retry(f)


@router.get("/audit", response_model=AuditPage)
def audit_trail(
    svc: Svc,
    _: AdminUser,
    actor_: str | None = Query(None, alias="actor", max_length=254),
    action: str | None = Query(None, max_length=64),
    targetType: Literal["job", "jobs", "schedule", "engine", "queue"] | None = None,
    targetId: str | None = Query(None, max_length=100),
    limit: int = Query(50, ge=1, le=500),
    before: int | None = Query(None, ge=1, le=MAX_ID),
):
    """Who did what to which job, schedule or the engine, newest first; keyset pages."""
    rows = audit.entries(
        svc.engine,
        actor=actor_,
        action=action,
        target_type=targetType,
        target_id=targetId,
        limit=limit,
        before_id=before,
    )
    return {"entries": rows, "nextBefore": rows[-1]["id"] if len(rows) == limit else None}


@router.get("/stats/hourly", response_model=Hourly)
def hourly(
    svc: Svc,
    _: AdminUser,
    hours: int = Query(24, ge=1, le=24 * 31),
    type: str | None = Query(None, max_length=JOB_TYPE_MAX_LEN),
):
    """Runs and failures per UTC hour and job type over the last `hours`, from the
    maintained hourly counters (plus the unfolded tail)."""
    return stats.hourly(svc.engine, hours, job_type=type, clock=svc.clock)


@router.post("/schedules/{schedule_id}/run-now", status_code=201, response_model=RunNow)
def run_schedule_now(svc: Svc, who: Actor, schedule_id: int = id_path("schedule id")):
    """Enqueue one run of the schedule now (recorded in its ledger as a tick at this instant)."""
    name = Schedules(svc.engine, svc.registry, svc.clock).get(schedule_id)["name"]
    job_id = Scheduler(svc.engine, svc.registry, clock=svc.clock).run_now(name)
    audit.record(
        svc.engine, who, "schedule.run_now", "schedule", name, {"jobId": job_id}, svc.clock
    )
    return {"schedule": name, "job": JobAdmin(svc.engine, svc.clock).get(job_id)}


@router.post("/{job_id}/run-again", status_code=201, response_model=Job)
def run_again(svc: Svc, admin: ActingAdmin, job_id: int = id_path("job id")):
    """A new job with the same type, payload, tenant, queue and priority as a finished one."""
    return admin.run_again(job_id, Queue(svc.engine, svc.registry, svc.clock))
