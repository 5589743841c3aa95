"""Job types of the metrics feature: `metrics_aggregation` (the rebuild) and `freshness_heal`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from superseller.db.schema import tenants
from superseller.jobs import JobContext, JobType, PermanentJobError, Registry, reads
from superseller.jobs.errors import error_text
from superseller.jobs.queue import JobSpec, Queue
from superseller.jobs.registry import NoPayload
from superseller.metrics.freshness import (
    IMPORTING,
    NOT_CONNECTED,
    OK,
    PARTIAL,
    REAUTH_REQUIRED,
    SYNC_TYPE,
    all_freshness,
    healable,
)
from superseller.metrics.rebuild import (
    InvalidRange,
    local_today,
    parse_day,
    rebuild_daily_metrics,
    validate_range,
)
from superseller.tenant_jobs import sync_key
from superseller.tenants import TenantNotFound, get_tenant, record_outcome

DEFAULT_DAYS = 30
# The seed's name (its job_logs.job_type); `rebuild_daily_metrics` is a former one.
REBUILD_TYPE = "metrics_aggregation"


class RebuildPayload(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    tenantId: str = Field(min_length=1, max_length=64)
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    replace: bool = False  # delete the range's rows first (a corrupted range)
    # Written in listing_metrics_daily.source: who asked (the internal endpoint: internal_job).
    source: Literal["rebuild", "internal_job"] = "rebuild"

    @model_validator(mode="after")
    def _range(self) -> RebuildPayload:
        if (self.from_ is None) != (self.to is None):
            raise ValueError("give both 'from' and 'to', or neither (the last 30 days)")
        if self.from_ is not None:
            try:
                validate_range(parse_day(self.from_, "from"), parse_day(self.to, "to"))
            except InvalidRange as exc:
                raise ValueError(str(exc)) from None
        return self


def tenant_lock(tenant_id: str) -> str:
    """The lock shared by every job that writes a tenant's data: never two at once."""
    return f"tenant:{tenant_id}"


def default_range(ctx: JobContext, tz: str) -> tuple[str, str]:
    """The trailing 30 local days ending on the day the job was meant for."""
    anchor = ctx.scheduled_for or ctx.clock.now()
    end = local_today(tz, anchor)
    return (end - timedelta(days=DEFAULT_DAYS - 1)).isoformat(), end.isoformat()


def active_tenant_ids(engine) -> list[str]:
    with engine.connect() as conn:
        return (
            conn.execute(
                select(tenants.c.id).where(tenants.c.status == "active").order_by(tenants.c.id)
            )
            .scalars()
            .all()
        )


def register(registry: Registry) -> None:
    def rebuild(ctx: JobContext) -> dict[str, Any]:
        p: RebuildPayload = ctx.payload
        if p.tenantId == "all":
            return fan_out(ctx, p)
        try:
            tenant = get_tenant(ctx.engine, p.tenantId)
        except TenantNotFound as exc:
            raise PermanentJobError(str(exc)) from None
        start, end = (p.from_, p.to) if p.from_ else default_range(ctx, tenant["timezone"])
        try:
            result = rebuild_daily_metrics(
                ctx.engine, p.tenantId, start, end, ctx.clock, replace=p.replace, source=p.source
            )
        except Exception as exc:
            _record(ctx, p.tenantId, error=error_text(exc))  # shown to the seller: no SQL
            raise
        _record(ctx, p.tenantId)
        ctx.add_records(result["rowsUpserted"])
        return result

    def fan_out(ctx: JobContext, p: RebuildPayload) -> dict[str, Any]:
        queue = Queue(ctx.engine, registry, ctx.clock)
        ids = active_tenant_ids(ctx.engine)
        payload = {"from": p.from_, "to": p.to} if p.from_ else {}
        if p.source != "rebuild":
            payload["source"] = p.source
        specs = [
            JobSpec(
                REBUILD_TYPE,
                {"tenantId": tid, **payload},
                tenant_id=tid,
                scheduled_for=ctx.scheduled_for,
                unique_key=f"rebuild:{tid}:{p.from_ or 'recent'}:{p.to or ''}",
            )
            for tid in ids
        ]
        made = queue.enqueue_many(specs)
        return {"fannedOut": len(made), "jobIds": [m.id for m in made]}

    def heal(ctx: JobContext) -> dict[str, Any]:
        """Find stale tenants, and partial ones not yet retried, with nothing queued for
        them and queue sync + rebuild.

        Only what a job can heal: a tenant without a Mercado Livre account, or whose
        account needs the seller to reconnect, gets no job (it could only fail); a partial
        tenant gets one sync, not one an hour (freshness.healable)."""
        queue = Queue(ctx.engine, registry, ctx.clock)
        healed, left = [], {}
        for f in all_freshness(ctx.engine, ctx.clock.now()):
            tid = f["tenantId"]
            codes = {r["code"] for r in f["reasons"]}
            if f["status"] == OK:
                continue
            if not healable(f):
                left[tid] = _NOT_HEALABLE.get(f["status"], f["status"])
                continue
            if reads.has_unfinished(ctx.engine, tid):
                left[tid] = "jobs already pending or running"
                continue
            if SYNC_TYPE in registry:  # the sync enqueues the rebuild when it succeeds
                spec = JobSpec(
                    SYNC_TYPE, {"tenantId": tid}, tenant_id=tid, unique_key=sync_key(tid)
                )
            else:
                spec = JobSpec(
                    REBUILD_TYPE,
                    {"tenantId": tid},
                    tenant_id=tid,
                    unique_key=f"rebuild:{tid}:recent:",
                )
            job = queue.enqueue_many([spec])[0]
            healed.append({"tenantId": tid, "jobId": job.id, "reasons": sorted(codes)})
            ctx.logger.warning(
                "tenant %s %s (%s): queued job %s", tid, f["status"], ", ".join(codes), job.id
            )
        ctx.add_records(len(healed))
        return {"healed": healed, "notHealed": left}

    registry.add(
        JobType(
            name=REBUILD_TYPE,
            handler=rebuild,
            payload_model=RebuildPayload,
            aliases=("rebuild_daily_metrics",),
            lock_key=lambda p, t: None if p.tenantId == "all" else tenant_lock(p.tenantId),
            description="Rebuild listing_metrics_daily for a tenant and range of local days.",
        )
    )
    registry.add(
        JobType(
            name="freshness_heal",
            handler=heal,
            payload_model=NoPayload,
            lock_key=lambda p, t: "freshness_heal",
            description="Queue a sync + rebuild for stale or partial tenants with nothing pending.",
        )
    )


_NOT_HEALABLE = {
    NOT_CONNECTED: "not connected to Mercado Livre: the seller must connect first",
    REAUTH_REQUIRED: "needs the seller to reconnect Mercado Livre",
    PARTIAL: "visits still missing after a retry: the next nightly sync fetches them again",
    IMPORTING: "first import under way: its sync is pending or running",
}


def _record(ctx: JobContext, tenant_id: str, error: str | None = None) -> None:
    record_outcome(ctx.engine, tenant_id, "rebuild", ctx.clock.now(), error)
