"""Internal job endpoints for an external scheduler (EventBridge), behind X-Internal-Key.

They enqueue and return at once (202) — except the rebuild, which waits up to
`short_wait_s` (4 s) and answers 200 with the seed's result when it finished.
Repeated calls (EventBridge retries on time-outs) return the existing job:

- A sync joins the tenant's unfinished sync, whoever queued it (the nightly fan-out,
  "Atualizar dados", `superseller sync`: they share `tenant_jobs.sync_key`); a rebuild
  joins the unfinished rebuild of the same tenant and range (the one a sync queued too).
- `Idempotency-Key` names one request, remembered for IDEMPOTENCY_WINDOW (24 h): the same
  key again answers the job the first call got, whatever its state since — a finished
  job is not run again (send a new key for a new run). The same key with another body, or
  on the other endpoint, is a 422 `idempotency_key_reused`. The key is stored in the
  audit entry of the call that created or joined the job (`job.create`, `job.join`).
  The key is looked up before the tenant checks (a retry answers its job even if the store
  disconnected since), and again under a per-key transaction lock before queueing, so that
  two calls with one key at once get one job (or the 422), not one each.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, select

from superseller import limits
from superseller.api import job_status as job_status_routes
from superseller.api.deps import require_internal_key
from superseller.api.models import Accepted, ErrorBody, JobWithLogs, RebuildOutcome
from superseller.db.schema import audit_log, jobs
from superseller.http.deps import Services, Svc, body_within_limit, id_path
from superseller.http.errors import ApiError, error_body
from superseller.jobs import audit, reads
from superseller.jobs.admin import JobAdmin
from superseller.jobs.backend import backend_for
from superseller.jobs.queue import Enqueued, JobSpec, Queue
from superseller.metrics.freshness import NOT_CONNECTED, connection_of
from superseller.metrics.rebuild import InvalidRange, local_today, parse_day, validate_range
from superseller.tenant_jobs import ALL, sync_key, tenant_of
from superseller.tenants import TenantNotFound, get_tenant

log = logging.getLogger("superseller.api.internal")
router = APIRouter(
    prefix="/api/v1/jobs",
    dependencies=[Depends(require_internal_key), Depends(body_within_limit)],
    tags=["internal jobs"],
)


class SyncBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",  # the seed's example (jobs system document):
        json_schema_extra={"examples": [{"tenantId": "uuid-do-tenant", "daysBack": 30}]},
    )
    tenantId: str = Field(min_length=1, max_length=limits.TENANT_ID_MAX_LEN)
    daysBack: int = Field(default=30, ge=1, le=150)  # what the sync's payload allows


class RebuildBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={  # the seed's example (jobs system document)
            "examples": [{"tenantId": "uuid-do-tenant", "from": "2024-01-01", "to": "2024-01-31"}]
        },
    )
    tenantId: str = Field(min_length=1, max_length=limits.TENANT_ID_MAX_LEN)
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None


def _log(endpoint: str, **fields: Any) -> None:
    """One structured line per call, tagged for the seeds' CloudWatch filter. No secrets."""
    log.info("[INTERNAL-JOB] %s", json.dumps({"endpoint": endpoint, **fields}, default=str))


def _tenant_or_404(svc: Services, tenant_id: str) -> dict | None:
    if tenant_id == ALL:
        return None
    try:
        return get_tenant(svc.engine, tenant_id)
    except TenantNotFound as exc:
        raise ApiError(404, "tenant_not_found", str(exc)) from None


# How long an Idempotency-Key is remembered: EventBridge gives up on an event within 24 h.
IDEMPOTENCY_WINDOW = timedelta(hours=24)
KEYED_ACTIONS = ("job.create", "job.join")


