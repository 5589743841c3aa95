"""Connecting Mercado Livre from the browser: connect -> authorization -> callback, with a
signed state, PKCE and an encrypted cookie, against the sandbox over real HTTP."""

import html
import os
import re
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from sqlalchemy import select, update

from superseller.db.schema import jobs, marketplace_accounts
from superseller.mercadolivre import tokens as tokens_mod
from superseller.tenants import create_tenant
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support.api import serving
from tests.support.inproc import running_worker, wait_status
from tests.support.ml import connected_tenant, sandbox, sandbox_env, settings_for
from tests.support.procs import ROOT
from tests.support.waiting import wait_until

PASSWORD = "correct horse battery"


@pytest.fixture
def flow(engine, tmp_path):
    with sandbox(listings=5) as sb:
        create_tenant(engine, "Loja", tenant_id="t1")
        create_user(engine, "ana@loja.com", PASSWORD, "seller", "t1")
        settings = settings_for(sb, tmp_path)
        registry = build_registry(settings)
        with serving(settings, engine, registry) as url:
            sb.registry, sb.settings = registry, settings
            settings.ml_redirect_uri = f"{url}/api/v1/mercadolivre/callback"
            with httpx.Client(base_url=url, timeout=20, headers={"Origin": url}) as browser:
                assert (
                    browser.post(
                        "/api/v1/auth/login", json={"email": "ana@loja.com", "password": PASSWORD}
                    ).status_code
                    == 200
                )
                yield browser, sb


def authorize(browser, sb):
    """Follow connect -> the sandbox's authorization page; return the callback URL."""
    start = browser.get("/api/v1/mercadolivre/connect")
    assert start.status_code == 303
    auth = httpx.URL(start.headers["location"])
    assert str(auth).startswith(sb.url + "/authorization")
    assert auth.params["code_challenge_method"] == "S256" and auth.params["state"]
    back = httpx.get(str(auth))  # the seller approves (the sandbox approves at once)
    return back.headers["location"]


def accounts(engine):
    with engine.connect() as conn:
        return conn.execute(
            select(marketplace_accounts.c.tenant_id, marketplace_accounts.c.status)
        ).all()


def test_connect_and_callback_store_the_account(flow, engine):
    browser, sb = flow
    done = browser.get(authorize(browser, sb))
    assert done.status_code == 303 and done.headers["location"].startswith("/?conectado=1")
    assert accounts(engine) == [("t1", "connected")]


def test_reconnecting_clears_reauth_required(flow, engine):
    browser, sb = flow
    browser.get(authorize(browser, sb))
    with engine.begin() as conn:
        conn.execute(update(marketplace_accounts).values(status="reauth_required"))
    browser.get(authorize(browser, sb))
    assert accounts(engine) == [("t1", "connected")]


def test_a_tampered_or_foreign_state_is_refused(flow, engine):
    browser, sb = flow
    callback = httpx.URL(authorize(browser, sb))
    forged = callback.copy_set_param("state", callback.params["state"][:-3] + "abc")
    r = browser.get(str(forged))
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_oauth_state"
    # Another browser (without the PKCE cookie) cannot finish this seller's connection.
    stranger = httpx.get(str(callback))
    assert stranger.status_code == 400
    assert accounts(engine) == []


def test_a_used_code_is_refused_by_mercado_livre(flow, engine):
    browser, sb = flow
    callback = authorize(browser, sb)
    assert browser.get(callback).status_code == 303
    browser.cookies.clear()
    assert (
        browser.post(
            "/api/v1/auth/login", json={"email": "ana@loja.com", "password": PASSWORD}
        ).status_code
        == 200
    )
    start = browser.get("/api/v1/mercadolivre/connect")  # a fresh cookie and state
    fresh = httpx.URL(start.headers["location"]).params["state"]
    replay = httpx.URL(callback).copy_set_param("state", fresh)
    r = browser.get(str(replay))
    assert r.status_code == 400 and r.json()["error"]["code"] == "mercadolivre_refused"


def test_connect_needs_a_login(flow):
    browser, _ = flow
    assert httpx.get(f"{browser.base_url}/api/v1/mercadolivre/connect").status_code == 401


def test_a_state_is_accepted_once(flow, engine):
    browser, sb = flow
    callback = authorize(browser, sb)
    held = browser.cookies.get("superseller_ml_oauth")  # what an attacker may have copied
    assert browser.get(callback).status_code == 303
    replay = httpx.get(callback, headers={"Cookie": f"superseller_ml_oauth={held}"})
    assert replay.status_code == 400
    error = replay.json()["error"]
    assert error["code"] == "invalid_oauth_state" and "already used" in error["message"]


