"""The seed's job status and stats routes (JWT): `/api/v1/jobs/status` and `/stats`.

A seller sees their own tenant's runs; an admin sees every run (or one tenant's
with `tenantId`).
"""

from __future__ import annotations

from fastapi import APIRouter, Query

from superseller.api.models import JobStatus, TypeStatsReport
from superseller.http.deps import Svc
from superseller.http.errors import ApiError
from superseller.http.sessions import CurrentUser
from superseller.jobs import reads, stats
from superseller.users.accounts import User

router = APIRouter(prefix="/api/v1/jobs", tags=["job status"])


def _scope(user: User, tenant_id: str | None) -> str | None:
    """The tenant whose runs the caller may see (None: all, admins only)."""
    if user.role == "admin":
        return tenant_id
    if user.tenant_id is None:
        raise ApiError(404, "tenant_not_found", "tenant not found")
    return user.tenant_id


@router.get("/status", response_model=JobStatus)
def job_status(
    svc: Svc,
    user: CurrentUser,
    jobType: str | None = Query(None, max_length=100),
    limit: int = Query(20, ge=1, le=200),
    tenantId: str | None = Query(None, max_length=64),
):
    """Recent runs (job_logs, newest first), a summary per type and outcome, and the last
    successful run of each type."""
    tenant = _scope(user, tenantId)
    logs = reads.recent_runs(svc.engine, job_type=jobType, tenant_id=tenant, limit=limit)
    per_type = stats.job_type_stats(svc.engine, svc.clock, tenant_id=tenant)["types"]
    summary = [
        {"jobType": t["jobType"], "status": status, "count": n, "avgDurationMs": t["avgDurationMs"]}
        for t in per_type
        for status, n in sorted(t["byStatus"].items())
        if not jobType or t["jobType"] == jobType
    ]
    last_ok = reads.last_successful_runs(svc.engine, [t["jobType"] for t in per_type], tenant)
    return {"logs": logs, "summary": summary, "lastSuccessful": last_ok}


@router.get("/stats", response_model=TypeStatsReport)
def job_stats(
    svc: Svc,
    user: CurrentUser,
    tenantId: str | None = Query(None, max_length=64),
):
    """Per job type: total runs, runs and failures in the last 24 h, average duration, last
    run; and the last 10 errors."""
    tenant = _scope(user, tenantId)
    return stats.job_type_stats(svc.engine, svc.clock, tenant_id=tenant)
