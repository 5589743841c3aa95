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
        max_tries=settings.ml_max_tries,
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


class AccountInUse(Exception):
    """The Mercado Livre user is already linked to another tenant."""

    def __init__(self, ml_user_id: int, tenant_id: str):
        super().__init__(
            f"Mercado Livre user {ml_user_id} is already connected to another tenant; "
            "disconnect it there first"
        )
        self.ml_user_id = ml_user_id
        self.tenant_id = tenant_id


class StoreHasOtherAccount(Exception):
    """The store is linked to another Mercado Livre user: one store, one seller account.
    Reconnecting means authorizing as that user; linking another one means disconnecting
    first (its numbers would otherwise be mixed with, and synced beside, the first's)."""

    def __init__(self, tenant_id: str, linked_user_id: int, ml_user_id: int):
        super().__init__(
            f"store {tenant_id} is linked to Mercado Livre user {linked_user_id}, not "
            f"{ml_user_id}; sign in as that user, or disconnect the store first"
        )
        self.tenant_id = tenant_id
        self.linked_user_id = linked_user_id
        self.ml_user_id = ml_user_id


def connect_account(
    engine: Engine,
    app: OAuthApp,
    cipher: TokenCipher,
    tenant_id: str,
    code: str,
    now: datetime,
    code_verifier: str | None = None,
) -> int:
    """Exchange the code and store the account (reconnecting an existing one).

    One Mercado Livre account belongs to one tenant: a user already linked to another
    tenant is refused (AccountInUse), and a store linked to another user refuses a second
    one (StoreHasOtherAccount: a seller who signed in at Mercado Livre with the wrong
    login; the store's sync kept using the first, revoked, account). Mercado Livre keeps
    only the latest refresh token
    of a user, so the pair this exchange issued goes to the account that owns the user:
    refusing must not leave the first tenant with a dead token."""
    tokens = app.exchange_code(code, code_verifier)
    user_id = int(tokens["user_id"])
    with engine.begin() as conn:
        owner_q = (
            select(marketplace_accounts)
            .where(
                marketplace_accounts.c.ml_user_id == user_id,
                marketplace_accounts.c.tenant_id != tenant_id,
            )
            .with_for_update()
        )  # nothing on SQLite: BEGIN IMMEDIATE already serialises
        owner = conn.execute(owner_q.order_by(marketplace_accounts.c.id)).first()
        if owner is not None:
            save_tokens(
                conn,
                owner.id,
                tokens,
                cipher,
                now,
                owner.token_version + 1,
                status=owner.status,
                status_reason=owner.status_reason,
            )
    if owner is not None:
        raise AccountInUse(user_id, owner.tenant_id)
    with engine.begin() as conn:
        linked = conn.execute(
            select(marketplace_accounts.c.ml_user_id)
            .where(
                marketplace_accounts.c.tenant_id == tenant_id,
                marketplace_accounts.c.ml_user_id != user_id,
            )
            .order_by(marketplace_accounts.c.id)
        ).first()
        if linked is not None:
            raise StoreHasOtherAccount(tenant_id, linked.ml_user_id, user_id)
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


def enqueue_backfill(engine: Engine, registry, settings: Settings, tenant_id: str, clock=None):
    """The first sync of a newly connected seller: `ML_BACKFILL_DAYS` (90) of history,
    then its rebuild and score, without waiting for the schedule. Returns the sync job."""
    from superseller.jobs.queue import Queue
    from superseller.tenant_jobs import sync_key

    return Queue(engine, registry, clock).enqueue(
        "sync_mercadolivre",
        {"tenantId": tenant_id, "daysBack": settings.ml_backfill_days},
        tenant_id=tenant_id,
        unique_key=sync_key(tenant_id),
        priority=10,
    )


class SandboxRefused(Exception):
    """The sandbox's authorization page did not send back a code."""

    def __init__(self, status: int, body: str):
        super().__init__(f"the sandbox refused the authorization ({status}): {body}")


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
    location = resp.headers.get("location")
    if location is None or "code" not in httpx.URL(location).params:
        raise SandboxRefused(resp.status_code, resp.text[:200])
    code = httpx.URL(location).params["code"]
    return connect_account(
        engine, oauth_app(settings), TokenCipher(settings.encryption_key()), tenant_id, code, now
    )
