"""Mercado Livre notifications (the app's public callback URL) and the overview's cheap
"version", which the live dashboard polls.

`POST /api/v1/mercadolivre/notifications`: Mercado Livre wants a 200 within 500 ms and
disables topics that keep failing, so anything that is not ours (another app, a user we
do not know, a body we cannot act on) is answered 200 and counted, never stored; a body
that is not JSON is a 400. The notification is written durably (with its job) before
the 200: when the database cannot be reached the answer is 503 and Mercado Livre sends it
again (it retries for about an hour), so nothing is lost by answering.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from datetime import timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from superseller.api.auth import current_user
from superseller.api.deps import services
from superseller.api.errors import ApiError, error_body
from superseller.api.seller import tenant_of
from superseller.db.schema import tenant_metrics_daily
from superseller.jobs.cron import zone
from superseller.jobs.dbwatch import DB_ERRORS
from superseller.mercadolivre.notifications import count, receive
from superseller.users.accounts import User

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["mercadolivre"])


def _allowed(request: Request, allow_list: str) -> bool:
    if not allow_list.strip():
        return True
    host = request.client.host if request.client else ""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    for part in allow_list.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if addr in ipaddress.ip_network(part, strict=False):
                return True
        except ValueError:
            continue
    return False


@router.post("/mercadolivre/notifications")
async def ml_notifications(request: Request):
    """A Mercado Livre notification: stored and queued (200), duplicates and what is not
    ours answered 200 and counted, non-JSON 400, database away 503 (Mercado Livre retries)."""
    svc = services(request)
    if not _allowed(request, svc.settings.ml_notification_ips):
        count("forbidden_ip")
        raise ApiError(403, "forbidden", "this address may not send notifications")
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        count("malformed")
        raise ApiError(400, "invalid_json", "the body is not JSON") from None
    try:
        outcome = await run_in_threadpool(
            receive,
            svc.engine,
            svc.registry,
            svc.clock,
            svc.settings.ml_client_id,
            body,
            svc.settings.ml_notification_delay_s,
        )
    except DB_ERRORS as exc:
        log.warning("notification not stored, database unreachable: %s", type(exc).__name__)
        return JSONResponse(
            error_body("database_unavailable", "try again later: the notification was not stored"),
            503,
        )
    return {"status": outcome}


@router.get("/metrics/version")
def metrics_version(
    request: Request, user: User = Depends(current_user), tenantId: str | None = None
):
    """A cheap token that changes when the tenant's numbers change (what the live
    overview polls), with today's order count (the "novo pedido" cue)."""
    tenant = tenant_of(request, user, tenantId)
    svc = services(request)
    today = svc.clock.now().astimezone(zone(tenant["timezone"])).date()
    with svc.engine.connect().execution_options(sqlite_deferred=True) as conn:
        changed = conn.execute(
            select(func.max(tenant_metrics_daily.c.updated_at)).where(
                tenant_metrics_daily.c.tenant_id == tenant["id"],
                tenant_metrics_daily.c.date >= today - timedelta(days=400),
            )
        ).scalar()
        orders_today = conn.execute(
            select(tenant_metrics_daily.c.orders).where(
                tenant_metrics_daily.c.tenant_id == tenant["id"],
                tenant_metrics_daily.c.date == today,
            )
        ).scalar()
    stamp = (
        changed.isoformat() if changed is not None and hasattr(changed, "isoformat") else changed
    )
    return {
        "version": f"{stamp or '-'}|{orders_today or 0}",
        "ordersToday": int(orders_today or 0),
        "updatedAt": stamp,
    }
