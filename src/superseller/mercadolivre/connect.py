"""Connecting a seller's Mercado Livre account (OAuth authorization code, optional PKCE)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime
from urllib.parse import urlencode

import httpx
from sqlalchemy import Engine, select

from superseller.config import Settings
from superseller.db.schema import marketplace_accounts
from superseller.mercadolivre.tokens import OAuthApp, TokenCipher, save_tokens
from superseller.mercadolivre.upsert import upsert


def oauth_app(settings: Settings) -> OAuthApp:
    return OAuthApp(
        settings.ml_api_url,
        settings.ml_client_id,
        settings.ml_client_secret.get_secret_value(),
        settings.ml_redirect_uri,
    )


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def authorization_url(settings: Settings, state: str, code_challenge: str | None = None) -> str:
    params = {
        "response_type": "code",
        "client_id": settings.ml_client_id,
        "redirect_uri": settings.ml_redirect_uri,
        "state": state,
    }
    if code_challenge:
        params |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
    return f"{settings.ml_auth_url}?{urlencode(params)}"


def connect_account(
    engine: Engine,
    app: OAuthApp,
    cipher: TokenCipher,
    tenant_id: str,
    code: str,
    now: datetime,
    code_verifier: str | None = None,
) -> int:
    """Exchange the code and store the account (reconnecting an existing one)."""
    tokens = app.exchange_code(code, code_verifier)
    user_id = int(tokens["user_id"])
    with engine.begin() as conn:
        upsert(
            conn,
            marketplace_accounts,
            [
                {
                    "tenant_id": tenant_id,
                    "ml_user_id": user_id,
                    "status": "connected",
                    "created_at": now,
                    "updated_at": now,
                }
            ],
            ["tenant_id", "ml_user_id"],
            ["status"],
        )
        row = conn.execute(
            select(marketplace_accounts).where(
                marketplace_accounts.c.tenant_id == tenant_id,
                marketplace_accounts.c.ml_user_id == user_id,
            )
        ).one()
        save_tokens(conn, row.id, tokens, cipher, now, row.token_version + 1)
    return row.id


def connect_sandbox(engine: Engine, settings: Settings, tenant_id: str, now: datetime) -> int:
    """The whole authorization-code flow against the local sandbox, which approves at once."""
    with httpx.Client(timeout=20) as http:
        resp = http.get(
            settings.ml_auth_url,
            params={
                "response_type": "code",
                "client_id": settings.ml_client_id,
                "redirect_uri": settings.ml_redirect_uri,
                "state": secrets.token_urlsafe(8),
            },
        )
    code = httpx.URL(resp.headers["location"]).params["code"]
    return connect_account(
        engine, oauth_app(settings), TokenCipher(settings.encryption_key()), tenant_id, code, now
    )
