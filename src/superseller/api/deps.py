"""What the routes need (from `superseller.http.deps`) and the API's own guards: the
internal key and access to `/metrics`."""

from __future__ import annotations

import hmac

from fastapi import Header, Request

from superseller.http.deps import (  # noqa: F401 - the routes' imports
    BODY_MAX_BYTES,
    MAX_ID,
    Services,
    Svc,
    body_within_limit,
    id_path,
    services,
)
from superseller.http.errors import ApiError
from superseller.internal_key import InternalKeys, KeyUnavailable


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
