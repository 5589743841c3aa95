"""The pages: Entrar, Visão geral, Anúncios, Jobs (admins). Data comes from the same
functions as the JSON API; the buttons call the JSON API from the browser."""

from __future__ import annotations

import csv
import hmac
import io
import re
import unicodedata
from datetime import date, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from superseller.http.deps import services
from superseller.http.errors import validation_fields
from superseller.http.sessions import csrf_token, end_session, session_claims, user_of_token
from superseller.jobs.admin import JobAdmin
from superseller.jobs.errors import JobNotFound
from superseller.jobs.pause import state as engine_state
from superseller.limits import DATE_MAX, DATE_MIN, MAX_RANGE_DAYS
from superseller.market import prices, questions
from superseller.mercadolivre.account_state import account_state, first_import_job
from superseller.mercadolivre.progress import chain_status
from superseller.mercadolivre.sync import SCORE_TYPE
from superseller.metrics.explain import explain
from superseller.metrics.freshness import tenant_freshness
from superseller.metrics.queries import (
    CLIP_FILTERS,
    GRADE_NAMES,
    LISTING_SORTS,
    NoCompleteDay,
    complete_days,
    complete_period,
    filter_listings,
    listings_table,
    overview,
    paginate,
    sort_listings,
    today_so_far,
)
from superseller.tenants import TenantNotFound, get_tenant, list_tenants
from superseller.users.accounts import User
from superseller.web.charts import daily_chart
from superseller.web.format import FILTERS

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(FILTERS)


def _qs(base: dict, **over) -> str:
    """A query string from the page's filters with some changed; empty values left out."""
    merged = {**base, **over}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "")})


templates.env.globals["qs"] = _qs
DROP_DAYS = 7  # competitors' price drops shown: the last week up to the period's end


def import_steps(request: Request, tenant_id: str, account: str) -> dict | None:
    """The import under way, for the overview's progress line: the sync of
    `?importacao=<job>` (where connecting lands), or else the first import itself while
    it runs. `{job, done, total, text}` (mercadolivre/progress.py), None when none runs."""
    svc = services(request)
    admin = JobAdmin(svc.engine)
    raw = request.query_params.get("importacao", "")
    job_id = int(raw) if raw.isdigit() and len(raw) <= 18 else None
    if job_id is None and account == "importing":
        job_id = first_import_job(svc.engine, tenant_id)
    if job_id is None:
        return None
    try:
        sync = admin.get(job_id)
    except JobNotFound:
        return None
    if sync["tenant_id"] != tenant_id or sync["type"] != "sync_mercadolivre":
        return None
    if sync["status"] in ("failed", "cancelled") or (sync["result"] or {}).get("skipped"):
        return None
    steps = chain_status(svc.engine, admin.get, sync, SCORE_TYPE in svc.registry)
    return {"job": sync["id"], **steps} if steps["done"] < steps["total"] else None


templates.env.globals["import_steps"] = import_steps


class LoginRequired(Exception):
    """Raised by a page when nobody is logged in: the app redirects to /entrar."""


