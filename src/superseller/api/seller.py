"""Seller-facing routes: overview, listings, freshness, and "Atualizar dados".

A seller only ever sees their own tenant: asking for another tenant's id is a
404, as if it did not exist. An admin names the tenant with `tenantId`.
"""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from superseller.api.auth import current_user
from superseller.api.deps import id_path, services
from superseller.api.errors import ApiError
from superseller.jobs.queue import Queue
from superseller.metrics.freshness import tenant_freshness
from superseller.metrics.queries import listings_table, overview, period
from superseller.metrics.rebuild import InvalidRange, parse_day, validate_range
from superseller.tenants import TenantNotFound, get_tenant
from superseller.users.accounts import User

router = APIRouter(prefix="/api/v1", tags=["seller"])


def tenant_of(request: Request, user: User, tenant_id: str | None) -> dict:
    wanted = tenant_id or user.tenant_id
    if wanted is None or (user.role != "admin" and wanted != user.tenant_id):
        raise ApiError(404, "tenant_not_found", "tenant not found")
    try:
        return get_tenant(services(request).engine, wanted)
    except TenantNotFound:
        raise ApiError(404, "tenant_not_found", "tenant not found") from None


def _range(tenant: dict, request: Request, days: int | None, start: str | None,
           end: str | None) -> tuple[date, date]:
    if start or end:
        if not (start and end):
            raise ApiError(422, "invalid_request", "give both 'from' and 'to'")
        try:
            a, b = parse_day(start, "from"), parse_day(end, "to")
            validate_range(a, b)
        except InvalidRange as exc:
            raise ApiError(400, "invalid_range", str(exc)) from None
        return a, b
    return period(tenant["timezone"], services(request).clock.now(), days or 30)


@router.get("/metrics/overview")
def metrics_overview(request: Request, user: User = Depends(current_user),
                     days: int | None = Query(None, ge=1, le=400),
                     from_: str | None = Query(None, alias="from"), to: str | None = None,
                     tenantId: str | None = None):
    tenant = tenant_of(request, user, tenantId)
    start, end = _range(tenant, request, days, from_, to)
    return overview(services(request).engine, tenant["id"], start, end)


@router.get("/listings")
def listings(request: Request, user: User = Depends(current_user),
             days: int | None = Query(None, ge=1, le=400),
             from_: str | None = Query(None, alias="from"), to: str | None = None,
             tenantId: str | None = None):
    tenant = tenant_of(request, user, tenantId)
    start, end = _range(tenant, request, days, from_, to)
    return {"period": {"from": start.isoformat(), "to": end.isoformat()},
            "listings": listings_table(services(request).engine, tenant["id"], start, end)}


@router.get("/freshness")
def freshness(request: Request, user: User = Depends(current_user), tenantId: str | None = None):
    tenant = tenant_of(request, user, tenantId)
    svc = services(request)
    return tenant_freshness(svc.engine, tenant["id"], svc.clock.now())


class RefreshBody(BaseModel):
    days: int = Field(default=30, ge=1, le=150)


@router.post("/refresh", status_code=202)
def refresh(body: RefreshBody, request: Request, user: User = Depends(current_user),
            tenantId: str | None = None):
    """'Atualizar dados': a sync of the period (which queues the rebuild); a second click
    while it is queued or running returns the same job."""
    tenant = tenant_of(request, user, tenantId)
    svc = services(request)
    job = Queue(svc.engine, svc.registry, svc.clock).enqueue(
        "sync_mercadolivre", {"tenantId": tenant["id"], "daysBack": body.days},
        tenant_id=tenant["id"], unique_key=f"sync:{tenant['id']}", priority=10)
    return {"jobIds": [job.id], "created": job.created,
            "statusUrl": f"/api/v1/refresh/{job.id}"}


@router.get("/refresh/{job_id}")
def refresh_status(request: Request, job_id: int = id_path("job id"),
                   user: User = Depends(current_user),
                   tenantId: str | None = None):
    """The refresh's progress: the sync, then the rebuild it queued."""
    from superseller.jobs.admin import JobAdmin
    from superseller.jobs.errors import JobNotFound

    tenant = tenant_of(request, user, tenantId)
    admin = JobAdmin(services(request).engine)
    try:
        sync = admin.get(job_id)
    except JobNotFound:
        raise ApiError(404, "job_not_found", "job not found") from None
    if sync["tenant_id"] != tenant["id"] or sync["type"] != "sync_mercadolivre":
        raise ApiError(404, "job_not_found", "job not found")
    rebuild_id = (sync["result"] or {}).get("rebuildJobId")
    rebuild = admin.get(rebuild_id) if rebuild_id else None
    done = rebuild is not None and rebuild["status"] == "completed"
    failed = sync["status"] == "failed" or (rebuild is not None and rebuild["status"] == "failed")
    return {"state": "failed" if failed else "done" if done else "running",
            "sync": sync["status"], "rebuild": rebuild["status"] if rebuild else None,
            "error": sync["last_error"] if failed else None}
