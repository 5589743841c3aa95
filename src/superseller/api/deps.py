"""What the routes need: settings, engine, registry, clock; and the internal-key guard."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Header, Path, Request
from sqlalchemy import Engine

from superseller.api.errors import ApiError
from superseller.config import Settings
from superseller.internal_key import InternalKeys, KeyUnavailable
from superseller.jobs.clock import Clock
from superseller.jobs.registry import Registry
from superseller.limits import ID_MAX, PAYLOAD_MAX_BYTES

# Row ids in paths: bounded so that no database ever sees an integer it cannot store.
MAX_ID = ID_MAX
# A job's payload plus its envelope (type, tenant, keys, ...).
BODY_MAX_BYTES = PAYLOAD_MAX_BYTES + 16 * 1024


def body_within_limit(request: Request) -> None:
    """Refuse (413) a request body larger than a job payload can be, before using it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > BODY_MAX_BYTES:
        raise ApiError(
            413,
            "payload_too_large",
            f"the request body is {declared} bytes; at most {BODY_MAX_BYTES} are allowed",
        )


def id_path(what: str = "id"):
    return Path(ge=1, le=MAX_ID, description=what)


@dataclass
class Services:
    settings: Settings
    engine: Engine
    registry: Registry
    clock: Clock
    short_wait_s: float = 4.0  # under EventBridge's 5 s API-destination limit


def services(request: Request) -> Services:
    return request.app.state.services


def internal_keys(request: Request) -> InternalKeys:
    app = request.app
    if not hasattr(app.state, "internal_keys"):
        app.state.internal_keys = InternalKeys(services(request).settings)
    return app.state.internal_keys


LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def require_metrics_access(request: Request) -> None:
    """/metrics: `Authorization: Bearer <METRICS_TOKEN>` when a token is set; otherwise
    only clients on this machine (a scraper elsewhere needs the token)."""
    token = services(request).settings.metrics_token
    if token is not None and token.get_secret_value():
        given = request.headers.get("authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise ApiError(401, "unauthorized", "missing or wrong metrics token")
        return
    if (request.client.host if request.client else "") not in LOOPBACK:
        raise ApiError(403, "forbidden", "/metrics answers local clients only; set METRICS_TOKEN")


def require_internal_key(
    request: Request, x_internal_key: str | None = Header(default=None)
) -> None:
    """401 for a missing or wrong key, 503 when no key is configured (never an open door)
    or none can be read. The comparison takes constant time."""
    keys = internal_keys(request)
    if not keys.configured:
        raise ApiError(
            503,
            "internal_jobs_disabled",
            "internal jobs disabled: INTERNAL_JOBS_KEY is not configured",
        )
    try:
        ok = x_internal_key is not None and keys.matches(x_internal_key)
    except KeyUnavailable:
        raise ApiError(
            503, "internal_key_unavailable", "the internal key cannot be read right now"
        ) from None
    if not ok:
        raise ApiError(401, "unauthorized", "missing or wrong X-Internal-Key")
