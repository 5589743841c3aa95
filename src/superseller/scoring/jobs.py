"""Job type `score_listings`: score every listing of a tenant and store the breakdown.

Queued after each successful sync (behind the rebuild it queues, under the same
tenant lock, so performance reads fresh metrics). Model wording, when configured,
is applied at read time and never inside this job.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, bindparam, or_, update

from superseller.db.schema import listings
from superseller.db.types import JSONType
from superseller.jobs import JobContext, JobType, PermanentJobError, Registry
from superseller.metrics.jobs import tenant_lock
from superseller.metrics.rebuild import local_today
from superseller.scoring.facts import load_facts
from superseller.scoring.score import score_listing
from superseller.tenants import TenantNotFound, get_tenant

CHUNK = 500


class ScorePayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenantId: str = Field(min_length=1, max_length=64)


def score_tenant(
    engine: Engine, tenant_id: str, now, listing_ids: list[int] | None = None
) -> dict[str, Any]:
    tenant = get_tenant(engine, tenant_id)
    # The 30 complete local days ending yesterday: the same days the listings table and the
    # overview show, never a partial today beside full days.
    end = local_today(tenant["timezone"], now) - timedelta(days=1)
    facts = load_facts(engine, tenant_id, end, listing_ids)
    rows = []
    for f in facts:
        result = score_listing(f)
        rows.append({"lid": f.listing_id, "score": result["score"], "breakdown": result, "at": now})
    breakdown = bindparam("breakdown", type_=JSONType)
    # Only what changed is written: scoring unchanged facts again changes nothing, so
    # `scored_at` is when the score last changed (and a second sync stays a no-op).
    stmt = (
        update(listings)
        .where(
            listings.c.id == bindparam("lid"),
            or_(
                listings.c.score.is_distinct_from(bindparam("score")),
                listings.c.score_breakdown.is_distinct_from(breakdown),
            ),
        )
        .values(score=bindparam("score"), score_breakdown=breakdown, scored_at=bindparam("at"))
    )
    changed = 0
    with engine.begin() as conn:
        for i in range(0, len(rows), CHUNK):
            changed += max(conn.execute(stmt, rows[i : i + CHUNK]).rowcount, 0)
    scored = [r["score"] for r in rows if r["score"] is not None]
    return {
        "listingsScored": len(rows),
        "scoresChanged": changed,
        "averageScore": round(sum(scored) / len(scored), 1) if scored else None,
    }


def register(registry: Registry) -> None:
    def score(ctx: JobContext) -> dict[str, Any]:
        p: ScorePayload = ctx.payload
        try:
            result = score_tenant(ctx.engine, p.tenantId, ctx.clock.now())
        except TenantNotFound as exc:
            raise PermanentJobError(str(exc)) from None
        ctx.add_records(result["listingsScored"])
        return result

    registry.add(
        JobType(
            name="score_listings",
            handler=score,
            payload_model=ScorePayload,
            lock_key=lambda p, t: tenant_lock(p.tenantId),
            description="Score every listing of a tenant (media, title, price, conversion).",
        )
    )
