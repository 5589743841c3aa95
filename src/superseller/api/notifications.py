"""Mercado Livre notifications (the app's public callback URL) and the overview's cheap
"version", which the live dashboard polls.

`POST /api/v1/mercadolivre/notifications`: Mercado Livre wants a 200 within 500 ms and
disables topics that keep failing, so anything that is not ours (another app, a user we
do not know, a body we cannot act on) or that cannot be fetched (a seller of ours who must
reconnect: `reauth_required`) is answered 200 and counted, never stored; a body
that is not JSON is a 400. The notification is written durably (with its job) before
the 200: when the database cannot be reached the answer is 503 and Mercado Livre sends it
again (it retries for about an hour), so nothing is lost by answering.

Notifications that arrive together are written together (`GroupCommit`): one transaction
and one thread hop per batch instead of per call, each answered after its batch
committed, so a burst from a fleet of sellers costs what a few calls do.
"""

from __future__ import annotations

import ipaddress
import json
import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from superseller.api.errors import ApiError, error_body
from superseller.api.models import ErrorBody
from superseller.api.seller import tenant_of
from superseller.http.deps import Svc, known_query_only
from superseller.http.sessions import CurrentUser
from superseller.jobs.dbwatch import DB_ERRORS
from superseller.mercadolivre.group_commit import GroupCommit
from superseller.mercadolivre.notifications import accept, count, store_received
from superseller.metrics.queries import numbers_version

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["mercado livre"])


# Mercado Livre's own example (its developers docs, "Notificaciones").
ML_EXAMPLE = {
    "_id": "f9f08571-1f65-4c46-9e0a-c0f43faac1c8",
    "resource": "/orders/2195160686",
    "user_id": 123456789,
    "topic": "orders_v2",
    "application_id": 2069392825111111,
    "attempts": 1,
    "sent": "2025-01-21T13:44:33.006Z",
    "received": "2025-01-21T13:44:32.984Z",
}


class NotificationAck(BaseModel):
    status: str  # stored, duplicate, foreign_app, unknown_user, reauth_required, malformed


class MetricsVersion(BaseModel):
    version: str
    ordersToday: int
    updatedAt: str | None


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


def _writer(request: Request, svc) -> GroupCommit:
    """The app's notification writer (made on first use). On SQLite each batch waits at
    most WEBHOOK_WAIT_S for the write lock, as one notification did."""
    writer = getattr(request.app.state, "ml_notification_writer", None)
    if writer is None:
        engine, registry, clock = svc.engine, svc.registry, svc.clock
        delay_s = svc.settings.ml_notification_delay_s
        writer = request.app.state.ml_notification_writer = GroupCommit(
            lambda notes: store_received(engine, registry, clock, notes, delay_s),
            retry_alone_unless=DB_ERRORS,
        )
    return writer


@router.post(
    "/mercadolivre/notifications",
    response_model=NotificationAck,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": (
                "Mercado Livre's notification, parsed leniently: any JSON is answered (what "
                "is not ours or cannot be acted on is counted and answered 200)."
            ),
            "content": {"application/json": {"schema": {}, "example": ML_EXAMPLE}},
        }
    },
    responses={
        400: {"model": ErrorBody, "description": "the body is not JSON"},
        403: {"model": ErrorBody, "description": "source address not allowed (when configured)"},
        503: {"model": ErrorBody, "description": "database away: not stored, ML retries"},
    },
)
async def ml_notifications(request: Request, svc: Svc):
    """A Mercado Livre notification: stored and queued (200), duplicates and what is not
    ours answered 200 and counted, non-JSON 400, database away 503 (Mercado Livre retries)."""
    if not _allowed(request, svc.settings.ml_notification_ips):
        count("forbidden_ip")
        raise ApiError(403, "forbidden", "this address may not send notifications")
    try:
        raw = await request.body()
    except ClientDisconnect:
        # The sender hung up mid-body (its own time-out): nothing to store, nobody to answer;
        # it retries, as Mercado Livre does. Counted, not a traceback per hang-up.
        count("disconnected")
        log.debug("notification sender disconnected before its body arrived")
        return Response(status_code=400)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        count("malformed")
        raise ApiError(400, "invalid_json", "the body is not JSON") from None
    except RecursionError:  # JSON nested deeper than the decoder goes (a few KB of brackets)
        count("malformed")
        raise ApiError(400, "invalid_json", "the body nests too deeply") from None
    note = accept(svc.settings.ml_client_id, body)
    if isinstance(note, str):  # not ours, or nothing to act on: answered, never stored
        return {"status": note}
    try:
        outcome = await _writer(request, svc).submit(note)
    except DB_ERRORS as exc:
        log.warning("notification not stored, database unreachable: %s", type(exc).__name__)
        return JSONResponse(
            error_body("database_unavailable", "try again later: the notification was not stored"),
            503,
        )
    return {"status": outcome}


@router.get(
    "/metrics/version", response_model=MetricsVersion, dependencies=[Depends(known_query_only)]
)
def metrics_version(svc: Svc, user: CurrentUser, tenantId: str | None = None):
    """A cheap token that changes when the tenant's numbers change (what the live
    overview polls), with today's order count (the "novo pedido" cue)."""
    tenant = tenant_of(svc, user, tenantId)
    return numbers_version(svc.engine, tenant["id"], tenant["timezone"], svc.clock.now())