def _lookup(conn: Connection, clock, key: str, request: dict[str, Any]) -> int | None:
    """The job an earlier call with this Idempotency-Key got, within the window and while
    the job exists; ApiError 422 when that call asked for something else."""
    since = clock.now() - IDEMPOTENCY_WINDOW
    earlier = conn.execute(
        select(audit_log.c.target_id, audit_log.c.detail)
        .where(
            audit_log.c.at >= since,  # ix_audit_log_at: a day of entries at most
            audit_log.c.actor == audit.INTERNAL_KEY,
            audit_log.c.action.in_(KEYED_ACTIONS),
            audit_log.c.target_type == "job",
            audit_log.c.detail["idempotencyKey"].as_string() == key,
        )
        .order_by(audit_log.c.id.desc())
        .limit(1)
    ).first()
    if earlier is None:
        return None
    if (earlier.detail or {}).get("request") != request:
        raise ApiError(
            422,
            "idempotency_key_reused",
            f"Idempotency-Key {key[:100]!r} was used for another request in the last "
            f"{int(IDEMPOTENCY_WINDOW.total_seconds() // 3600)} h; send a new key",
            [{"field": "header.idempotency-key", "problem": "used for another request"}],
        )
    job_id = int(earlier.target_id)
    kept = conn.execute(select(jobs.c.id).where(jobs.c.id == job_id)).first()
    return job_id if kept is not None else None  # cleaned up since: a new request


def _remembered(svc: Services, key: str | None, request: dict[str, Any]) -> int | None:
    """`_lookup` on a plain read, first thing in a call: a retry answers what the first call
    got without taking the write lock, and before the tenant checks (a store disconnected
    or changed since does not turn a retry of an accepted call into an error)."""
    if not key:
        return None
    with backend_for(svc.engine).reader(svc.engine) as conn:
        return _lookup(conn, svc.clock, key, request)


def _enqueue(
    svc: Services,
    job_type: str,
    payload: dict[str, Any],
    unique_key: str,
    idempotency_key: str | None,
    request: dict[str, Any],
) -> tuple[Enqueued, bool]:
    """(the job, whether it is the one an earlier call with the same key got). Otherwise
    the job of `unique_key` still unfinished is joined, or a new one queued; with a key,
    the call is audited (`job.create` or `job.join`) with the key and the request, in the
    same transaction, so that a repeat finds it.

    Two calls with one key at once: each takes the key's transaction lock and looks the
    key up again under it, so the second sees the first's audit entry (the same job, or
    422 for another body) instead of queueing or joining on its own. (PostgreSQL: an
    advisory lock, the lookup in READ COMMITTED sees the first's commit; SQLite: the
    write transaction, BEGIN IMMEDIATE, already serializes writers.)"""
    spec = JobSpec(job_type, payload, tenant_id=tenant_of(payload), unique_key=unique_key)
    with svc.engine.begin() as conn:
        if idempotency_key:
            backend_for(conn).transaction_lock(conn, "idem:" + idempotency_key)
            earlier = _lookup(conn, svc.clock, idempotency_key, request)
            if earlier is not None:
                return Enqueued(earlier, False), True
        job = Queue(svc.engine, svc.registry, svc.clock).enqueue_many([spec], conn)[0]
        detail = {"idempotencyKey": idempotency_key, "request": request}
        if job.created or idempotency_key:
            action = "job.create" if job.created else "job.join"
            audit.record(
                conn,
                audit.INTERNAL_KEY,
                action,
                "job",
                job.id,
                detail if idempotency_key else None,
                svc.clock,
            )
    return job, False


def _accepted(job_id: int, status: str) -> JSONResponse:
    return JSONResponse(
        {"jobId": job_id, "status": status, "statusUrl": f"/api/v1/jobs/{job_id}"}, status_code=202
    )