def local_path(value: str | None) -> str:
    """`value` if it is a path of this site (what a login may return to), else "/": an
    absolute URL, a scheme-relative `//host` or a backslash trick never leaves the site."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith(("//", "/\\"))
        or len(value) > 2000
        or any(ch in value for ch in "\\\r\n\t")
    ):
        return "/"
    return value


def to_login(request: Request) -> RedirectResponse:
    """The redirect to the login page for someone not signed in; a page they asked for
    (`GET /anuncios?dias=7`, a bookmark, a shared link) is where the login returns them."""
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET" or local_path(back) in ("/", "/entrar"):
        return RedirectResponse("/entrar", status_code=303)
    return RedirectResponse(f"/entrar?volta={quote(back, safe='')}", status_code=303)


class PageMessage(Exception):
    """Raised by a page that can only show a message (not found, not allowed)."""

    def __init__(self, status: int, user: User, title: str, message: str):
        super().__init__(title)
        self.status, self.user, self.title, self.message = status, user, title, message


def _viewer(request: Request) -> User | None:
    """The signed-in user, or None: a message page renders without a session, and without
    the database (its 503 page is one of them)."""
    try:
        return page_user(request)
    except Exception:  # noqa: BLE001 - no session, an expired one, or no database
        return None


def _message(
    request: Request, status: int, user: User | None, title: str, message: str, **extra
) -> HTMLResponse:
    """The one page that shows a title and a message (errors, refusals, a declined
    authorization), with optional `details` and one `action_url`/`action_label` button."""
    return _render(
        request,
        "message.html",
        status,
        user=user,
        title=title,
        message=message,
        status_code=status,
        **extra,
    )


def message_page(request: Request, exc: PageMessage) -> HTMLResponse:
    return _message(request, exc.status, exc.user, exc.title, exc.message)


def action_page(
    request: Request, status: int, title: str, message: str, action_url: str, action_label: str
) -> HTMLResponse:
    """A message with one button (e.g. "Conectar de novo" after a declined authorization)."""
    return _message(
        request,
        status,
        _viewer(request),
        title,
        message,
        action_url=action_url,
        action_label=action_label,
    )


ERROR_PAGES = {
    400: ("Pedido inválido", "Não foi possível entender este pedido. Volte e tente de novo."),
    401: ("Entre para continuar", "Sua sessão terminou. Entre de novo."),
    403: ("Acesso restrito", "Você não tem permissão para abrir esta página."),
    404: (
        "Página não encontrada",
        "Este endereço não existe. Confira o link ou volte à visão geral.",
    ),
    405: ("Pedido inválido", "Este endereço não aceita este tipo de pedido."),
    422: ("Endereço com valores inválidos", "Um valor no endereço não é válido."),
    500: (
        "Algo deu errado do nosso lado",
        "O erro foi registrado. Tente de novo em instantes; se continuar, fale com o suporte.",
    ),
    502: (
        "Mercado Livre indisponível",
        "Não conseguimos falar com o Mercado Livre. Tente de novo.",
    ),
    503: (
        "Serviço temporariamente indisponível",
        "Não conseguimos acessar os dados agora. Nada foi perdido: tente de novo em instantes.",
    ),
}


def error_page(request: Request, status: int, fields: list[dict] | None = None) -> Response:
    """The HTML error page a browser gets (the API's JSON errors' twin, in Portuguese)."""
    if status == 401:
        return to_login(request)
    title, message = ERROR_PAGES.get(status, ERROR_PAGES[400 if status < 500 else 500])
    details = [f"O valor de “{f['field'].split('.')[-1]}” não é válido." for f in fields or []]
    return _message(request, status, _viewer(request), title, message, details=details)


class PageRoute(APIRoute):
    """A page's route: a query or path value its signature refuses (`/?dias=abc`,
    `/anuncios?pagina=-1`, `/jobs/abc`) answers the pt-BR error page (422) whatever the
    client accepts; the JSON API's routes keep their JSON 422 (api/errors.py)."""

    def get_route_handler(self):
        handle = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as exc:
                return await run_in_threadpool(error_page, request, 422, validation_fields(exc))

        return page_handler


router = APIRouter(include_in_schema=False, route_class=PageRoute)


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


def stores_for(request: Request, user: User) -> list[dict]:
    """The stores an admin can switch between (the header's "Loja" picker); a seller has
    one store and no picker."""
    if user.role != "admin":
        return []
    return [{"id": t["id"], "name": t["name"]} for t in list_tenants(services(request).engine)]


