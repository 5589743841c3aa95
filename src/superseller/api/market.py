"""Market routes: harvest sources (admins, `/api/admin/harvest-sources`), and for the seller
price-drop alerts and buyer-question drafts (`/api/v1/...`; drafts are never posted)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from superseller.api.auth import require_admin
from superseller.api.errors import ApiError
from superseller.api.models import HarvestSource, HarvestSources, PriceDrops, QuestionDrafts
from superseller.api.seller import tenant_of
from superseller.http.deps import Services, Svc, id_path
from superseller.http.sessions import CurrentUser
from superseller.market import prices, questions, sources
from superseller.tenants import TenantNotFound, get_tenant

admin = APIRouter(
    prefix="/api/admin/harvest-sources",
    tags=["admin market"],
    dependencies=[Depends(require_admin)],
)
seller = APIRouter(prefix="/api/v1", tags=["seller"])


def _tenant(svc: Services, tenant_id: str) -> str:
    try:
        return get_tenant(svc.engine, tenant_id)["id"]
    except TenantNotFound:
        raise ApiError(404, "tenant_not_found", "tenant not found") from None


class SourceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenantId: str = Field(min_length=1, max_length=64)
    kind: Literal["search", "trends"]
    categoryId: str | None = Field(default=None, max_length=40)
    query: str | None = Field(default=None, max_length=200)


class SourcePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


@admin.get("", response_model=HarvestSources)
def list_sources(svc: Svc, tenantId: str = Query(min_length=1, max_length=64)):
    """The tenant's harvest sources (defaults per active listing, and added ones)."""
    tid = _tenant(svc, tenantId)
    return {"sources": sources.list_sources(svc.engine, tid)}


@admin.post("", status_code=201, response_model=HarvestSource)
def add_source(svc: Svc, body: SourceBody):
    """Add a source (or re-enable the same one)."""
    tid = _tenant(svc, body.tenantId)
    try:
        return sources.add(svc.engine, tid, body.kind, body.categoryId, body.query, svc.clock)
    except sources.SourceError as exc:
        raise ApiError(422, "invalid_source", str(exc)) from None


@admin.patch("/{source_id}", response_model=HarvestSource)
def patch_source(
    svc: Svc,
    body: SourcePatch,
    source_id: int = id_path("source id"),
    tenantId: str = Query(min_length=1, max_length=64),
):
    """Disable (or enable) a source: a disabled source is not harvested."""
    tid = _tenant(svc, tenantId)
    try:
        return sources.set_enabled(svc.engine, tid, source_id, body.enabled, svc.clock)
    except sources.SourceError as exc:
        raise ApiError(404, "source_not_found", str(exc)) from None


@seller.get("/price-drops", response_model=PriceDrops)
def price_drops(
    svc: Svc,
    user: CurrentUser,
    tenantId: str | None = None,
    listingId: int | None = Query(default=None, ge=1, le=2**63 - 1),
    limit: int = Query(default=50, ge=1, le=500),
):
    """Competitors' price drops on items comparable to the seller's listings, newest first."""
    tenant = tenant_of(svc, user, tenantId)
    drops = prices.alerts(svc.engine, tenant["id"], listingId, limit)
    return {"priceDrops": drops, "count": len(drops)}


@seller.get("/listings/{listing_id}/question-drafts", response_model=QuestionDrafts)
def question_drafts(
    svc: Svc,
    user: CurrentUser,
    listing_id: int = id_path("listing id"),
    tenantId: str | None = None,
):
    """Recurring buyer questions on a listing, with a draft answer and a line for the
    description each. Drafts only: nothing is posted to Mercado Livre."""
    tenant = tenant_of(svc, user, tenantId)
    return {"drafts": questions.drafts(svc.engine, tenant["id"], listing_id)}