@router.post(
    "/sync-mercadolivre",
    status_code=202,
    response_model=Accepted,
    responses={409: {"model": ErrorBody, "description": "The tenant has no Mercado Livre account"}},
)
def sync_mercadolivre(
    body: SyncBody,
    svc: Svc,
    idempotency_key: str | None = Header(default=None, max_length=200),
):
    """Queue a sync of the tenant (`all`: every connected one), or answer the one it joins:
    the tenant's unfinished sync, whoever queued it; with `Idempotency-Key`, the job an
    earlier call with that key got in the last 24 h, even finished (see the module's doc)."""
    began = time.perf_counter()
    payload = {"tenantId": body.tenantId, "daysBack": body.daysBack}
    request = {"endpoint": "sync-mercadolivre", **payload}
    earlier = _remembered(svc, idempotency_key, request)  # a retry: the first call's job
    if earlier is not None:
        job, replayed = Enqueued(earlier, False), True
    else:
        if _tenant_or_404(svc, body.tenantId) and connection_of(svc.engine, body.tenantId) == (
            NOT_CONNECTED
        ):  # a sync could only fail: no job bound to fail for a lasting reason
            raise ApiError(
                409,
                "not_connected",
                f"tenant {body.tenantId} has no Mercado Livre account; "
                "the seller must connect first",
            )
        job, replayed = _enqueue(
            svc, "sync_mercadolivre", payload, sync_key(body.tenantId), idempotency_key, request
        )
    _log(
        "sync-mercadolivre",
        tenantId=body.tenantId,
        jobId=job.id,
        created=job.created,
        replayed=replayed,
        durationMs=int((time.perf_counter() - began) * 1000),
    )
    # A repeated call returns the unfinished job it found: say where that one is.
    status = "pending" if job.created else JobAdmin(svc.engine).get(job.id)["status"]
    return _accepted(job.id, status)


def _queue_rebuild(
    svc: Services, body: RebuildBody, idempotency_key: str | None, request: dict[str, Any]
) -> tuple[Enqueued, str | None, str | None]:
    """Check the tenant and the range, then queue (or join) the rebuild: (job, from, to)."""
    tenant = _tenant_or_404(svc, body.tenantId)
    if (body.from_ is None) != (body.to is None):
        raise ApiError(
            422,
            "invalid_request",
            "give both 'from' and 'to', or neither",
            [{"field": "from" if body.from_ is None else "to", "problem": "missing"}],
        )
    if body.from_ is None and tenant is not None:
        # An external scheduler cannot compute dates: the trailing 30 local days.
        end = local_today(tenant["timezone"], svc.clock.now())
        start, stop = (end - timedelta(days=29)).isoformat(), end.isoformat()
    else:
        start, stop = body.from_, body.to
    if start is not None:
        try:
            validate_range(parse_day(start, "from"), parse_day(stop, "to"))
        except InvalidRange as exc:
            raise ApiError(400, "invalid_range", str(exc)) from None
    payload = {
        "tenantId": body.tenantId,
        **({"from": start, "to": stop} if start else {}),
        "source": "internal_job",  # the runbook's data-fix query selects these rows
    }
    # The key the sync's own rebuilds and the fan-out use: a rebuild of the same range
    # still unfinished is joined, with or without an Idempotency-Key.
    job, _ = _enqueue(
        svc,
        "metrics_aggregation",
        payload,
        f"rebuild:{body.tenantId}:{start or 'recent'}:{stop or ''}",
        idempotency_key,
        request,
    )
    return job, start, stop