# The files /static/ serves, by name; any other name is the 404 every unknown path gets
# (a Literal parameter answered 422 "O valor de “name” não é válido" to a mistyped link).
STATIC_FILES = {
    "app.css": "text/css",
    "app.js": "application/javascript",
    "favicon.svg": "image/svg+xml",
}


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    if name not in STATIC_FILES:
        raise StarletteHTTPException(404)
    return FileResponse(
        HERE / "static" / name,
        media_type=STATIC_FILES[name],
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/entrar", response_class=HTMLResponse)
def login_page(request: Request, volta: str | None = Query(None, max_length=2000)):
    """The login form; someone already signed in (a bookmark, the back button) goes to their
    overview instead of a form that would sign them in again. `volta`: the page to return
    to after the login (`to_login`), a path of this site only."""
    back = local_path(volta)
    if _viewer(request) is not None:
        return RedirectResponse(back, status_code=303)
    return _render(request, "login.html", back=back)


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


class RangeError(ValueError):
    """A custom period the seller typed that cannot be shown; the message is in pt-BR."""


def _br(d: date) -> str:
    return d.strftime("%d/%m/%Y")


# A day as the date field sends it (aaaa-mm-dd) or as a seller writes it (dd/mm/aaaa, what
# the error message asks for); one digit for the day or month too (1/12/2026).
_DAY_FORMATS = (
    re.compile(r"(?P<y>[0-9]{4})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2})"),
    re.compile(r"(?P<d>[0-9]{1,2})/(?P<m>[0-9]{1,2})/(?P<y>[0-9]{4})"),
)


def _day_parts(value: str) -> tuple[int, int, int] | None:
    """(year, month, day) of a value in one of the accepted formats, whether or not the
    calendar has that day (30/02/2026); None for any other format."""
    for pattern in _DAY_FORMATS:
        if found := pattern.fullmatch(value.strip()):
            return int(found["y"]), int(found["m"]), int(found["d"])
    return None


def _day(value: str) -> date | None:
    """The day a value names (see `_DAY_FORMATS`), else None: a wrong format, or a day the
    calendar does not have."""
    parts = _day_parts(value)
    try:
        return date(*parts) if parts else None
    except ValueError:  # 30/02/2026, 2026-13-01
        return None


def _day_error(value: str, label: str) -> str:
    """Why a value is not a day: a right format naming a day the calendar does not have
    says so; anything else gets the format to use."""
    parts = _day_parts(value)
    if parts is None:
        return f"Data inválida em “{label}”: use o formato dd/mm/aaaa (por exemplo, 01/12/2026)."
    year, month, day = parts
    return f"Data inválida em “{label}”: {day:02d}/{month:02d}/{year:04d} não existe no calendário."


def custom_range(de: str | None, ate: str | None) -> tuple[date, date]:
    """The seller's own period ("De" / "Até"), checked against limits.py, in Portuguese."""
    if not (de and ate):
        raise RangeError("Informe as duas datas, “De” e “Até”.")
    days = []
    for value, label in ((de, "De"), (ate, "Até")):
        days.append(_day(value))
        if days[-1] is None:
            raise RangeError(_day_error(value, label))
        if not DATE_MIN <= days[-1] <= DATE_MAX:
            raise RangeError(
                f"A data em “{label}” deve estar entre {_br(DATE_MIN)} e {_br(DATE_MAX)}."
            )
    start, end = days
    if end < start:
        raise RangeError(
            f"A data final ({_br(end)}) é anterior à inicial ({_br(start)}): inverta as datas."
        )
    length = (end - start).days + 1
    if length > MAX_RANGE_DAYS:
        raise RangeError(f"O período tem {length} dias; o máximo é {MAX_RANGE_DAYS}.")
    return start, end


@router.get("/", response_class=HTMLResponse)
def overview_page(
    request: Request,
    dias: int = Query(7, ge=1, le=MAX_RANGE_DAYS),
    de: str | None = Query(None, max_length=10),
    ate: str | None = Query(None, max_length=10),
    loja: str | None = Query(None, max_length=64),
):
    user = page_user(request)
    svc = services(request)
    tenant = _tenant(request, user, loja)
    now = svc.clock.now()
    custom = bool(de or ate)
    context = {
        "user": user,
        "tenant": tenant,
        "page": "overview",
        "account": account_state(svc.engine, tenant["id"]),
        "stores": stores_for(request, user),
        "ml_configured": bool(svc.settings.ml_client_id and svc.settings.ml_redirect_uri),
        "fresh": tenant_freshness(svc.engine, tenant["id"], now),
        "paused": engine_state(svc.engine),
        "today": today_so_far(svc.engine, tenant, now),
        "days": None if custom else dias,
        "de": de or "",
        "ate": ate or "",
    }
    cut = False  # a chosen period cut to its complete days (it reached today or later)
    if custom:
        try:
            start, end = custom_range(de, ate)
            context.update(de=start.isoformat(), ate=end.isoformat())  # as the fields take them
            start, asked_end = _complete_chosen(tenant["timezone"], now, start, end)
            cut, end = asked_end < end, asked_end
        except RangeError as exc:
            # no silent fallback to 7 days: the error, the form as typed (a day the date
            # field cannot show, 05/12/2026, as it can), nothing else
            for key, value in (("de", de), ("ate", ate)):
                day = _day(value) if value else None
                context[key] = day.isoformat() if day else (value or "")
            return _render(request, "overview.html", 422, error=str(exc), data=None, **context)
    else:
        start, end = complete_period(tenant["timezone"], now, dias)
    data = overview(svc.engine, tenant["id"], start, end, top=5)
    return _render(
        request,
        "overview.html",
        data=data,
        why=explain(svc.engine, tenant["id"], start, end, top=3),
        chart=daily_chart(data["series"]) if data["coverage"]["coveredDays"] else None,
        drops=prices.drop_summary(svc.engine, tenant["id"], end - timedelta(days=DROP_DAYS - 1)),
        drop_days=DROP_DAYS,
        start=start,
        end=end,
        cut=cut,
        error=None,
        **context,
    )


STATUSES = {
    "active": "Ativo",
    "paused": "Pausado",
    "closed": "Encerrado",
    "under_review": "Em revisão",
}
CLIPS = {"tem": "Tem clip", "nao-tem": "Não tem clip", "nao-verificado": "Clip não verificado"}


def _choice(value: str | None, allowed, user: User, what: str) -> str | None:
    """A filter from a form: empty means "all"; anything else must be one of `allowed`."""
    if not value:
        return None
    if value not in allowed:
        raise PageMessage(422, user, "Filtro inválido", f"O filtro “{what}” não aceita esse valor.")
    return value


def _listing_rows(request, user, loja, dias, ordem, direcao, q, status, nota, clip):
    status = _choice(status, STATUSES, user, "Status")
    nota = _choice(nota, (*GRADE_NAMES, "sem-nota"), user, "Nota")
    clip = _choice(clip, CLIP_FILTERS, user, "Clip")
    svc = services(request)
    tenant = _tenant(request, user, loja)
    start, end = complete_period(tenant["timezone"], svc.clock.now(), dias)
    rows = sort_listings(
        listings_table(svc.engine, tenant["id"], start, end), ordem, descending=direcao == "desc"
    )
    return tenant, start, end, filter_listings(rows, q, status, nota, clip)


@router.get("/anuncios", response_class=HTMLResponse)
def listings_page(
    request: Request,
    dias: int = Query(30, ge=1, le=MAX_RANGE_DAYS),
    ordem: Literal[LISTING_SORTS] = "revenue",  # type: ignore[valid-type]
    direcao: Literal["desc", "asc"] = "desc",
    q: str | None = Query(None, max_length=100),
    status: str | None = Query(None, max_length=20),
    nota: str | None = Query(None, max_length=20),
    clip: str | None = Query(None, max_length=20),
    pagina: int = Query(1, ge=1, le=100_000),
    loja: str | None = Query(None, max_length=64),
):
    user = page_user(request)
    tenant, start, end, rows = _listing_rows(
        request, user, loja, dias, ordem, direcao, q, status, nota, clip
    )
    svc = services(request)
    since = end - timedelta(days=DROP_DAYS - 1)
    drops = prices.drops_by_listing(svc.engine, tenant["id"], since)
    drafts = questions.drafts_by_listing(svc.engine, tenant["id"])
    filters = {"dias": dias, "q": q or "", "status": status or "", "nota": nota or ""}
    filters |= {"clip": clip or "", "ordem": ordem, "direcao": direcao}
    if user.role == "admin":
        filters["loja"] = tenant["id"]
    return _render(
        request,
        "listings.html",
        user=user,
        tenant=tenant,
        paged=paginate(rows, pagina),
        drops=drops,
        drafts=drafts,
        days=dias,
        sort=ordem,
        direction=direcao,
        filters=filters,
        statuses=STATUSES,
        grades=GRADE_NAMES,
        clips=CLIPS,
        start=start,
        end=end,
        page="listings",
        stores=stores_for(request, user),
        picker_action="/anuncios",
        # how fresh these numbers are, as on the overview (a disconnected store's too)
        account=account_state(svc.engine, tenant["id"]),
        fresh=tenant_freshness(svc.engine, tenant["id"], svc.clock.now()),
    )


_UNSAFE_IN_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")  # control characters, path separators
_NOT_TOKEN = re.compile(r"[^A-Za-z0-9._-]")


def attachment(name: str) -> str:
    """A `Content-Disposition` value for a download named `name`, safe whatever the name
    holds (tenant ids older than the slug rule may carry quotes, `;`, accents, CR/LF):
    an ASCII `filename` for old clients (accents dropped, anything else `_`) and the
    exact name, UTF-8 and percent-encoded, in `filename*` (RFC 6266, RFC 5987)."""
    name = _UNSAFE_IN_NAME.sub("_", name)
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    plain = _NOT_TOKEN.sub("_", plain) or "download"
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


def _csv(name: str, header: list[str], rows: list[list], decimal_comma: bool) -> Response:
    """A CSV download; `decimal_comma` gives what a pt-BR spreadsheet opens as numbers
    (1234,56 with ';' between fields), otherwise 1234.56 with ','."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";" if decimal_comma else ",", lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(
            [
                (f"{v:.2f}".replace(".", ",") if decimal_comma else f"{v:.2f}")
                if isinstance(v, float)
                else ""
                if v is None
                else v
                for v in row
            ]
        )
    return Response(
        "\ufeff" + out.getvalue(),  # the BOM makes spreadsheets read UTF-8
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": attachment(name)},
    )


def _complete_chosen(tz: str, now, start: date, end: date) -> tuple[date, date]:
    """A chosen period cut to its complete days (`complete_days`), for the overview and its
    download alike; one with none is a RangeError telling the seller which days have."""
    try:
        return complete_days(tz, now, start, end)
    except NoCompleteDay as exc:
        raise RangeError(
            "O período escolhido não tem nenhum dia completo: escolha datas até "
            f"ontem ({_br(exc.yesterday)}). Os números de hoje, parciais, ficam no "
            "quadro “Hoje” de 7 ou 30 dias."
        ) from None


@router.get("/anuncios.csv")
def listings_csv(
    request: Request,
    dias: int = Query(30, ge=1, le=MAX_RANGE_DAYS),
    ordem: Literal[LISTING_SORTS] = "revenue",  # type: ignore[valid-type]
    direcao: Literal["desc", "asc"] = "desc",
    q: str | None = Query(None, max_length=100),
    status: str | None = Query(None, max_length=20),
    nota: str | None = Query(None, max_length=20),
    clip: str | None = Query(None, max_length=20),
    formato: Literal["br", "intl"] = "br",
    loja: str | None = Query(None, max_length=64),
):
    """The listings table as filtered on the page (all pages)."""
    user = page_user(request)
    tenant, start, end, rows = _listing_rows(
        request, user, loja, dias, ordem, direcao, q, status, nota, clip
    )
    header = ["id", "titulo", "status", "preco", "estoque", "nota", "classificacao"]
    header += ["receita", "pedidos", "unidades", "visitas", "conversao_pct", "proxima_acao", "link"]
    body = [
        [
            r["externalId"],
            r["title"],
            # the words of the page for a Brazilian spreadsheet; the codes for other tools
            STATUSES.get(r["status"], r["status"]) if formato == "br" else r["status"],
            r["price"],
            r["stock"],
            r["score"],
            r["grade"],
            r["revenue"],
            r["orders"],
            r["units"],
            r["visits"],
            None if r["conversion"] is None else round(r["conversion"] * 100, 2),
            r["action"],
            r["permalink"],
        ]
        for r in rows
    ]
    name = f"anuncios_{tenant['id']}_{start.isoformat()}_{end.isoformat()}.csv"
    return _csv(name, header, body, formato == "br")


@router.get("/metricas.csv")
def daily_csv(
    request: Request,
    dias: int = Query(7, ge=1, le=MAX_RANGE_DAYS),
    de: str | None = Query(None, max_length=10),
    ate: str | None = Query(None, max_length=10),
    formato: Literal["br", "intl"] = "br",
    loja: str | None = Query(None, max_length=64),
):
    """The overview's daily figures for the chosen period: its complete days, as on the page
    (never half of today as a full row, nor days still to come as zeros)."""
    user = page_user(request)
    svc = services(request)
    tenant = _tenant(request, user, loja)
    now = svc.clock.now()
    if de or ate:
        try:
            start, end = _complete_chosen(tenant["timezone"], now, *custom_range(de, ate))
        except RangeError as exc:
            raise PageMessage(422, user, "Período inválido", str(exc)) from None
    else:
        start, end = complete_period(tenant["timezone"], now, dias)
    data = overview(svc.engine, tenant["id"], start, end, top=0)
    body = [[s["date"], s["revenue"], s["orders"], s["visits"]] for s in data["series"]]
    name = f"metricas_{tenant['id']}_{start.isoformat()}_{end.isoformat()}.csv"
    return _csv(name, ["data", "receita", "pedidos", "visitas"], body, formato == "br")
