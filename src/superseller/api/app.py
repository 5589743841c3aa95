"""The FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy import text

from superseller.api import (
    admin_console,
    admin_jobs,
    auth,
    errors,
    internal,
    job_status,
    mercadolivre_connect,
    openapi_doc,
    prometheus,
    seller,
)
from superseller.api.deps import Services, services
from superseller.web import console, pages


def create_app(svc: Services) -> FastAPI:
    # /docs (Swagger UI) and /redoc with their assets from the installed fastapi-offline
    # package, served under /docs-assets: no CDN, so they work without internet.
    app: FastAPI = FastAPIOffline(title="SuperSeller", version="0.1.0", static_url="/docs-assets")
    openapi_doc.install(app)
    app.state.services = svc
    errors.install(app)
    app.include_router(auth.router)
    app.include_router(seller.router)
    app.include_router(mercadolivre_connect.router)
    # Before the internal router: its /api/v1/jobs/{id} must not swallow /status and /stats.
    app.include_router(job_status.router)
    app.include_router(internal.router)
    app.include_router(admin_console.router)  # before admin_jobs' /{job_id}
    app.include_router(admin_jobs.router)
    app.include_router(console.router)  # the operator console (admins)
    app.include_router(pages.router)
    app.include_router(prometheus.router)

    @app.exception_handler(pages.LoginRequired)
    async def _login(_: Request, __: pages.LoginRequired):
        return RedirectResponse("/entrar", status_code=303)

    @app.exception_handler(pages.PageMessage)
    async def _message(request: Request, exc: pages.PageMessage):
        return pages.message_page(request, exc)

    @app.get("/healthz", tags=["health"])
    def healthz():
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz(request: Request):
        """The database answers and its migrations are current."""
        from superseller.db import migrate

        s = services(request)
        try:
            with s.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            current, head = migrate.current(s.engine), migrate.head()
        except Exception:  # noqa: BLE001 - any database failure means not ready
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
        if current != head:
            return JSONResponse(
                {"status": "unavailable", "migrations": current, "expected": head}, 503
            )
        return {"status": "ok", "migrations": current}

    return app
