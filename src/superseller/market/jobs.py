"""Job types of the market feature: `harvest`, `generate_embeddings`, `generate_drops`,
`generate_questions`.

`harvest` (daily 02:00) queues `generate_embeddings` for the tenant, which then queues
`generate_drops`. `tenantId: "all"` fans out one job per connected tenant. Every market job
of a tenant holds the lock `market:{tenant}` (one at a time)."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from superseller.config import Settings
from superseller.jobs import JobContext, JobType, Registry
from superseller.jobs.queue import JobSpec, Queue
from superseller.market import embeddings, prices, questions
from superseller.market.access import ml_client
from superseller.market.harvest import harvest_tenant
from superseller.mercadolivre.sync import connected_tenants


class TenantPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenantId: str = Field(min_length=1, max_length=64)
    followUp: bool = True  # queue the next step (embeddings -> drops)


def market_lock(p: TenantPayload, _tenant: str | None) -> str | None:
    return None if p.tenantId == "all" else f"market:{p.tenantId}"


def register(registry: Registry, settings: Settings) -> None:
    def fan_out(ctx: JobContext, job_type: str) -> dict[str, Any]:
        made = Queue(ctx.engine, registry, ctx.clock).enqueue_many(
            [
                JobSpec(
                    job_type,
                    {"tenantId": tid},
                    tenant_id=tid,
                    scheduled_for=ctx.scheduled_for,
                    unique_key=f"{job_type}:{tid}",
                )
                for tid in connected_tenants(ctx.engine)
            ]
        )
        return {"fannedOut": len(made), "jobIds": [m.id for m in made]}

    def follow(ctx: JobContext, job_type: str, tenant_id: str) -> int:
        return (
            Queue(ctx.engine, registry, ctx.clock)
            .enqueue_many(
                [
                    JobSpec(
                        job_type,
                        {"tenantId": tenant_id},
                        tenant_id=tenant_id,
                        unique_key=f"{job_type}:{tenant_id}",
                    )
                ]
            )[0]
            .id
        )

    async def harvest(ctx: JobContext) -> dict[str, Any]:
        p: TenantPayload = ctx.payload
        if p.tenantId == "all":
            return fan_out(ctx, "harvest")
        async with ml_client(ctx, settings, p.tenantId) as (client, _acct):
            result = await harvest_tenant(ctx, client, p.tenantId, settings.job_log_retention_days)
        if p.followUp:
            result["embeddingsJobId"] = follow(ctx, "generate_embeddings", p.tenantId)
        return result

    def generate_embeddings(ctx: JobContext) -> dict[str, Any]:
        p: TenantPayload = ctx.payload
        if p.tenantId == "all":
            return fan_out(ctx, "generate_embeddings")
        embedder = embeddings.embedder_for(settings.embedding_model)
        result = embeddings.generate(ctx.engine, p.tenantId, embedder, clock=ctx.clock)
        ctx.add_records(result["embedded"])
        if p.followUp:
            result["dropsJobId"] = follow(ctx, "generate_drops", p.tenantId)
        return result

    def generate_drops(ctx: JobContext) -> dict[str, Any]:
        p: TenantPayload = ctx.payload
        if p.tenantId == "all":
            return fan_out(ctx, "generate_drops")
        result = prices.generate_drops(ctx.engine, p.tenantId, ctx.clock)
        ctx.add_records(result["alertsCreated"])
        return result

    async def generate_questions(ctx: JobContext) -> dict[str, Any]:
        p: TenantPayload = ctx.payload
        if p.tenantId == "all":
            return fan_out(ctx, "generate_questions")
        async with ml_client(ctx, settings, p.tenantId) as (client, acct):
            found = await questions.fetch(client, acct.ml_user_id)
        new = await asyncio.to_thread(
            questions.save_questions, ctx.engine, p.tenantId, found, ctx.clock
        )
        ctx.add_records(new)
        result = await asyncio.to_thread(
            questions.build_drafts, ctx.engine, p.tenantId, settings, ctx.clock
        )
        return {"fetched": len(found), "new": new, **result}

    for name, handler, description in (
        ("harvest", harvest, "Collect competitors' items and trends (harvest_sources)."),
        ("generate_embeddings", generate_embeddings, "Embed listing and competitor titles."),
        ("generate_drops", generate_drops, "Alert on comparable items whose price dropped."),
        (
            "generate_questions",
            generate_questions,
            "Group buyers' recurring questions and draft answers (never posted).",
        ),
    ):
        registry.add(
            JobType(
                name=name,
                handler=handler,
                payload_model=TenantPayload,
                timeout_s=3600,
                lock_key=market_lock,
                description=description,
            )
        )