@router.post(
    "/rebuild-daily-metrics",
    response_model=RebuildOutcome,
    response_model_exclude_none=True,
    responses={202: {"model": Accepted, "description": "Still running: poll `statusUrl`"}},
)
def rebuild_daily_metrics(
    body: RebuildBody,
    svc: Svc,
    idempotency_key: str | None = Header(default=None, max_length=200),
):
    """Rebuild the tenant's daily metrics for the range (none: the trailing 30 local days),
    joining the unfinished rebuild of the same tenant and range; with `Idempotency-Key`,
    the job an earlier call with that key got in the last 24 h, even finished (its
    outcome is answered again, the rebuild is not run twice)."""
    began = time.perf_counter()
    request = {
        "endpoint": "rebuild-daily-metrics",
        "tenantId": body.tenantId,
        "from": body.from_,
        "to": body.to,
    }
    start, stop = body.from_, body.to
    earlier = _remembered(svc, idempotency_key, request)  # a retry: the first call's job
    if earlier is not None:
        job = Enqueued(earlier, False)
    else:
        job, start, stop = _queue_rebuild(svc, body, idempotency_key, request)
    admin = JobAdmin(svc.engine)
    deadline = time.monotonic() + svc.short_wait_s
    row = admin.get(job.id)
    while row["status"] in ("pending", "running") and time.monotonic() < deadline:
        time.sleep(0.05)  # a sync route: FastAPI runs it on a worker thread, not the loop
        row = admin.get(job.id)
    _log(
        "rebuild-daily-metrics",
        tenantId=body.tenantId,
        jobId=job.id,
        status=row["status"],
        range=[start, stop],
        durationMs=int((time.perf_counter() - began) * 1000),
    )
    if row["status"] in ("pending", "running"):
        return _accepted(job.id, row["status"])
    result = row["result"] or {}
    log_id = reads.last_run_id(svc.engine, job.id)
    if row["status"] != "completed":
        return {"success": False, "jobId": job.id, "jobLogId": log_id, "error": row["last_error"]}
    if "fannedOut" in result:
        return {"success": True, "jobId": job.id, "jobLogId": log_id, **result}
    return {
        "success": True,
        "jobId": job.id,
        "jobLogId": log_id,
        "duration": result.get("durationMs"),
        "daysProcessed": result.get("daysProcessed"),
        "rowsUpserted": result.get("rowsUpserted"),
        "listingsProcessed": result.get("listingsProcessed"),
        "dateRange": result.get("dateRange"),
    }


# `:int`: only a number is a job's address, so `GET /sync-mercadolivre` is not read as a
# job id (it was a 422) and reaches `_elsewhere`, which answers 405 for it.
@router.get("/{job_id:int}", response_model=JobWithLogs)
def job_status(svc: Svc, job_id: int = id_path("job id")):
    admin = JobAdmin(svc.engine, svc.clock)
    return {"job": admin.get(job_id), "logs": admin.logs(job_id)}


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed(path: str) -> list[str]:
    """The methods of the routes under /api/v1/jobs whose path is `path` (these endpoints,
    and the JWT `/status` and `/stats` sharing the prefix), in METHODS' order."""
    found: set[str] = set()
    for route in (*router.routes, *job_status_routes.router.routes):
        if isinstance(route, APIRoute) and route.path_regex.match(path):
            found |= route.methods
    return [m for m in METHODS if m in found] + sorted(found - set(METHODS))


async def _elsewhere(request: Request) -> Response:
    """Whatever no route of /api/v1/jobs took: a known path asked with another method is a
    405 naming the methods it has (`Allow`), any other path a 404. It runs before the key
    check, as routing does everywhere else: neither answer tells more than the API's
    document does, and a JWT caller of `/status` gets its 405 too."""
    path = request.url.path
    allow = _allowed(path)
    if allow:
        return JSONResponse(
            error_body(
                "method_not_allowed",
                f"{request.method} is not allowed on {path[:200]}: use {', '.join(allow)}",
            ),
            405,
            headers={"Allow": ", ".join(allow)},
        )
    if path.endswith("/") and _allowed(path.rstrip("/")):  # as the other routers do
        return RedirectResponse(request.url.replace(path=path.rstrip("/")), 307)
    endpoint = request.path_params.get("rest", "")
    return JSONResponse(
        error_body(
            "not_found",
            f"unknown job endpoint {endpoint[:100]!r}: use sync-mercadolivre, "
            "rebuild-daily-metrics or GET /api/v1/jobs/{id} (a number)",
        ),
        404,
    )


# A plain route, added last: the router's key check does not apply to it (see `_elsewhere`).
router.add_route(
    f"{router.prefix}/{{rest:path}}", _elsewhere, methods=list(METHODS), include_in_schema=False
)
