"""Access tokens: encrypted at rest, refreshed single-flight across processes.

The refresh token is single-use and rotates. Two processes refreshing with the
same token race, and the loser gets `invalid_grant` — disconnecting the seller.
So a refresh happens inside a write transaction that locks the account row
(`FOR UPDATE` on PostgreSQL; SQLite's write lock): whoever gets the lock first
refreshes and stores the new pair before committing; the others, once they
get the lock, see `token_version` moved on and use the new token.

Mercado Livre has already retired the old refresh token when it answers, so a new pair
that cannot be stored (the database went away between the answer and the commit) is
held in memory and stored as soon as the database is back (`HOLD_S` at most), never
dropped: dropping it would disconnect the seller with nobody having revoked anything.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Engine, select, update

from superseller.db.schema import marketplace_accounts
from superseller.jobs.clock import Clock, SystemClock
from superseller.jobs.dbwatch import DB_ERRORS, one_line
from superseller.mercadolivre import telemetry
from superseller.mercadolivre.errors import MLError, ReauthRequired, parse_error

log = logging.getLogger("superseller.mercadolivre.tokens")
EARLY = timedelta(minutes=5)  # refresh a little before expiry
HOLD_S = 3600.0  # how long a rotated pair waits in memory for the database to come back
NO_TOKENS = "no_tokens"  # the account row holds no refresh token (NULL or empty)
NO_TOKENS_REASON = "no Mercado Livre tokens stored for this account; the seller must connect again"


def backoff_delay(err: MLError, attempt: int, base_s: float, cap_s: float) -> float:
    """How long to wait before try `attempt + 1`: Retry-After when sent, else exponential
    back-off with ±50% jitter."""
    if err.retry_after is not None:
        return err.retry_after
    return min(cap_s, base_s * 2 ** (attempt - 1)) * (0.5 + random.random())


_sleep = time.sleep  # tests record the waits through this
TOKEN_PATH = "/oauth/token"


def _retry_notice():
    """The process's one retry notice, the API client's (imported here: client.py imports
    this module)."""
    from superseller.mercadolivre import client

    return client.RETRY_NOTICE


class TokenCipher:
    def __init__(self, key: bytes):
        self._f = Fernet(key)

    def encrypt(self, value: str) -> str:
        return self._f.encrypt(value.encode()).decode()

    def decrypt(self, value: str) -> str:
        try:
            return self._f.decrypt(value.encode()).decode()
        except InvalidToken:
            raise ReauthRequired(
                401,
                "token_unreadable",
                "stored token cannot be decrypted (encryption key changed?)",
            ) from None


@dataclass
class OAuthApp:
    api_url: str
    client_id: str
    client_secret: str
    redirect_uri: str = ""
    # The token endpoint answers 429 `local_rate_limited` and 5xx like any other: the
    # same back-off as the API client (Retry-After when sent, else exponential + jitter).
    max_tries: int = 8
    backoff_base_s: float = 0.25
    backoff_cap_s: float = 20.0
    timeout_s: float = 20.0  # httpx's: each of connecting, sending, each read of the answer

    def token_call(self, form: dict) -> dict:
        """One POST to /oauth/token; a network failure becomes MLError status 0."""
        data = {"client_id": self.client_id, "client_secret": self.client_secret, **form}
        try:
            with httpx.Client(base_url=self.api_url, timeout=self.call_timeout()) as http:
                resp = http.post(TOKEN_PATH, data=data, headers={"accept": "application/json"})
        except httpx.TransportError as exc:
            raise MLError(0, "network_error", type(exc).__name__) from None
        if resp.status_code != 200:
            err = parse_error(resp)
            if err.code == "invalid_grant":
                raise ReauthRequired(err.status, err.code, err.message)
            raise err
        return resp.json()

    def call_timeout(self) -> float:
        """The timeout of the next call to the token endpoint."""
        return self.timeout_s

    def with_retries(self, call):
        """Run `call()` again after a 429, 5xx or network error, with back-off. A network
        error or a 5xx is logged as the API client's are (client.RETRY_NOTICE: rate-limited,
        the path only, never the form with its secret, code or refresh token)."""
        for attempt in range(1, self.max_tries + 1):
            try:
                return call()
            except ReauthRequired:
                raise
            except MLError as err:
                if not (err.retryable or err.status == 0) or attempt >= self.max_tries:
                    raise
                telemetry.RETRIES.inc()
                if err.status == 0 or err.status >= 500:  # a 429 is Mercado Livre pacing us
                    _retry_notice().failed(TOKEN_PATH, err, method="POST")
                _sleep(backoff_delay(err, attempt, self.backoff_base_s, self.backoff_cap_s))
        raise AssertionError("unreachable")

    def token_request(self, form: dict) -> dict:
        return self.with_retries(lambda: self.token_call(form))

    def exchange_code(self, code: str, code_verifier: str | None = None) -> dict:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri}
        if code_verifier:
            form["code_verifier"] = code_verifier
        return self.token_request(form)

    def refresh(self, refresh_token: str) -> dict:
        """One refresh call (the caller retries: it holds a lock while calling)."""
        return self.token_call({"grant_type": "refresh_token", "refresh_token": refresh_token})


class TokenStore:
    """The tokens of one marketplace account."""

    def __init__(
        self,
        engine: Engine,
        account_id: int,
        app: OAuthApp,
        cipher: TokenCipher,
        clock: Clock | None = None,
    ):
        self.engine = engine
        self.account_id = account_id
        self.app = app
        self.cipher = cipher
        self.clock = clock or SystemClock()
        self.refreshes = 0  # refresh calls made by this store (for reports)

    def _row(self, conn, lock: bool = False):
        stmt = select(marketplace_accounts).where(marketplace_accounts.c.id == self.account_id)
        if lock:  # a row lock on PostgreSQL; SQLite's write transaction already holds one
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).one()
        if row.status == "reauth_required":
            raise ReauthRequired(
                401,
                "reauth_required",
                row.status_reason or "Mercado Livre connection needs re-authorization",
            )
        return row

    def current(self) -> tuple[str, int]:
        """A usable access token and its version, refreshing first if it expired (or is
        not stored: the refresh token may still be)."""
        with self.engine.connect() as conn:
            row = self._row(conn)
        if not _live(row, self.clock.now()):
            return self.refresh(seen_version=row.token_version)
        return self.cipher.decrypt(row.access_token_enc), row.token_version

    def refresh(self, seen_version: int) -> tuple[str, int]:
        """Refresh unless someone already did since `seen_version` (single-flight). A 429
        or 5xx from the token endpoint is retried with back-off, the lock released
        while waiting (on SQLite it is the database's one write lock)."""
        return self.app.with_retries(lambda: self._refresh_once(seen_version))

    def _refresh_once(self, seen_version: int) -> tuple[str, int]:
        rotated: list = []  # the new pair, once Mercado Livre has answered
        try:
            return self._refresh_locked(seen_version, rotated)
        except DB_ERRORS as exc:
            if not rotated:
                raise  # nothing rotated yet: the old token is still the live one
            tokens, version = rotated
            return self._store_rotated(tokens, version, exc)

    def _refresh_locked(self, seen_version: int, rotated: list) -> tuple[str, int]:
        failure: ReauthRequired | None = None
        with self.engine.begin() as conn:
            row = self._row(conn, lock=True)
            if row.token_version != seen_version and _live(row, self.clock.now()):
                return self.cipher.decrypt(row.access_token_enc), row.token_version
            try:
                if not row.refresh_token_enc:
                    # The row says connected but holds no tokens (a half-finished manual
                    # fix): nothing can refresh, the seller must connect again, for good.
                    raise ReauthRequired(401, NO_TOKENS, NO_TOKENS_REASON)
                tokens = self.app.refresh(self.cipher.decrypt(row.refresh_token_enc))
            except ReauthRequired as exc:
                # Recorded (and committed) before raising: syncs for this seller stop
                # with a clear message instead of retrying a dead token.
                conn.execute(
                    update(marketplace_accounts)
                    .where(marketplace_accounts.c.id == self.account_id)
                    .values(
                        status="reauth_required",
                        status_reason=exc.message[:500],
                        updated_at=self.clock.now(),
                    )
                )
                failure = exc
                telemetry.REFRESHES.labels("reauth_required").inc()
            else:
                self.refreshes += 1
                telemetry.REFRESHES.labels("ok").inc()
                version = row.token_version + 1
                rotated[:] = [tokens, version]
                # The rotated refresh token is stored before anyone can use it.
                save_tokens(conn, self.account_id, tokens, self.cipher, self.clock.now(), version)
                return tokens["access_token"], version
        log.warning("account %s needs re-authorization: %s", self.account_id, failure.code)
        raise failure

    def _store_rotated(self, tokens: dict, version: int, first: BaseException) -> tuple[str, int]:
        """Store a pair Mercado Livre rotated while the database was away, retrying with
        a capped back-off. The row is written only if it still holds the previous
        version (a commit whose answer was lost may already have stored it)."""
        log.warning(
            "account %s: rotated tokens not stored (%s); holding them until the database is back",
            self.account_id,
            one_line(first),
        )
        deadline = time.monotonic() + HOLD_S
        delay = 0.25
        while True:
            try:
                with self.engine.begin() as conn:
                    stored = conn.execute(
                        select(marketplace_accounts.c.token_version)
                        .where(marketplace_accounts.c.id == self.account_id)
                        .with_for_update()
                    ).scalar_one()
                    if stored == version - 1:
                        save_tokens(
                            conn, self.account_id, tokens, self.cipher, self.clock.now(), version
                        )
                log.warning("account %s: rotated tokens stored", self.account_id)
                return tokens["access_token"], version
            except DB_ERRORS as exc:
                if time.monotonic() + delay > deadline:
                    log.error(
                        "account %s: rotated tokens lost after %.0f s without the database",
                        self.account_id,
                        HOLD_S,
                    )
                    raise exc from first
                time.sleep(delay)
                delay = min(delay * 2, 5.0)


def _live(row, now: datetime) -> bool:
    """The row holds an access token that is not (about to be) expired."""
    return (
        bool(row.access_token_enc) and row.expires_at is not None and row.expires_at - EARLY > now
    )


def save_tokens(
    conn,
    account_id: int,
    tokens: dict,
    cipher: TokenCipher,
    now: datetime,
    version: int,
    status: str = "connected",
    status_reason: str | None = None,
) -> None:
    if "refresh_token" not in tokens:
        raise MLError(
            400,
            "no_refresh_token",
            "the app lacks offline_access: Mercado Livre sent no refresh token",
        )
    conn.execute(
        update(marketplace_accounts)
        .where(marketplace_accounts.c.id == account_id)
        .values(
            access_token_enc=cipher.encrypt(tokens["access_token"]),
            refresh_token_enc=cipher.encrypt(tokens["refresh_token"]),
            expires_at=now + timedelta(seconds=int(tokens["expires_in"])),
            token_version=version,
            status=status,
            status_reason=status_reason,
            last_refresh_at=now,
            updated_at=now,
        )
    )
