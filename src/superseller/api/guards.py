"""ASGI guards around every request: the body size (by Content-Length before anything
reads it, streamed bodies as they arrive), cross-site request
forgery (same-origin check for cookie-authenticated state changes) and security headers.

A request authenticated by `Authorization: Bearer` is not subject to the origin check:
a browser never adds that header to a cross-site request by itself.
"""

from __future__ import annotations

import json
import secrets
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from superseller.http.sessions import SESSION_COOKIE, csrf_token  # noqa: F401

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Pages that load third-party assets by design (FastAPI's interactive docs): no CSP there;
# `API_DOCS=false` turns them off.
_NO_CSP = ("/docs", "/redoc")
# Files that are the same for everyone (the docs' Swagger/ReDoc assets): cacheable for an
# hour, like /static; every other answer may carry someone's data and is `no-store`.
_SHARED_ASSETS = ("/docs-assets/",)
_SHARED_CACHE = b"public, max-age=3600"


async def _error(send: Send, status: int, code: str, message: str, headers=()) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def origin_of(url: str) -> str | None:
    """scheme://host[:port], lower-case, default ports dropped; None if not a URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodySizeLimit:
    """413 with the project's error body for a body over the limit: a declared one before
    any of it is read, a streamed one as soon as the count passes the limit (the rest is
    never read, so memory never holds more than the limit). `per_path` gives a route
    (path prefix) a limit of its own, e.g. a webhook."""

    def __init__(self, app: ASGIApp, max_bytes: int, per_path: dict[str, int] | None = None):
        self.app, self.max_bytes, self.per_path = app, max_bytes, per_path or {}

    def _limit(self, path: str) -> int:
        for prefix, limit in self.per_path.items():
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope.get("path", ""))
        message = f"the request body is larger than {limit} bytes"
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _error(send, 413, "payload_too_large", message)
            return
        received, too_large, started = 0, False, False

        async def counted():
            nonlocal received, too_large
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > limit:
                    too_large = True
                    raise BodyTooLarge(limit)
            return msg

        async def replied(msg) -> None:
            nonlocal started
            if too_large and msg["type"] == "http.response.start":
                started = True  # whatever the app made of the cut body: our 413 instead
                await _error(send, 413, "payload_too_large", message)
                return
            if too_large and msg["type"] == "http.response.body":
                return
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, counted, replied)
        except Exception:
            if not too_large:
                raise
            if not started:
                await _error(send, 413, "payload_too_large", message)


class SameOriginGuard:
    """Refuse (403) a state-changing request that a browser sent with the session cookie
    unless it comes from our own origin (Origin, else Referer): the public URL when set,
    else the origin the request names itself. A request without the cookie that names a
    foreign Origin (a browser on another site) is refused as well; callers that are not
    browsers send no Origin and are not affected."""

    def __init__(self, app: ASGIApp, public_url: str = ""):
        self.app = app
        self.public_origin = origin_of(public_url) if public_url else None

    def _expected(self, scope: Scope, headers: Headers) -> str | None:
        if self.public_origin:
            return self.public_origin
        host = headers.get("host")
        return origin_of(f"{scope.get('scheme', 'http')}://{host}") if host else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            headers = Headers(scope=scope)
            bearer = headers.get("authorization", "").lower().startswith("bearer ")
            cookie = SimpleCookie()
            try:
                cookie.load(headers.get("cookie", ""))
            except Exception:  # noqa: BLE001 - a malformed cookie header carries no session
                cookie = SimpleCookie()
            origin = headers.get("origin")
            # With the cookie: our Origin (or Referer) is required. Without it: a browser
            # that names another origin is refused too (a login forced from another site).
            if not bearer and (SESSION_COOKIE in cookie or origin is not None):
                claimed = origin or headers.get("referer") or ""
                expected = self._expected(scope, headers)
                if expected is None or origin_of(claimed) != expected:
                    await _error(
                        send,
                        403,
                        "cross_origin_refused",
                        "this request did not come from the SuperSeller pages; "
                        "reload the page and try again",
                    )
                    return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """nosniff, no framing, a strict referrer policy on every response; on HTML pages a
    CSP allowing only our own assets (and inline scripts with this response's nonce);
    HSTS when the public URL is https; `Cache-Control: no-store` on every response that does
    not name its own caching (pages and API answers carry a seller's data: after *Sair*, the
    browser's back button or a shared proxy must not show them again; /static sets its own,
    the docs' assets get an hour). Outermost: the size and origin refusals carry them too.
    The nonce is `request.state.csp_nonce`."""

    def __init__(self, app: ASGIApp, public_url: str = ""):
        self.app = app
        self.hsts = public_url.lower().startswith("https://")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        path = scope.get("path", "")

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                ]
                ctype = dict((k.lower(), v) for k, v in headers).get(b"content-type", b"")
                if ctype.startswith(b"text/html") and not path.startswith(_NO_CSP):
                    extra.append((b"content-security-policy", _csp(nonce).encode()))
                if self.hsts:
                    extra.append((b"strict-transport-security", b"max-age=31536000"))
                shared = path.startswith(_SHARED_ASSETS) and message.get("status") == 200
                extra.append((b"cache-control", _SHARED_CACHE if shared else b"no-store"))
                headers += [(k, v) for k, v in extra if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


ML_IMAGES = "https://*.mlstatic.com"


def _csp(nonce: str) -> str:
    return (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        # Inline style attributes: the chart library sets them; styles cannot run code.
        "style-src 'self' 'unsafe-inline'; "
        # Listing thumbnails are Mercado Livre's own images, served from its CDN.
        f"img-src 'self' data: {ML_IMAGES}; font-src 'self'; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
