"""The pages: Entrar, Visão geral, Anúncios, Jobs (admins). Data comes from the same
functions as the JSON API; the buttons call the JSON API from the browser."""

from __future__ import annotations

import hmac
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs

import plotly
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from superseller.api.admin_jobs import schedule_views
from superseller.api.auth import end_session, session_claims, user_of_token
from superseller.api.deps import services
from superseller.api.guards import csrf_token
from superseller.jobs import stats
from superseller.jobs.admin import JobAdmin
from superseller.jobs.errors import JobNotFound
from superseller.jobs.scheduler import Scheduler
from superseller.limits import LimitError, check_range
from superseller.market import prices, questions
from superseller.mercadolivre.sync import SCORE_TYPE, chain_progress
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
from superseller.users.accounts import User
from superseller.web.format import FILTERS

HERE = Path(__file__).parent
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(FILTERS)
router = APIRouter(include_in_schema=False)
DROP_DAYS = 7  # competitors' price drops shown: the last week up to the period's end


def import_steps(request: Request, tenant_id: str) -> tuple[int, int] | None:
    """(done, total) steps of the first import after connecting (`?importacao=<sync job>`),
    while it runs; for the overview's "Importando seus dados…" line."""
    raw = request.query_params.get("importacao", "")
    if not raw.isdigit() or len(raw) > 18:
        return None
    svc = services(request)
    admin = JobAdmin(svc.engine)
    try:
        sync = admin.get(int(raw))
    except JobNotFound:
        return None
    if sync["tenant_id"] != tenant_id or sync["type"] != "sync_mercadolivre":
        return None
    if sync["status"] in ("failed", "cancelled"):
        return None
    done, total = chain_progress(admin.get, sync, SCORE_TYPE in svc.registry)
    return (done, total) if done < total else None


templates.env.globals["import_steps"] = import_steps


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
    """The user of the session cookie (pages never read a bearer token)."""
    user = user_of_token(request, cookie_only=True)
    if user is None:
        raise LoginRequired()
    return user


def _csrf(request: Request) -> str:
    claims = session_claims(request, cookie_only=True)
    return csrf_token(services(request).settings, claims.session_id) if claims else ""


def _render(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
    context.setdefault("csrf_token", _csrf(request))
    context.setdefault("csp_nonce", getattr(request.state, "csp_nonce", ""))
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
def logout_link() -> Response:
    """Logging out is a POST (the header's form): a link elsewhere cannot log anyone out."""
    return RedirectResponse("/", status_code=303)


@router.post("/sair")
async def logout(request: Request) -> Response:
    """End the session (its token stops working everywhere) and drop the cookie. The form
    carries the session's CSRF token; the origin was checked before (api/guards.py)."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    given = (form.get("csrf") or [""])[0]
    expected = _csrf(request)
    if expected and not hmac.compare_digest(given, expected):
        return RedirectResponse("/", status_code=303)  # a stale or forged form: no logout
    out = RedirectResponse("/entrar", status_code=303)
    await run_in_threadpool(end_session, request, out)
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
            check_range(start, end)  # years 2000-2100
        except (InvalidRange, LimitError) as exc:
            error = str(exc)
            start, end = period(tenant["timezone"], svc.clock.now(), dias)
    data = overview(svc.engine, tenant["id"], start, end, top=5)
    fresh = tenant_freshness(svc.engine, tenant["id"], svc.clock.now())
    drops = prices.drop_summary(svc.engine, tenant["id"], end - timedelta(days=DROP_DAYS - 1))
    custom = bool(de and ate and not error)
    return _render(
        request,
        "overview.html",
        user=user,
        tenant=tenant,
        data=data,
        fresh=fresh,
        drops=drops,
        drop_days=DROP_DAYS,
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
    since = end - timedelta(days=DROP_DAYS - 1)
    drops = prices.drops_by_listing(svc.engine, tenant["id"], since)
    drafts = questions.drafts_by_listing(svc.engine, tenant["id"])
    return _render(
        request,
        "listings.html",
        user=user,
        tenant=tenant,
        rows=rows,
        drops=drops,
        drafts=drafts,
        days=dias,
        sort=ordem,
        direction=direcao,
        start=start,
        end=end,
        page="listings",
    )


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request):
    user = page_user(request)
    if user.role != "admin":
        raise PageMessage(403, user, "Acesso restrito", "Esta página é só para administradores.")
    svc = services(request)
    admin = JobAdmin(svc.engine, svc.clock)
    stats.fold(svc.engine, svc.clock)
    recent = admin.list(limit=20)
    schedules = schedule_views(svc)
    scheduler = Scheduler(svc.engine, svc.registry, clock=svc.clock)
    occurrences = {x["name"]: scheduler.occurrences(x["name"], limit=7) for x in schedules}
    logs = {j["id"]: admin.logs(j["id"]) for j in recent}
    return _render(
        request,
        "jobs.html",
        user=user,
        page="jobs",
        counts=stats.queue_counts(svc.engine, svc.clock),
        types=stats.job_type_stats(svc.engine, svc.clock)["types"],
        recent=recent,
        logs=logs,
        failed=admin.list(status="failed", limit=20),
        schedules=schedules,
        occurrences=occurrences,
    )
