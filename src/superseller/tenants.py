"""Tenants: the sellers SuperSeller works for."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from superseller.config import DEFAULT_TIMEZONE
from superseller.db.schema import tenants
from superseller.errors import NotFound
from superseller.jobs.cron import zone
from superseller.limits import TENANT_ID_MAX_LEN, TENANT_NAME_MAX_LEN, LimitError, check_len


class TenantNotFound(NotFound):
    code = "tenant_not_found"

    def __init__(self, tenant_id: str):
        super().__init__(f"tenant {tenant_id!r} not found")


def create_tenant(
    engine: Engine, name: str, timezone: str = DEFAULT_TIMEZONE, tenant_id: str | None = None
) -> dict[str, Any]:
    zone(timezone)
    check_len(tenant_id, TENANT_ID_MAX_LEN, "the tenant id")
    check_len(name, TENANT_NAME_MAX_LEN, "the tenant name")
    if not name or (tenant_id is not None and not tenant_id):
        raise LimitError("the tenant name and id cannot be empty")
    tid = tenant_id or str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(
            insert(tenants).values(
                id=tid, name=name, timezone=timezone, created_at=datetime.now(UTC)
            )
        )
    return get_tenant(engine, tid)


def get_tenant(engine: Engine, tenant_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(tenants).where(tenants.c.id == tenant_id)).first()
    if row is None:
        raise TenantNotFound(tenant_id)
    return dict(row._mapping)


def list_tenants(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(tenants).order_by(tenants.c.name))]


def record_outcome(
    engine: Engine,
    tenant_id: str,
    what: str,
    now: datetime,
    error: str | None = None,
    missing_visits: int = 0,
) -> None:
    """Note a sync's or rebuild's success or failure (`what`: 'sync' | 'rebuild'): the
    facts freshness is judged on. A successful sync also notes how many listings' visits
    it could not fetch (`missing_visits`), and counts the syncs in a row that left some."""
    values: dict[str, Any] = (
        {f"last_{what}_ok_at": now}
        if error is None
        else {f"last_{what}_error": error[:2000], f"last_{what}_error_at": now}
    )
    if what == "sync" and error is None:
        values["last_sync_missing_visits"] = missing_visits
        values["last_syncs_partial"] = tenants.c.last_syncs_partial + 1 if missing_visits else 0
    with engine.begin() as conn:
        conn.execute(update(tenants).where(tenants.c.id == tenant_id).values(**values))
