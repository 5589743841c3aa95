"""A tenant's Mercado Livre client for the market jobs: the same client, token store and
process-wide rate limiter as the sync."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from sqlalchemy import select

from superseller.config import Settings
from superseller.db.schema import marketplace_accounts
from superseller.jobs import JobContext, PermanentJobError
from superseller.mercadolivre.client import MLClient, RateLimiter
from superseller.mercadolivre.connect import oauth_app
from superseller.mercadolivre.tokens import TokenCipher, TokenStore

_LIMITERS: dict[int, RateLimiter] = {}


def shared_limiter(rate: float) -> RateLimiter:
    """One limiter per event loop (the worker's): every market job shares the rate."""
    loop_id = id(asyncio.get_running_loop())
    if loop_id not in _LIMITERS:
        _LIMITERS.clear()
        _LIMITERS[loop_id] = RateLimiter(rate)
    return _LIMITERS[loop_id]


def account(engine, tenant_id: str):
    with engine.connect() as conn:
        acct = conn.execute(
            select(marketplace_accounts)
            .where(marketplace_accounts.c.tenant_id == tenant_id)
            .order_by(marketplace_accounts.c.id)
        ).first()
    if acct is None:
        raise PermanentJobError(f"tenant {tenant_id} has no Mercado Livre account")
    if acct.status == "reauth_required":
        raise PermanentJobError(
            f"Mercado Livre connection of tenant {tenant_id} needs re-authorization"
        )
    return acct


@asynccontextmanager
async def ml_client(ctx: JobContext, settings: Settings, tenant_id: str):
    acct = account(ctx.engine, tenant_id)
    store = TokenStore(
        ctx.engine,
        acct.id,
        oauth_app(settings),
        TokenCipher(settings.encryption_key()),
        ctx.clock,
    )
    client = MLClient(
        settings.ml_api_url,
        store,
        limiter=shared_limiter(settings.ml_requests_per_s),
        concurrency=settings.ml_concurrency,
        timeout_s=settings.ml_timeout_s,
        max_tries=settings.ml_max_tries,
    )
    try:
        yield client, acct
    finally:
        await client.close()
