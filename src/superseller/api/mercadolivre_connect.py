"""Connecting a seller's Mercado Livre account from the browser (OAuth, with PKCE).

`GET /api/v1/mercadolivre/connect` sends the logged-in seller to Mercado Livre with a
signed, short-lived `state` (tenant, user, nonce) and a PKCE challenge; the verifier
stays in an encrypted HttpOnly cookie. `GET /api/v1/mercadolivre/callback` checks the
state against the cookie, exchanges the code, stores the (encrypted) tokens, and
returns to the dashboard. A state is accepted once (its nonce is remembered until it
expires). A reconnection clears `reauth_required`.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx
import jwt
from cryptography.fernet import Fernet, InvalidToken
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from superseller.api.errors import ApiError
from superseller.api.models import ErrorBody, MLDisconnected
from superseller.api.seller import tenant_of
from superseller.db.schema import oauth_states_used
from superseller.http.deps import Services, Svc, known_query_only
from superseller.http.sessions import CurrentUser, user_of_token
from superseller.mercadolivre.account_state import account_state
from superseller.mercadolivre.connect import (
    AccountInUse,
    StoreHasOtherAccount,
    authorization_url,
    connect_account,
    enqueue_backfill,
    oauth_app,
    pkce_pair,
)
from superseller.mercadolivre.disconnect import NotConnected, disconnect_account
from superseller.mercadolivre.errors import MLError
from superseller.mercadolivre.tokens import OAuthApp, TokenCipher
from superseller.tenants import TenantNotFound, get_tenant

router = APIRouter(prefix="/api/v1/mercadolivre", tags=["mercado livre"])
COOKIE = "superseller_ml_oauth"
STATE_TTL = timedelta(minutes=10)
# The account states (account_state.py) in which the store is connected.
CONNECTED = ("importing", "never_synced", "connected")
# The code exchange is waited on by a seller's browser: two tries, at most a second apart
# (a job's ML_MAX_TRIES with back-off up to 20 s would keep the page blank half a minute),
# all within EXCHANGE_DEADLINE_S (a Mercado Livre that accepts the connection and never
# answers kept it blank 2 x 20 s); then the "Mercado Livre indisponível" page, and the
# seller connects again.
EXCHANGE_TRIES = 2
EXCHANGE_WAIT_S = 1.0
EXCHANGE_DEADLINE_S = 10.0
EXCHANGE_LAST_TRY_S = 1.0  # a try with less time than this left is not started


class _ExchangeApp(OAuthApp):
    """The OAuth app for the callback's exchange: a Retry-After longer than
    `backoff_cap_s` is waited `backoff_cap_s` (the second try may fail: the page says so),
    and both tries end by EXCHANGE_DEADLINE_S: each may take half of it at most (a first
    try that hangs leaves time for the second), and no more than what is left."""

    _deadline: float = 0.0

    def with_retries(self, call):
        self._deadline = time.monotonic() + EXCHANGE_DEADLINE_S
        return super().with_retries(call)

    def call_timeout(self) -> float:
        left = self._deadline - time.monotonic()
        if left < EXCHANGE_LAST_TRY_S:
            raise MLError(0, "network_error", "ExchangeDeadline")
        return min(left, EXCHANGE_DEADLINE_S / EXCHANGE_TRIES)

    def token_call(self, form: dict) -> dict:
        try:
            return super().token_call(form)
        except MLError as err:
            if err.retry_after is not None:
                err.retry_after = min(err.retry_after, self.backoff_cap_s)
            raise


def _exchange_app(settings) -> OAuthApp:
    fields = dataclasses.asdict(oauth_app(settings))
    fields.update(
        max_tries=min(EXCHANGE_TRIES, fields["max_tries"]),
        backoff_base_s=EXCHANGE_WAIT_S / 2,
        backoff_cap_s=EXCHANGE_WAIT_S,
    )
    return _ExchangeApp(**fields)


def _state_key(svc: Services) -> bytes:
    return svc.settings.signing_key() + b":ml-oauth-state"


@router.get(
    "/connect",
    status_code=303,
    response_class=RedirectResponse,
    responses={303: {"description": "To Mercado Livre's authorization page (`Location`)"}},
    dependencies=[Depends(known_query_only)],
)
def connect(
    request: Request,
    svc: Svc,
    user: CurrentUser,
    tenantId: str | None = Query(None, max_length=64),
):
    """Redirect to Mercado Livre's authorization page (303)."""
    if not svc.settings.ml_client_id or not svc.settings.ml_redirect_uri:
        raise ApiError(
            503,
            "mercadolivre_not_configured",
            "Mercado Livre app not configured (ML_CLIENT_ID, ML_REDIRECT_URI)",
        )
    tenant = tenant_of(svc, user, tenantId)
    nonce = secrets.token_urlsafe(16)
    now = svc.clock.now()
    state = jwt.encode(
        {"tenant": tenant["id"], "uid": user.id, "nonce": nonce, "exp": now + STATE_TTL},
        _state_key(svc),
        algorithm="HS256",
    )
    verifier, challenge = pkce_pair()
    cookie = (
        Fernet(svc.settings.encryption_key())
        .encrypt(json.dumps({"nonce": nonce, "verifier": verifier}).encode())
        .decode()
    )
    out = RedirectResponse(authorization_url(svc.settings, state, challenge), status_code=303)
    out.set_cookie(
        COOKIE,
        cookie,
        max_age=int(STATE_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        path="/api/v1/mercadolivre",
    )
    return out


def _first_use(svc, nonce: str, expires: int) -> bool:
    """Remember the state's nonce until the state expires; False if it was already used
    (by any process: the record is in the database)."""
    now = svc.clock.now()
    try:
        with svc.engine.begin() as conn:
            conn.execute(delete(oauth_states_used).where(oauth_states_used.c.expires_at <= now))
            conn.execute(
                insert(oauth_states_used).values(
                    nonce=nonce[:64], expires_at=datetime.fromtimestamp(expires, UTC)
                )
            )
    except IntegrityError:
        return False
    return True


class _BadState(Exception):
    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


def _checked_state(request: Request, svc, state: str | None) -> tuple[dict, dict]:
    """The state's claims and this browser's cookie, once both are checked (signature,
    expiry, the cookie's nonce, first use); _BadState otherwise."""
    try:
        if not state or len(state) > 2000:
            raise ValueError("no state")
        claims = jwt.decode(
            state, _state_key(svc), algorithms=["HS256"], options={"require": ["exp"]}
        )
        held = json.loads(
            Fernet(svc.settings.encryption_key()).decrypt(request.cookies.get(COOKIE, "").encode())
        )
    except (jwt.PyJWTError, InvalidToken, ValueError):
        raise _BadState("the connection request is invalid or expired") from None
    if not secrets.compare_digest(str(held.get("nonce", "")), str(claims.get("nonce", ""))):
        raise _BadState("the connection request does not match this browser")
    if not _first_use(svc, str(claims.get("nonce", "")), claims["exp"]):
        raise _BadState("this connection request was already used")
    return claims, held


def _connected_after_all(request: Request, svc, state: str | None) -> str | None:
    """The store a used state was for, when that state was consumed (its nonce recorded)
    and the signed-in user's store (or, for an admin, that store) is connected: a seller
    back on the callback (the browser's Back, a reload) after connecting. None otherwise."""
    if not state or len(state) > 2000:
        return None
    try:
        claims = jwt.decode(
            state, _state_key(svc), algorithms=["HS256"], options={"verify_exp": False}
        )
    except jwt.PyJWTError:
        return None
    tenant_id, nonce = str(claims.get("tenant", "")), str(claims.get("nonce", ""))[:64]
    user = user_of_token(request, cookie_only=True)
    if user is None or not nonce or (user.role != "admin" and user.tenant_id != tenant_id):
        return None
    with svc.engine.connect() as conn:
        used = conn.execute(
            select(oauth_states_used.c.nonce).where(oauth_states_used.c.nonce == nonce)
        ).first()
    if used is None or account_state(svc.engine, tenant_id) not in CONNECTED:
        return None
    return tenant_id


def _already_connected(request: Request, tenant_id: str):
    """The page "Esta conta já está conectada", with the way to the dashboard (where the
    import shows)."""
    from superseller.web.pages import action_page

    user = user_of_token(request, cookie_only=True)
    dashboard = (
        "/" if user is not None and user.role != "admin" else f"/?{urlencode({'loja': tenant_id})}"
    )
    page = action_page(
        request,
        200,
        "Esta conta já está conectada",
        "Esta conta do Mercado Livre já está conectada ao SuperSeller; não é preciso conectar "
        "de novo. Veja os números da loja no painel.",
        dashboard,
        "Ir para o painel",
    )
    page.delete_cookie(COOKIE, path="/api/v1/mercadolivre")
    return page


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _page(request: Request, status: int, title: str, message: str, tenant_id: str | None):
    """A pt-BR page with a button to start the connection again."""
    from superseller.web.pages import action_page

    again = "/api/v1/mercadolivre/connect" + (f"?tenantId={tenant_id}" if tenant_id else "")
    page = action_page(request, status, title, message, again, "Conectar de novo")
    page.delete_cookie(COOKIE, path="/api/v1/mercadolivre")
    return page


@router.get(
    "/callback",
    status_code=303,
    response_class=RedirectResponse,
    responses={
        303: {"description": "To the dashboard (`Location`), the import under way"},
        400: {
            "model": ErrorBody,
            "description": "Bad or used state; the seller declined at Mercado Livre "
            "(`mercadolivre_declined`); Mercado Livre refused the code "
            "(`mercadolivre_refused`)",
        },
        502: {"model": ErrorBody, "description": "Mercado Livre could not be reached"},
    },
)
def callback(
    request: Request,
    svc: Svc,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
):
    """Mercado Livre sends the seller back here: check, exchange, store, go to the dashboard.

    Lenient by design: Mercado Livre's own error redirect (`?error=access_denied&state=`,
    no code) is answered with a pt-BR page and a button to connect again, never a 422;
    the state is checked first either way."""
    try:
        claims, held = _checked_state(request, svc, state)
    except _BadState as exc:
        if _wants_html(request) and (tenant_id := _connected_after_all(request, svc, state)):
            return _already_connected(request, tenant_id)
        if _wants_html(request):
            return _page(
                request,
                400,
                "Pedido de conexão expirado",
                "Este pedido de conexão com o Mercado Livre expirou, já foi usado ou foi "
                "aberto em outro navegador. Comece de novo pelo botão abaixo.",
                None,
            )
        raise ApiError(
            400, "invalid_oauth_state", f"{exc.why}; start again from the dashboard"
        ) from None
    tenant_id = claims["tenant"]
    if error or not code or len(code) > 500:
        declined = error == "access_denied"
        if _wants_html(request):
            return _page(
                request,
                400,
                "Conexão não concluída",
                "Você não autorizou o acesso do SuperSeller à sua conta do Mercado Livre, "
                "então nada foi conectado. Para ver seus números, conecte de novo e "
                "clique em “Permitir” no Mercado Livre."
                if declined
                else "O Mercado Livre não concluiu a autorização, então nada foi conectado. "
                "Tente conectar de novo; se continuar, fale com o suporte.",
                tenant_id,
            )
        raise ApiError(
            400,
            "mercadolivre_declined" if declined else "mercadolivre_refused",
            "the seller did not authorize the app at Mercado Livre"
            if declined
            else f"Mercado Livre did not authorize the connection ({(error or 'no code')[:60]})",
        )
    try:
        connect_account(
            svc.engine,
            _exchange_app(svc.settings),
            TokenCipher(svc.settings.encryption_key()),
            tenant_id,
            code,
            svc.clock.now(),
            code_verifier=held["verifier"],
        )
    except AccountInUse as exc:
        return _account_in_use(request, svc, exc.tenant_id)
    except StoreHasOtherAccount as exc:
        return _other_account(request, exc)
    except MLError as exc:  # network errors are MLError status 0 (after the retries)
        return _exchange_failed(request, tenant_id, exc)
    except httpx.HTTPError:
        return _exchange_failed(request, tenant_id, None)
    # The first sync (90 days by default), its rebuild and score, at once: the seller
    # follows it at /api/v1/refresh/{id} ("Importando seus dados… x de y etapas").
    job = enqueue_backfill(svc.engine, svc.registry, svc.settings, tenant_id, svc.clock)
    out = RedirectResponse(f"/?conectado=1&importacao={job.id}", status_code=303)
    out.delete_cookie(COOKIE, path="/api/v1/mercadolivre")
    return out


def _exchange_failed(request: Request, tenant_id: str, exc: MLError | None):
    """The code exchange failed: Mercado Livre refused the code (400 `invalid_grant`: expired
    or already used; another 4xx), or could not be reached (network error, 429/5xx after
    the retries; `exc` None: an HTTP failure outside the client). A browser gets a pt-BR
    page saying which, with "Conectar de novo"; an API client the error body."""
    unreachable = exc is None or exc.status == 0 or exc.retryable
    if _wants_html(request):
        if unreachable:
            return _page(
                request,
                502,
                "Mercado Livre indisponível",
                "Não foi possível falar com o Mercado Livre agora, então nada foi conectado. "
                "Tente conectar de novo em alguns minutos.",
                tenant_id,
            )
        return _page(
            request,
            400,
            "Conexão não concluída",
            "O Mercado Livre recusou a conexão: o código expirou ou já foi usado. "
            "Nada foi conectado; comece de novo pelo botão abaixo."
            if exc.code == "invalid_grant"
            else "O Mercado Livre recusou a conexão, então nada foi conectado. Tente conectar "
            "de novo; se continuar, fale com o suporte.",
            tenant_id,
        )
    if unreachable:
        raise ApiError(
            502, "mercadolivre_unreachable", "Mercado Livre could not be reached; try again"
        )
    raise ApiError(
        400, "mercadolivre_refused", f"Mercado Livre refused the connection ({exc.code})"
    )


def _account_in_use(request: Request, svc, owner_tenant: str):
    """409: a browser gets the message as a page (pt-BR), an API client the error body.
    The page names the other store only to whoever may see it (an admin)."""
    if _wants_html(request):
        from superseller.web.pages import PageMessage, message_page

        user = user_of_token(request, cookie_only=True)
        where = None
        if user is not None and (user.role == "admin" or user.tenant_id == owner_tenant):
            try:
                where = get_tenant(svc.engine, owner_tenant)["name"]
            except TenantNotFound:
                where = None
        page = message_page(
            request,
            PageMessage(
                409,
                user,
                "Conta já conectada",
                f"Esta conta do Mercado Livre já está conectada à loja “{where}”. "
                "Desconecte-a na loja "
                f"“{where}” (Visão geral › Conta do Mercado Livre › Desconectar) e conecte "
                "de novo aqui, ou entre com outra conta do Mercado Livre."
                if where
                else "Esta conta do Mercado Livre já está conectada a outra loja do "
                "SuperSeller. Entre com outra conta do Mercado Livre, ou peça a quem "
                "cuida daquela loja para desconectá-la e depois conecte de novo aqui.",
            ),
        )
        page.delete_cookie(COOKIE, path="/api/v1/mercadolivre")
        return page
    raise ApiError(
        409,
        "mercadolivre_account_in_use",
        "this Mercado Livre account is already connected to another store",
    )


def _other_account(request: Request, exc: StoreHasOtherAccount):
    """409: the seller signed in at Mercado Livre with another login than the store's.
    A browser gets a pt-BR page that says which account the store uses and both ways on."""
    if _wants_html(request):
        from superseller.web.pages import PageMessage, message_page

        page = message_page(
            request,
            PageMessage(
                409,
                user_of_token(request, cookie_only=True),
                "Outra conta do Mercado Livre",
                f"Você entrou no Mercado Livre com a conta {exc.ml_user_id}, mas esta loja "
                f"está ligada à conta {exc.linked_user_id}. Para reconectar, saia do Mercado "
                "Livre, entre com a conta da loja e conecte de novo. Para ligar a loja a "
                "outra conta, desconecte a atual antes (Visão geral › Conta do Mercado "
                "Livre › Desconectar).",
            ),
        )
        page.delete_cookie(COOKIE, path="/api/v1/mercadolivre")
        return page
    raise ApiError(
        409,
        "mercadolivre_other_account",
        f"this store is linked to Mercado Livre user {exc.linked_user_id}; sign in as that "
        "user to reconnect, or disconnect the store first",
    )


@router.delete(
    "/connection",
    response_model=MLDisconnected,
    responses={
        403: {"model": ErrorBody, "description": "Another store than the seller's own"},
        409: {"model": ErrorBody, "description": "The store has no Mercado Livre account"},
    },
    dependencies=[Depends(known_query_only)],
)
def disconnect(svc: Svc, user: CurrentUser, tenantId: str | None = Query(None, max_length=64)):
    """Disconnect the store's Mercado Livre account: its tokens are deleted, its listings,
    orders and metrics kept; syncs stop until someone connects again (the account may
    then be connected to this or another store). The store's seller or an admin
    (`tenantId`); a seller naming another store gets 403."""
    if user.role != "admin" and tenantId not in (None, user.tenant_id):
        raise ApiError(403, "forbidden", "only this store's seller or an admin can disconnect it")
    tenant = tenant_of(svc, user, tenantId)
    try:
        done = disconnect_account(svc.engine, tenant["id"], user.email)
    except NotConnected:
        raise ApiError(
            409, "not_connected", "this store has no Mercado Livre account to disconnect"
        ) from None
    return {"tenantId": done.tenant_id, "mlUserIds": done.ml_user_ids}
