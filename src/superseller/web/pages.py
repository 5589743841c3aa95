"""The pages: Entrar, Visão geral, Anúncios, Jobs (admins). Data comes from the same
functions as the JSON API; the buttons call the JSON API from the browser."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import plotly
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from superseller.api.auth import COOKIE
from superseller.api.deps import services
from superseller.metrics.freshness import tenant_freshness
from superseller.metrics.queries import (
    LISTING_SORTS,
    listings_table,
    overview,
    period,
    sort_listings,
)
from superseller.metrics.rebuild import InvalidRange, parse_day, validate_range
from superseller.tenants import TenantNotFound, get_tenant, list_tenants
from superseller.users import tokens
from superseller.users.accounts import User, get_user
from superseller.web.format import FILTERS

HERE = Path(__file__).parent
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(FILTERS)
router = APIRouter(include_in_schema=False)


class LoginRequired(Exception):
    """Raised by a page when nobody is logged in: the app redirects to /entrar."""


class PageMessage(Exception):
    """Raised by a page that can only show a message (not found, not allowed)."""

    def __init__(self, status: int, user: User, title: str, message: str):
        super().__init__(title)
        self.status, self.user, self.title, self.message = status, user, title, message


def message_page(request: Request, exc: PageMessage) -> HTMLResponse:
    return _render(
        request, "message.html", exc.status, user=exc.user, title=exc.title, message=exc.message
    )


def page_user(request: Request) -> User:
    svc = services(request)
    token = request.cookies.get(COOKIE)
    uid = tokens.read(token, svc.settings.signing_key()) if token else None
    user = get_user(svc.engine, uid) if uid is not None else None
    if user is None:
        raise LoginRequired()
    return user


def _render(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status)


def _tenant(request: Request, user: User, wanted: str | None) -> dict:
    """The seller's own tenant; an admin picks one (default: the first)."""
    engine = services(request).engine
    found = None
    if user.role != "admin":
        found = get_tenant(engine, user.tenant_id) if user.tenant_id else None
    elif wanted:
        try:
            found = get_tenant(engine, wanted)
        except TenantNotFound:
            found = None
    else:
        found = next(iter(list_tenants(engine)), None)
    if found is None:
        raise PageMessage(404, user, "Loja não encontrada", "Nenhuma loja para mostrar.")
    return found


@router.get("/static/plotly.min.js")
def plotly_js() -> FileResponse:
    """The charting library, served from the installed plotly package (no CDN)."""
    return FileResponse(
        PLOTLY_JS,
        media_type="application/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/static/{name}")
def static(name: Literal["app.css", "app.js"]) -> FileResponse:
    kind = "text/css" if name.endswith(".css") else "application/javascript"
    return FileResponse(HERE / "static" / name, media_type=kind)


@router.get("/entrar", response_class=HTMLResponse)
def login_page(request: Request):
    return _render(request, "login.html")


@router.get("/sair")
def logout() -> Response:
    out = RedirectResponse("/entrar", status_code=303)
    out.delete_cookie(COOKIE)
    return out


@router.get("/", response_class=HTMLResponse)
def overview_page(
    request: Request,
    dias: int = Query(7, ge=1, le=400),
    de: str | None = None,
    ate: str | None = None,
    loja: str | None = Query(None, max_length=64),
):
    user = page_user(request)
    svc = services(request)
    tenant = _tenant(request, user, loja)
    error = None
    start, end = period(tenant["timezone"], svc.clock.now(), dias)
    if de and ate:
        try:
            start, end = parse_day(de, "de"), parse_day(ate, "ate")
            validate_range(start, end)
        except InvalidRange as exc:
            error = str(exc)
            start, end = period(tenant["timezone"], svc.clock.now(), dias)
    data = overview(svc.engine, tenant["id"], start, end, top=5)
    fresh = tenant_freshness(svc.engine, tenant["id"], svc.clock.now())
    custom = bool(de and ate and not error)
    return _render(
        request,
        "overview.html",
        user=user,
        tenant=tenant,
        data=data,
        fresh=fresh,
        days=None if custom else dias,
        error=error,
        start=start,
        end=end,
        page="overview",
    )


@router.get("/anuncios", response_class=HTMLResponse)
def listings_page(
    request: Request,
    dias: int = Query(30, ge=1, le=400),
    ordem: Literal[LISTING_SORTS] = "revenue",  # type: ignore[valid-type]
    direcao: Literal["desc", "asc"] = "desc",
    loja: str | None = Query(None, max_length=64),
):
    user = page_user(request)
    svc = services(request)
    tenant = _tenant(request, user, loja)
    start, end = period(tenant["timezone"], svc.clock.now(), dias)
    rows = sort_listings(
        listings_table(svc.engine, tenant["id"], start, end), ordem, descending=direcao == "desc"
    )
    return _render(
        request,
        "listings.html",
        user=user,
        tenant=tenant,
        rows=rows,
        days=dias,
        sort=ordem,
        direction=direcao,
        start=start,
        end=end,
        page="listings",
    )
