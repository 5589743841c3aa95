"""The FastAPI application."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy import text
from starlette.middleware.gzip import GZipMiddleware

from superseller.api import (
    admin_console,
    admin_jobs,
    auth,
    errors,
    internal,
    job_status,
    market,
    mercadolivre_connect,
    notifications,
    openapi_doc,
    prometheus,
    seller,
)
from superseller.api.deps import Services, require_metrics_access
from superseller.api.guards import BodySizeLimit, SameOriginGuard, SecurityHeaders
from superseller.api.models import ErrorBody, Health, Ready
from superseller.config import Settings
from superseller.http.deps import known_query_only
from superseller.web import console, pages


def uvicorn_options(settings: Settings) -> dict:
    """How uvicorn must run this app: its loggers through ours (logs.py: redaction, JSON),
    and X-Forwarded-* believed only from the proxies FORWARDED_ALLOW_IPS names (none by
    default: otherwise any client could pick its address, and the login limit with it)."""
    trusted = settings.forwarded_allow_ips.strip()
    return {
        "log_config": None,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or "",
    }


def create_app(svc: Services) -> FastAPI:
    settings = svc.settings
    if settings.api_docs:
        # /docs (Swagger UI) and /redoc with their assets from the installed fastapi-offline
        # package, served under /docs-assets: no CDN, so they work without internet.
        app: FastAPI = FastAPIOffline(
            title="SuperSeller", version="0.1.0", static_url="/docs-assets"
        )
        openapi_doc.install(app)
    else:  # API_DOCS=false: no /docs, /redoc nor /openapi.json in production
        app = FastAPI(
            title="SuperSeller", version="0.1.0", docs_url=None, redoc_url=None, openapi_url=None
        )
    app.state.services = svc
    # Outermost last: the headers wrap everything (the refusals below included), then the
    # size check runs, then the origin check; compression wraps what the app answers (HTML,
    # CSS, JS and JSON, for clients that accept gzip).
    app.add_middleware(GZipMiddleware, minimum_size=500)
    app.add_middleware(SameOriginGuard, public_url=settings.public_url)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders, public_url=settings.public_url)
    errors.install(app, html=pages.error_page)
    # The JSON API refuses query parameters its routes do not declare (422).
    strict = [Depends(known_query_only)]
    app.include_router(auth.router, dependencies=strict)
    app.include_router(seller.router, dependencies=strict)
    app.include_router(mercadolivre_connect.router)  # /callback: whatever ML adds
    # Mercado Livre's webhook takes whatever ML sends (never a 4xx for an extra parameter).
    app.include_router(notifications.router)
    # Before the internal router: its /api/v1/jobs/{id} must not swallow /status and /stats.
    app.include_router(job_status.router, dependencies=strict)
    app.include_router(internal.router, dependencies=strict)
    app.include_router(admin_console.router, dependencies=strict)  # before admin_jobs' /{job_id}
    app.include_router(admin_jobs.router, dependencies=strict)
    app.include_router(market.admin, dependencies=strict)
    app.include_router(market.seller, dependencies=strict)
    app.include_router(console.router)  # the operator console (admins)
    app.include_router(pages.router)
    app.include_router(prometheus.router, dependencies=[Depends(require_metrics_access)])

    @app.exception_handler(pages.LoginRequired)
    async def _login(request: Request, __: pages.LoginRequired):
        return pages.to_login(request)

    @app.exception_handler(pages.PageMessage)
    async def _message(request: Request, exc: pages.PageMessage):
        return pages.message_page(request, exc)

    @app.get("/healthz", tags=["health"], response_model=Health)
    def healthz():
        """The process is up."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        response_model=Ready,
        responses={
            503: {"model": ErrorBody, "description": "Not ready: what is wrong, since when"}
        },
    )
    def readyz(request: Request):
        """Ready when the database answers, its migrations are current, and every loop this
        process embeds (worker, scheduler) runs and gets through to the database. Otherwise
        503 with the project's error body, naming what is wrong and since when."""
        return readiness(request.app.state)

    return app


def readiness(state) -> JSONResponse | dict:
    """/readyz's decision, from the app's state (`services`, and `loops` under `serve`)."""
    from alembic.runtime.migration import MigrationContext

    from superseller.db import migrate

    svc: Services = state.services
    loops = getattr(state, "loops", [])
    problems = []
    current = None
    try:
        # A plain read (deferred on SQLite: a held write lock must not hang the probe).
        with svc.engine.connect().execution_options(sqlite_deferred=True) as conn:
            conn.execute(text("SELECT 1"))
            current = MigrationContext.configure(conn).get_current_revision()
        state.database_unreachable_since = None
    except Exception as exc:  # noqa: BLE001 - any database failure means not ready
        since = getattr(state, "database_unreachable_since", None) or datetime.now(UTC)
        state.database_unreachable_since = since
        problems.append(
            {
                "check": "database",
                "state": "unreachable",
                "since": since.isoformat(),
                "error": type(exc).__name__,
            }
        )
    head = migrate.head()
    if not problems and current != head:
        problems.append(
            {"check": "migrations", "state": "behind", "current": current, "expected": head}
        )
    statuses = [loop.status() for loop in loops]
    problems += [{"check": s["loop"], **s} for s in statuses if s["state"] != "ok"]
    if problems:
        message = "not ready: " + "; ".join(
            f"{p['check']} {p['state']}" + (f" since {p['since']}" if p.get("since") else "")
            for p in problems
        )
        body = errors.error_body("not_ready", message)
        body["error"]["checks"] = problems
        return JSONResponse(body, 503)
    return {"status": "ok", "migrations": current, "loops": statuses}
