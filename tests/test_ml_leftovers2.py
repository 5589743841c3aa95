"""Leftovers of the last walk in the Mercado Livre connection: the token endpoint's
retries are logged like the API's, and the OAuth callback neither hangs on a silent
Mercado Livre nor calls a finished connection "expired".

Real HTTP against the sandbox (and a real socket that never answers), on SQLite and
PostgreSQL."""

from __future__ import annotations

import html
import logging
import re
import socket
import threading

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
from tests import test_ml_connect as connect_tests
from tests.support.ml import connected_tenant, sandbox, settings_for
from tests.support.waiting import wait_until
from tests.test_ml_connect import accounts, again_button, authorize

CLIENT_LOG = "superseller.mercadolivre.client"
flow = connect_tests.flow  # a seller logged in to a server, and the sandbox


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


class _Silent:
    """A Mercado Livre that accepts each connection and never answers (nor closes it)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            self.held.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_a_silent_mercado_livre_at_the_exchange_ends_in_the_unreachable_page(flow, engine):
    """Mercado Livre accepts the connection for the code exchange and never answers: the
    callback gives up by its deadline (both tries together, ~10 s; it was 2 x 20 s of a
    blank page) with "Mercado Livre indisponível" and "Conectar de novo"."""
    browser, sb = flow
    callback = authorize(browser, sb)
    silent = _Silent()
    sb.settings.ml_api_url = silent.url
    answer: list[httpx.Response] = []

    def seller_waits():
        answer.append(browser.get(callback, headers={"accept": "text/html"}, timeout=120))

    waiting = threading.Thread(target=seller_waits, daemon=True)
    try:
        waiting.start()
        # Well above the deadline, well below the 40 s it took.
        wait_until(lambda: answer, timeout=30, interval=0.2, message="the callback's page")
    finally:
        silent.close()
        waiting.join(timeout=120)
    page = answer[0]
    assert page.status_code == 502, page.text[:500]
    assert "Mercado Livre indisponível" in page.text
    assert again_button(page).startswith("/api/v1/mercadolivre/connect")
    assert len(silent.held) == 2  # both tries were made, within the deadline
    assert accounts(engine) == []


def _button(page: httpx.Response) -> tuple[str, str]:
    """The page's one button: (its link, its label)."""
    found = re.search(
        r'<a class="button" id="message-action" href="([^"]+)">([^<]+)</a>', page.text
    )
    assert found, page.text[:2000]
    return html.unescape(found.group(1)), found.group(2)


def test_back_to_a_used_callback_of_a_connected_store_says_it_is_connected(flow, engine):
    """The seller connected, then came back to the callback (Back, a reload): the store is
    connected and importing, so "Esta conta já está conectada" and the way to the dashboard,
    not "Pedido de conexão expirado" (which sent them to connect again)."""
    browser, sb = flow
    callback = authorize(browser, sb)
    done = browser.get(callback)
    assert done.status_code == 303 and done.headers["location"].startswith("/?conectado=1")
    again = browser.get(callback, headers={"accept": "text/html"})
    assert again.status_code == 200, again.text[:500]
    assert "Esta conta já está conectada" in again.text
    assert "expirado" not in again.text
    link, label = _button(again)
    assert label == "Ir para o painel"
    dashboard = browser.get(link)
    assert dashboard.status_code == 200 and "Importando seus dados" in dashboard.text
    assert accounts(engine) == [("t1", "connected")]
    # An API client still learns that the state was used.
    as_json = browser.get(callback)
    assert as_json.status_code == 400
    assert as_json.json()["error"]["code"] == "invalid_oauth_state"


def test_a_used_or_unknown_state_without_a_connected_store_keeps_the_expired_page(flow, engine):
    """Nothing got connected (Mercado Livre refused the code), or the state is not one of
    ours: going back still says the request expired, with "Conectar de novo"."""
    browser, sb = flow
    httpx.post(f"{sb.url}/_sandbox/faults", json={"refuse_codes": 1})
    callback = authorize(browser, sb)
    refused = browser.get(callback, headers={"accept": "text/html"})
    assert refused.status_code == 400 and "o código expirou ou já foi usado" in refused.text
    for url in (callback, str(httpx.URL(callback).copy_set_param("state", "not-a-state"))):
        page = browser.get(url, headers={"accept": "text/html"})
        assert page.status_code == 400, page.text[:500]
        assert "Pedido de conexão expirado" in page.text
        assert "já está conectada" not in page.text
        assert _button(page)[1] == "Conectar de novo"
    assert accounts(engine) == []
