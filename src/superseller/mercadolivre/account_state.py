"""Where a tenant stands with Mercado Livre, for the first steps a seller sees.

`not_connected` (no account yet: "Conecte sua conta"), `disconnected` (no account any
more, but data from before: kept and shown, with "Conectar de novo"), `reauth_required` (tokens revoked
or expired for good: "Reconectar"), `importing` (connected, the first sync queued or
running), `never_synced` (connected, no sync yet and none queued: the first import is one
click away), `connected`.
"""

from __future__ import annotations

from sqlalchemy import Engine, select

from superseller.db.schema import jobs, marketplace_accounts, tenants


def account_state(engine: Engine, tenant_id: str) -> str:
    with engine.connect() as conn:
        statuses = set(
            conn.execute(
                select(marketplace_accounts.c.status).where(
                    marketplace_accounts.c.tenant_id == tenant_id
                )
            ).scalars()
        )
        if not statuses:
            synced = conn.execute(
                select(tenants.c.last_sync_ok_at).where(tenants.c.id == tenant_id)
            ).scalar()
            return "not_connected" if synced is None else "disconnected"
        if "connected" not in statuses and "reauth_required" in statuses:
            return "reauth_required"
        synced = conn.execute(
            select(tenants.c.last_sync_ok_at).where(tenants.c.id == tenant_id)
        ).scalar()
    if synced is None:
        return "importing" if first_import_job(engine, tenant_id) is not None else "never_synced"
    return "connected"


def first_import_job(engine: Engine, tenant_id: str) -> int | None:
    """The tenant's sync queued or running (one at a time: its unique key), if any."""
    with engine.connect() as conn:
        return conn.execute(
            select(jobs.c.id)
            .where(
                jobs.c.tenant_id == tenant_id,
                jobs.c.type == "sync_mercadolivre",
                jobs.c.status.in_(("pending", "running")),
            )
            .order_by(jobs.c.id)
            .limit(1)
        ).scalar()