def test_the_callback_imports_90_days_without_any_other_action(flow, engine):
    browser, sb = flow
    done = browser.get(authorize(browser, sb))
    job_id = int(httpx.URL(done.headers["location"]).params["importacao"])
    page = browser.get(done.headers["location"])  # the dashboard the seller lands on
    # a neutral first-import state, not a red "Desatualizado", and the step under way
    assert "Primeira importação em andamento" in page.text and "Desatualizado" not in page.text
    assert "Importando seus dados… " in page.text
    assert "Etapa 1 de 3: buscando seus dados no Mercado Livre" in page.text
    with running_worker(engine, sb.registry):  # the worker `serve --with-worker` runs
        sync = wait_status(engine, job_id, "completed", "failed", timeout=120)
        assert sync["status"] == "completed", sync["last_error"]
        assert sync["payload"]["daysBack"] == 90
        status = wait_until(
            lambda: (
                (s := browser.get(f"/api/v1/refresh/{job_id}").json())["steps"]["done"]
                == s["steps"]["total"]
                and s
            ),
            timeout=120,
            message="the import's steps",
        )
    assert status["state"] == "done" and status["steps"] == {"done": 3, "total": 3, "text": None}
    assert "Importando" not in browser.get(done.headers["location"]).text
    overview = browser.get("/api/v1/metrics/overview", params={"days": 90}).json()
    assert overview["period"]["days"] == 90
    first = overview["series"][0]
    assert first["visits"] is not None  # the first of the 90 days was imported too
    assert sum(d["orders"] for d in overview["series"]) > 0


def test_one_mercado_livre_account_belongs_to_one_tenant(flow, engine):
    browser, sb = flow
    connected_tenant(engine, sb.settings, "t2")  # the same sandbox seller, another store
    with engine.connect() as conn:
        before = conn.execute(select(marketplace_accounts)).all()
    refused = browser.get(authorize(browser, sb))
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "mercadolivre_account_in_use"
    page = browser.get(authorize(browser, sb), headers={"accept": "text/html"})
    assert page.status_code == 409 and "já está conectada a outra loja" in page.text
    with engine.connect() as conn:
        after = conn.execute(select(marketplace_accounts)).all()
    assert [(r.id, r.tenant_id, r.ml_user_id, r.status) for r in after] == [
        (r.id, r.tenant_id, r.ml_user_id, r.status) for r in before
    ]
    # The first store keeps working: Mercado Livre's newest refresh token went to it.
    with engine.begin() as conn:
        conn.execute(update(marketplace_accounts).values(expires_at=None))
    from superseller.jobs.queue import Queue

    jid = (
        Queue(engine, sb.registry)
        .enqueue("sync_mercadolivre", {"tenantId": "t2", "daysBack": 1}, tenant_id="t2")
        .id
    )
    with running_worker(engine, sb.registry):
        assert wait_status(engine, jid, "completed", "failed", timeout=60)["status"] == (
            "completed"
        )
    assert sb.state.stats["refreshes"] == 1


def test_reconnecting_the_same_tenant_to_the_same_user_is_fine(flow, engine):
    browser, sb = flow
    assert browser.get(authorize(browser, sb)).status_code == 303
    assert browser.get(authorize(browser, sb)).status_code == 303
    assert accounts(engine) == [("t1", "connected")]


def test_readme_quick_start_connect_queues_the_backfill_and_refuses_a_second_store(
    db_url, engine, tmp_path
):
    """`sandbox connect` exactly as the README writes it (no ML_REDIRECT_URI)."""
    with sandbox(listings=3) as sb:
        create_tenant(engine, "Loja 1", tenant_id="t1")
        create_tenant(engine, "Loja 2", tenant_id="t2")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ML_")},
            "DATABASE_URL": db_url,
            **sandbox_env(sb.url, DATA_DIR=tmp_path),
        }

        def connect(tid):
            return subprocess.run(
                [sys.executable, "-m", "superseller.cli", "sandbox", "connect", "--tenant", tid],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )

        first = connect("t1")
        assert first.returncode == 0, first.stderr
        assert "first sync of 90 days queued" in first.stdout
        with engine.connect() as conn:
            queued = conn.execute(select(jobs.c.type, jobs.c.payload, jobs.c.tenant_id)).all()
        assert [(t, p["daysBack"], tid) for t, p, tid in queued] == [
            ("sync_mercadolivre", 90, "t1")
        ]
        second = connect("t2")
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "already connected to tenant t1" in lines[0]
        assert accounts(engine) == [("t1", "connected")]


