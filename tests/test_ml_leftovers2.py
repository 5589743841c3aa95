"""Leftovers of the last walk in the Mercado Livre connection: the token endpoint's
retries are logged like the API's, and the OAuth callback neither hangs on a silent
Mercado Livre nor calls a finished connection "expired".

Real HTTP against the sandbox (and a real socket that never answers), on SQLite and
PostgreSQL."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import select

from superseller.db.schema import marketplace_accounts
from superseller.mercadolivre import client as ml_client
from superseller.mercadolivre import tokens as tokens_mod
from superseller.mercadolivre.client import RetryNotice
from superseller.mercadolivre.connect import oauth_app
from superseller.mercadolivre.errors import MLError
from superseller.mercadolivre.tokens import TokenCipher, TokenStore
from tests.support.ml import connected_tenant, sandbox, settings_for

CLIENT_LOG = "superseller.mercadolivre.client"


class _Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def notice(monkeypatch) -> _Clock:
    """A fresh process-wide retry notice on a clock the test moves; back-off waits are
    recorded, not waited."""
    clock = _Clock()
    monkeypatch.setattr(ml_client, "RETRY_NOTICE", RetryNotice(30.0, clock))
    monkeypatch.setattr(tokens_mod, "_sleep", lambda s: None)
    return clock


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == CLIENT_LOG]


def test_token_endpoint_5xx_retries_are_logged_without_secrets(engine, tmp_path, notice, caplog):
    """A refresh whose token endpoint answers 500: the retries say so in the log (they were
    silent: a refresh outage looked like a frozen sync), at most one line per interval with
    the count, and never the client secret or the refresh token sent in the form."""
    caplog.set_level(logging.WARNING, logger=CLIENT_LOG)
    with sandbox(listings=2) as sb:
        settings = settings_for(sb, tmp_path, ml_max_tries=4)
        account = connected_tenant(engine, settings)
        cipher = TokenCipher(settings.encryption_key())
        with engine.connect() as conn:
            row = conn.execute(select(marketplace_accounts)).one()
        refresh_token = cipher.decrypt(row.refresh_token_enc)
        store = TokenStore(engine, account, oauth_app(settings), cipher)
        httpx.post(f"{sb.url}/_sandbox/faults", json={"rate_500": 1.0})

        with pytest.raises(MLError) as failed:
            store.refresh(seen_version=row.token_version)
        assert failed.value.status == 500
        lines = _lines(caplog)
        # 3 retried failures (the 4th is not retried): the first told at once, the
        # other two counted into the next line (with that line's own failure).
        assert len(lines) == 1, lines
        assert "POST /oauth/token" in lines[0] and "HTTP 500" in lines[0]

        notice.t += 31
        with pytest.raises(MLError):
            oauth_app(settings).exchange_code("TG-some-code-123", "a-verifier")
        lines = _lines(caplog)
        assert len(lines) == 2, lines
        assert "3 failed and were retried" in lines[1] and "POST /oauth/token" in lines[1]
    text = "\n".join(_lines(caplog))
    for secret in ("sandbox-secret", refresh_token, "TG-some-code-123", "a-verifier"):
        assert secret not in text
