"""A tenant's jobs: which tenant a job belongs to, the unique key that keeps one sync per
tenant, and jobs enqueued by hand (the admin API's `POST /api/admin/jobs`, the CLI).

A job whose payload names a tenant (`tenantId`) belongs to it: `jobs.tenant_id` is what
the console's Loja column and filter read and what the fair claim's per-tenant cap
(`JOB_TENANT_MAX_RUNNING`) counts. The features set it when they enqueue (the fan-outs,
the internal endpoints, "Atualizar dados"); a job made by hand gets it here, from its
payload (or, given beside a payload that asks for one, into it: `with_tenant`), and is
refused at once when that tenant does not exist (instead of being stored
and failing later with a PermanentJobError). The job engine knows nothing of tenants:
this module sits above it (cli/api -> features -> jobs, db).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, select

from superseller.db.schema import tenants
from superseller.errors import UserFacingError
from superseller.jobs import audit
from superseller.jobs.clock import Clock
from superseller.jobs.queue import Enqueued, JobSpec, Queue
from superseller.jobs.registry import Registry
from superseller.tenants import TenantNotFound

# A payload `tenantId` meaning every tenant: the job fans out and is itself no one's.
ALL = "all"


def sync_key(tenant_id: str) -> str:
    """The unique key of a tenant's sync: whoever asks ("Atualizar dados", the first
    import, `superseller sync`, the healer) while one is pending or running joins it."""
    return f"sync:{tenant_id}"


def tenant_of(payload: dict[str, Any] | None) -> str | None:
    """The tenant a payload names (`tenantId`), or None: none named, or `all`."""
    named = (payload or {}).get("tenantId")
    if not isinstance(named, str) or named == ALL:
        return None  # a non-string is left to the payload's own validation
    return named


class TenantMismatch(UserFacingError):
    """The job's tenant and its payload's `tenantId` disagree."""

    code = "tenant_mismatch"


def owner(spec: JobSpec) -> str | None:
    """The tenant a hand-made job belongs to: the one its payload names, else the one
    given with it. Both given and different (or one given for an `all` job): refused."""
    named, given = tenant_of(spec.payload), spec.tenant_id
    if given is not None and named is not None and given != named:
        raise TenantMismatch(
            f"tenantId {given!r} and payload.tenantId {named!r} differ; give one of them"
        )
    if given is not None and (spec.payload or {}).get("tenantId") == ALL:
        raise TenantMismatch(
            f"payload.tenantId 'all' is every tenant's job; leave tenantId ({given!r}) out"
        )
    return named if named is not None else given


def with_tenant(registry: Registry, spec: JobSpec) -> dict[str, Any] | None:
    """The payload, naming the job's tenant when its type asks for a `tenantId` the payload
    left out: `jobs enqueue sync_mercadolivre --tenant loja1` (or the API's `tenantId`) is
    that store's sync, not a refusal for a missing field."""
    payload = spec.payload
    job_type = registry.find(spec.type)
    model = job_type.payload_model if job_type else None
    wants = model is not None and "tenantId" in model.model_fields
    if spec.tenant_id is None or not wants or "tenantId" in (payload or {}):
        return payload
    return {**(payload or {}), "tenantId": spec.tenant_id}


def enqueue_by_hand(
    engine: Engine,
    registry: Registry,
    spec: JobSpec,
    actor: str,
    clock: Clock | None = None,
) -> Enqueued:
    """Enqueue a job someone asked for (an admin, a command line): it belongs to its
    tenant (`owner`), which must exist (TenantNotFound: nothing stored), and its
    creation is audited as `actor`, in the same transaction. A pending or running job
    with the same unique key is returned instead (`created` False, nothing audited)."""
    spec = replace(spec, tenant_id=owner(spec))
    spec = replace(spec, payload=with_tenant(registry, spec))
    with engine.begin() as conn:
        # The queue's checks (type, payload, bounds) come first: their errors say more.
        made = Queue(engine, registry, clock).enqueue_many([spec], conn)[0]
        if spec.tenant_id is not None:
            found = conn.execute(select(tenants.c.id).where(tenants.c.id == spec.tenant_id))
            if found.first() is None:
                raise TenantNotFound(spec.tenant_id)  # the transaction rolls back
        if made.created:
            audit.record(conn, actor, "job.create", "job", made.id, None, clock)
    return made