def again_button(page: httpx.Response) -> str:
    """The page's "Conectar de novo" link."""
    found = re.search(
        r'<a class="button" id="message-action" href="([^"]+)">([^<]+)</a>', page.text
    )
    assert found and found.group(2) == "Conectar de novo", page.text[:2000]
    return html.unescape(found.group(1))


def test_a_refused_code_shows_a_page_with_a_way_forward(flow, engine):
    """Mercado Livre refuses the code exchange (400 invalid_grant: the code expired or was
    used): a browser gets a pt-BR page saying so and "Conectar de novo", which starts the
    connection again; an API client keeps the JSON error."""
    browser, sb = flow
    httpx.post(f"{sb.url}/_sandbox/faults", json={"refuse_codes": 2})
    page = browser.get(authorize(browser, sb), headers={"accept": "text/html"})
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
    assert "o código expirou ou já foi usado" in page.text
    restart = browser.get(again_button(page))
    assert restart.status_code == 303
    assert restart.headers["location"].startswith(sb.url + "/authorization")
    as_json = browser.get(authorize(browser, sb))
    assert as_json.status_code == 400
    assert as_json.json()["error"]["code"] == "mercadolivre_refused"
    assert accounts(engine) == []


class _Hangup:
    """A Mercado Livre that cannot be talked to: it accepts each connection and closes it at
    once (a network error for the client), counting the connections."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.count = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            self.count += 1
            conn.close()

    def close(self):
        self.sock.close()


def test_mercado_livre_unreachable_at_the_exchange_shows_a_page(flow, engine, monkeypatch):
    """Mercado Livre cannot be reached for the exchange (network error after the retries):
    a browser gets "Não foi possível falar com o Mercado Livre agora" and the button; an
    API client a 502 `mercadolivre_unreachable` (it was a 400 `mercadolivre_refused`).
    The seller's browser waits on it: two tries and at most a short wait, not a job's
    ML_MAX_TRIES (8) with back-off up to 20 s (the page stayed blank ~30 s)."""
    browser, sb = flow
    sb.settings.ml_max_tries = 8
    waits: list[float] = []
    monkeypatch.setattr(tokens_mod, "_sleep", waits.append)  # record, do not wait
    callback = authorize(browser, sb)
    away = _Hangup()
    sb.settings.ml_api_url = away.url
    try:
        page = browser.get(callback, headers={"accept": "text/html"})
        assert page.status_code == 502, page.text[:500]
        assert "Não foi possível falar com o Mercado Livre agora" in page.text
        assert again_button(page).startswith("/api/v1/mercadolivre/connect")
        assert away.count == 2
        assert len(waits) == 1 and sum(waits) <= 2, waits
        as_json = browser.get(authorize(browser, sb))
        assert as_json.status_code == 502
        assert as_json.json()["error"]["code"] == "mercadolivre_unreachable"
        assert away.count == 4
    finally:
        away.close()
    assert accounts(engine) == []


class _Busy(BaseHTTPRequestHandler):
    """A token endpoint that answers 429 with a long Retry-After, counting the calls."""

    calls = 0

    def do_POST(self):
        type(self).calls += 1
        self.send_response(429)
        self.send_header("Retry-After", "30")
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error": "local_rate_limited", "message": "slow down"}')

    def log_message(self, *args):
        pass


def test_a_long_retry_after_at_the_exchange_is_not_waited_out(flow, engine, monkeypatch):
    """A 429 asking for 30 s at the exchange: the seller's page does not wait it (one wait
    of at most a second, then the "indisponível" page)."""
    browser, sb = flow
    waits: list[float] = []
    monkeypatch.setattr(tokens_mod, "_sleep", waits.append)
    callback = authorize(browser, sb)
    _Busy.calls = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sb.settings.ml_api_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        page = browser.get(callback, headers={"accept": "text/html"})
    finally:
        server.shutdown()
        server.server_close()
    assert page.status_code == 502, page.text[:500]
    assert "Não foi possível falar com o Mercado Livre agora" in page.text
    assert _Busy.calls == 2
    assert len(waits) == 1 and waits[0] <= 2, waits
    assert accounts(engine) == []
