"""Connecting a seller's Mercado Livre account from the browser (OAuth, with PKCE).

`GET /api/v1/mercadolivre/connect` sends the logged-in seller to Mercado Livre with a
signed, short-lived `state` (tenant, user, nonce) and a PKCE challenge; the verifier
stays in an encrypted HttpOnly cookie. `GET /api/v1/mercadolivre/callback` checks the
state against the cookie, exchanges the code, stores the (encrypted) tokens, and
returns to the dashboard. A state is accepted once (its nonce is remembered until it
expires). A reconnection clears `reauth_required`.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta

import httpx
import jwt
from cryptography.fernet import Fernet, InvalidToken
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from superseller.api.errors import ApiError
from superseller.api.seller import tenant_of
from superseller.db.schema import oauth_states_used
from superseller.http.deps import Services, Svc, known_query_only
from superseller.http.sessions import CurrentUser
from superseller.mercadolivre.connect import (
    AccountInUse,
    authorization_url,
    connect_account,
    enqueue_backfill,
    oauth_app,
    pkce_pair,
)
from superseller.mercadolivre.errors import MLError
from superseller.mercadolivre.tokens import TokenCipher

router = APIRouter(prefix="/api/v1/mercadolivre", tags=["mercado livre"])
COOKIE = "superseller_ml_oauth"
STATE_TTL = timedelta(minutes=10)


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


@router.get(
    "/callback",
    status_code=303,
    response_class=RedirectResponse,
    responses={303: {"description": "To the dashboard (`Location`), the import under way"}},
)
def callback(
    request: Request,
    svc: Svc,
    code: str = Query(min_length=1, max_length=500),
    state: str = Query(min_length=1, max_length=2000),
):
    """Mercado Livre sends the seller back here: check, exchange, store, go to the dashboard."""
    try:
        claims = jwt.decode(
            state, _state_key(svc), algorithms=["HS256"], options={"require": ["exp"]}
        )
        held = json.loads(
            Fernet(svc.settings.encryption_key()).decrypt(request.cookies.get(COOKIE, "").encode())
        )
    except (jwt.PyJWTError, InvalidToken, ValueError):
        raise ApiError(
            400,
            "invalid_oauth_state",
            "the connection request is invalid or expired; start again from the dashboard",
        ) from None
    if not secrets.compare_digest(str(held.get("nonce", "")), str(claims.get("nonce", ""))):
        raise ApiError(
            400,
            "invalid_oauth_state",
            "the connection request does not match this browser; start again from the dashboard",
        )
    if not _first_use(svc, str(claims.get("nonce", "")), claims["exp"]):
        raise ApiError(
            400,
            "invalid_oauth_state",
            "this connection request was already used; start again from the dashboard",
        )
    try:
        connect_account(
            svc.engine,
            oauth_app(svc.settings),
            TokenCipher(svc.settings.encryption_key()),
            claims["tenant"],
            code,
            svc.clock.now(),
            code_verifier=held["verifier"],
        )
    except AccountInUse:
        return _account_in_use(request)
    except MLError as exc:
        raise ApiError(
            400, "mercadolivre_refused", f"Mercado Livre refused the connection ({exc.code})"
        ) from None
    except httpx.HTTPError:
        raise ApiError(
            502, "mercadolivre_unreachable", "Mercado Livre could not be reached; try again"
        ) from None
    # The first sync (90 days by default), its rebuild and score, at once: the seller
    # follows it at /api/v1/refresh/{id} ("Importando seus dados… x de y etapas").
    job = enqueue_backfill(svc.engine, svc.registry, svc.settings, claims["tenant"], svc.clock)
    out = RedirectResponse(f"/?conectado=1&importacao={job.id}", status_code=303)
    out.delete_cookie(COOKIE, path="/api/v1/mercadolivre")
    return out


def _account_in_use(request: Request):
    """409: a browser gets the message as a page (pt-BR), an API client the error body."""
    if "text/html" in request.headers.get("accept", ""):
        from superseller.web.pages import PageMessage, message_page

        page = message_page(
            request,
            PageMessage(
                409,
                None,
                "Conta já conectada",
                "Esta conta do Mercado Livre já está conectada a outra loja. "
                "Desconecte-a daquela loja ou entre com outra conta do Mercado Livre.",
            ),
        )
        page.delete_cookie(COOKIE, path="/api/v1/mercadolivre")
        return page
    raise ApiError(
        409,
        "mercadolivre_account_in_use",
        "this Mercado Livre account is already connected to another store",
    )
