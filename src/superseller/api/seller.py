"""Seller-facing routes: overview, listings, freshness, and "Atualizar dados".

A seller only ever sees their own tenant: asking for another tenant's id is a
404, as if it did not exist. An admin names the tenant with `tenantId`.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select, update

from superseller.api.errors import ApiError
from superseller.api.models import (
    ErrorBody,
    Explanation,
    Freshness,
    ListingScore,
    ListingsPage,
    Overview,
    RefreshProgress,
    RefreshStarted,
)
from superseller.db.schema import listings as listings_t
from superseller.http.deps import Services, Svc, id_path
from superseller.http.sessions import CurrentUser
from superseller.jobs.admin import JobAdmin
from superseller.jobs.errors import JobNotFound
from superseller.jobs.pause import state as pause_state
from superseller.jobs.queue import Queue
from superseller.limits import LimitError, check_range
from superseller.mercadolivre.progress import SYNC_FAILED, chain_status
from superseller.mercadolivre.sync import SCORE_TYPE
from superseller.metrics.explain import explain
from superseller.metrics.freshness import NOT_CONNECTED, connection_of, tenant_freshness
from superseller.metrics.queries import (
    CLIP_FILTERS,
    GRADE_NAMES,
    LISTING_SORTS,
    NoCompleteDay,
    complete_days,
    complete_period,
    filter_listings,
    listings_table,
    overview,
    paginate,
    sort_listings,
    today_so_far,
)
from superseller.metrics.rebuild import InvalidRange, parse_day, validate_range
from superseller.ptbr import plural
from superseller.scoring import wording
from superseller.scoring.jobs import score_tenant
from superseller.tenant_jobs import sync_key
from superseller.tenants import TenantNotFound, get_tenant
from superseller.users.accounts import User

router = APIRouter(prefix="/api/v1", tags=["seller"])


def tenant_of(svc: Services, user: User, tenant_id: str | None) -> dict:
    wanted = tenant_id or user.tenant_id
    if wanted is None or (user.role != "admin" and wanted != user.tenant_id):
        raise ApiError(404, "tenant_not_found", "tenant not found")
    try:
        return get_tenant(svc.engine, wanted)
    except TenantNotFound:
        raise ApiError(404, "tenant_not_found", "tenant not found") from None


def _range(
    tenant: dict, svc: Services, days: int | None, start: str | None, end: str | None
) -> tuple[date, date]:
    if start or end:
        if not (start and end):
            raise ApiError(422, "invalid_request", "give both 'from' and 'to'")
        try:
            a, b = parse_day(start, "from"), parse_day(end, "to")
            validate_range(a, b)
            check_range(a, b)  # dates within limits.py (the comparisons look further back)
        except (InvalidRange, LimitError) as exc:
            raise ApiError(400, "invalid_range", str(exc)) from None
        try:  # today and the days after it are not complete: the period ends yesterday
            return complete_days(tenant["timezone"], svc.clock.now(), a, b)
        except NoCompleteDay as exc:
            raise ApiError(
                400, "invalid_range", f"{exc}; today so far is the overview's `today`"
            ) from None
    # `days`: the last N complete local days (ending yesterday); today is reported apart
    return complete_period(tenant["timezone"], svc.clock.now(), days or 30)


@router.get("/metrics/overview", response_model=Overview)
def metrics_overview(
    svc: Svc,
    user: CurrentUser,
    days: int | None = Query(None, ge=1, le=400),
    from_: str | None = Query(None, alias="from"),
    to: str | None = None,
    tenantId: str | None = None,
):
    """Cards, daily series and top listings for the period (default: the last 30 complete
    days), compared with the previous equal period only when it is fully synced
    (`comparison.available`); `today` is today so far, never compared with full days."""
    tenant = tenant_of(svc, user, tenantId)
    start, end = _range(tenant, svc, days, from_, to)
    return {
        **overview(svc.engine, tenant["id"], start, end),
        "today": today_so_far(svc.engine, tenant, svc.clock.now()),
    }


@router.get("/metrics/explain", response_model=Explanation)
def metrics_explain(
    svc: Svc,
    user: CurrentUser,
    days: int | None = Query(None, ge=1, le=400),
    from_: str | None = Query(None, alias="from"),
    to: str | None = None,
    top: int = Query(5, ge=0, le=50),
    tenantId: str | None = None,
):
    """Why revenue changed vs the previous equal period: the exact LMDI split into visits,
    conversion and ticket effects (orders and ticket when visits are not all known), which
    sum to the change to the cent; the listings that moved it most; one sentence each."""
    tenant = tenant_of(svc, user, tenantId)
    start, end = _range(tenant, svc, days, from_, to)
    return explain(svc.engine, tenant["id"], start, end, top=top)


@router.get("/listings", response_model=ListingsPage)
def listings(
    svc: Svc,
    user: CurrentUser,
    days: int | None = Query(None, ge=1, le=400),
    from_: str | None = Query(None, alias="from"),
    to: str | None = None,
    sort: Literal[LISTING_SORTS] = "revenue",  # type: ignore[valid-type]
    order: Literal["desc", "asc"] = "desc",
    q: str | None = Query(None, max_length=100, description="title or id contains"),
    status: str | None = Query(None, max_length=20),
    grade: Literal[(*GRADE_NAMES, "sem-nota")] | None = None,  # type: ignore[valid-type]
    clip: Literal[tuple(CLIP_FILTERS)] | None = None,  # type: ignore[valid-type]
    page: int | None = Query(None, ge=1, le=100_000, description="50 per page; all if absent"),
    perPage: int = Query(50, ge=1, le=200),
    tenantId: str | None = None,
):
    """Per-listing figures for the period, with the score; `sort` by any column; filter by
    a search (`q`), `status`, `grade`, `clip` (tem / nao-tem / nao-verificado); `page`."""
    tenant = tenant_of(svc, user, tenantId)
    start, end = _range(tenant, svc, days, from_, to)
    rows = listings_table(svc.engine, tenant["id"], start, end)
    rows = filter_listings(
        sort_listings(rows, sort, descending=order == "desc"), q, status, grade, clip
    )
    out = {"period": {"from": start.isoformat(), "to": end.isoformat()}, "total": len(rows)}
    if page is not None:
        paged = paginate(rows, page, perPage)
        rows = paged["rows"]
        out |= {"page": paged["page"], "pages": paged["pages"], "perPage": perPage}
    out["listings"] = [
        {k: v for k, v in r.items() if k != "breakdown"}  # see /listings/{id}/score
        for r in rows
    ]
    return out


def _listing_of(svc: Services, tenant: dict, listing_id: int):
    with svc.engine.connect() as conn:
        row = conn.execute(
            select(listings_t).where(
                listings_t.c.id == listing_id, listings_t.c.tenant_id == tenant["id"]
            )
        ).first()
    if row is None:
        raise ApiError(404, "listing_not_found", "listing not found")
    return row


@router.get("/listings/{listing_id}/score", response_model=ListingScore)
def listing_score(
    svc: Svc,
    user: CurrentUser,
    listing_id: int = id_path("listing id"),
    tenantId: str | None = None,
):
    """The score, its dimensions with one sentence each, the media verdict, and the next
    actions (highest gain first). `explanation` is model-worded when configured."""
    tenant = tenant_of(svc, user, tenantId)
    row = _listing_of(svc, tenant, listing_id)
    if row.score_breakdown is None:
        raise ApiError(404, "not_scored", "this listing has not been scored yet")
    return {
        "listingId": row.id,
        "externalId": row.external_id,
        "title": row.title,
        "scoredAt": row.scored_at.isoformat() if row.scored_at else None,
        **row.score_breakdown,
        "explanation": wording.explanation(
            svc.engine, svc.settings, row.score_breakdown, svc.clock
        ),
    }


class ClipsBody(BaseModel):
    hasClips: bool | None = Field(description="true / false; null removes the override")


@router.put("/listings/{listing_id}/clips", response_model=ListingScore)
def set_clips(
    body: ClipsBody,
    svc: Svc,
    user: CurrentUser,
    listing_id: int = id_path("listing id"),
    tenantId: str | None = None,
):
    """The seller says whether the listing has a clip (Mercado Livre does not tell us for
    Brazilian listings). The listing is re-scored at once."""
    tenant = tenant_of(svc, user, tenantId)
    _listing_of(svc, tenant, listing_id)
    with svc.engine.begin() as conn:
        conn.execute(
            update(listings_t)
            .where(listings_t.c.id == listing_id)
            .values(has_clips_override=body.hasClips)
        )
    score_tenant(svc.engine, tenant["id"], svc.clock.now(), [listing_id])
    return listing_score(svc, user, listing_id, tenantId)


@router.get("/freshness", response_model=Freshness)
def freshness(svc: Svc, user: CurrentUser, tenantId: str | None = None):
    tenant = tenant_of(svc, user, tenantId)
    return tenant_freshness(svc.engine, tenant["id"], svc.clock.now())


class RefreshBody(BaseModel):
    days: int = Field(default=30, ge=1, le=150)


@router.post(
    "/refresh",
    status_code=202,
    response_model=RefreshStarted,
    responses={409: {"model": ErrorBody, "description": "The tenant has no Mercado Livre account"}},
)
def refresh(
    body: RefreshBody,
    svc: Svc,
    user: CurrentUser,
    tenantId: str | None = None,
):
    """'Atualizar dados': a sync of the period (which queues the rebuild); a second click
    while it is queued or running returns the same job."""
    tenant = tenant_of(svc, user, tenantId)
    if (
        connection_of(svc.engine, tenant["id"]) == NOT_CONNECTED
    ):  # a sync could only fail: say what to do instead
        raise ApiError(
            409, "not_connected", "Conecte sua conta do Mercado Livre para atualizar os dados."
        )
    job = Queue(svc.engine, svc.registry, svc.clock).enqueue(
        "sync_mercadolivre",
        {"tenantId": tenant["id"], "daysBack": body.days},
        tenant_id=tenant["id"],
        unique_key=sync_key(tenant["id"]),
        priority=10,
    )
    return {"jobIds": [job.id], "created": job.created, "statusUrl": f"/api/v1/refresh/{job.id}"}


@router.get("/refresh/{job_id}", response_model=RefreshProgress)
def refresh_status(
    svc: Svc,
    user: CurrentUser,
    job_id: int = id_path("job id"),
    tenantId: str | None = None,
):
    """The refresh's (or first import's) progress: the sync, then the rebuild(s) and score
    it queued; `done` once all are, `failed` as soon as one failed (a sync skipped because
    the store was disconnected counts as failed: "Conecte sua conta"). `message`, in pt-BR:
    what failed, or, once done, the listings whose visits Mercado Livre did not answer
    (the sync's `visitsMissing`: the store is "Parcial" until a sync gets them)."""
    tenant = tenant_of(svc, user, tenantId)
    admin = JobAdmin(svc.engine)
    try:
        sync = admin.get(job_id)
    except JobNotFound:
        raise ApiError(404, "job_not_found", "job not found") from None
    if sync["tenant_id"] != tenant["id"] or sync["type"] != "sync_mercadolivre":
        raise ApiError(404, "job_not_found", "job not found")
    result = sync["result"] or {}
    follow = [admin.get(j) for j in result.get("rebuildJobIds") or []]
    if not follow and result.get("rebuildJobId"):
        follow = [admin.get(result["rebuildJobId"])]
    rebuild = follow[0] if follow else None
    score = admin.get(result["scoreJobId"]) if result.get("scoreJobId") else None
    steps = chain_status(svc.engine, admin.get, sync, SCORE_TYPE in svc.registry)
    total = steps["total"]
    sync_failed = sync["status"] in ("failed", "cancelled") or bool(result.get("skipped"))
    rebuild_failed = any(j["status"] in ("failed", "cancelled") for j in follow)
    score_failed = score is not None and score["status"] in ("failed", "cancelled")
    failed = sync_failed or rebuild_failed or score_failed
    done = not failed and steps["done"] >= total
    message = None
    # The step that ended the chain was cancelled (an operator's `jobs cancel`), not failed:
    # the seller is told so, and that "Atualizar dados" fetches again (no "fale com o suporte").
    ended = (  # (its step, the job)
        (1, sync)
        if sync_failed
        else (2, next(j for j in follow if j["status"] in ("failed", "cancelled")))
        if rebuild_failed
        else (total, score)
        if score_failed
        else None
    )
    cancelled = ended is not None and ended[1]["status"] == "cancelled"
    if failed:  # for the seller, in their language; `error` keeps the technical cause
        connection = tenant_freshness(svc.engine, tenant["id"], svc.clock.now())["connection"]
        message = {
            "reauth_required": "Reconecte sua conta do Mercado Livre para atualizar os dados.",
            "not_connected": "Conecte sua conta do Mercado Livre para atualizar os dados.",
        }.get(connection) or (
            f"A atualização foi cancelada (etapa {ended[0]} de {total}); clique em "
            "Atualizar dados para buscar de novo."
            if cancelled
            else f"{SYNC_FAILED} (etapa 1 de {total}). "
            "Tente de novo mais tarde; se voltar a falhar, fale com o suporte."
            if sync_failed
            else f"O recálculo das métricas falhou (etapa 2 de {total}); os pedidos já foram "
            "buscados. Tente de novo; se voltar a falhar, fale com o suporte."
            if rebuild_failed
            else f"O cálculo das notas dos anúncios falhou (etapa {total} de {total}); os "
            "números já foram atualizados. Tente de novo mais tarde."
        )
    elif done and (missing := result.get("visitsMissing") or 0):
        message = (
            f"As visitas de {plural(missing, 'anúncio', 'anúncios')} não vieram do Mercado "
            "Livre; a próxima sincronização tenta de novo."
        )
    errors = [
        "skipped: the store has no Mercado Livre account" if result.get("skipped") else None,
        sync["last_error"],
        *(j.get("last_error") for j in follow),
        (score or {}).get("last_error"),
    ]
    # Waiting on a pause: the engine's, or a paused queue one of the chain's pending jobs
    # sits on (`superseller pause --queue default`): not "Atualizando… Etapa 1" forever.
    power = pause_state(svc.engine)
    held = {q["queue"] for q in power["pausedQueues"]}
    waiting = any(
        j["status"] == "pending" and j["queue"] in held for j in [sync, *follow, score] if j
    )
    return {
        "paused": (power["paused"] or waiting) and not (done or failed),
        "state": "failed" if failed else "done" if done else "running",
        "steps": steps,  # sync, rebuild(s), score; `text`: the step under way, in pt-BR
        "sync": sync["status"],
        "rebuild": rebuild["status"] if rebuild else None,
        "error": next((e for e in errors if e), None) if failed else None,
        "cancelled": failed and cancelled,  # an operator's cancel, not a failure
        "message": message,
    }
