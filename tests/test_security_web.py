"""No cross-site actions, bounded requests, headers, clean logs, safe start-up, private
files, bounded dates (issue 16). Real HTTP, real `superseller serve` processes, real
Chromium for the cross-site form."""

import asyncio
import contextlib
import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import select as sql_select

from superseller.api.app import create_app
from superseller.api.deps import Services
from superseller.config import Settings
from superseller.db import migrate
from superseller.db.engine import make_engine
from superseller.db.schema import jobs
from superseller.jobs import pause
from superseller.jobs.clock import SystemClock
from superseller.jobs.queue import Queue
from superseller.jobs.schedules import Schedules
from superseller.sandbox.server import free_port
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import serving
from tests.support.procs import ROOT
from tests.support.waiting import wait_until

PASSWORD = "correct horse battery"
ADMIN, SELLER = "ops@superseller.dev", "ana@loja1.com"
PAUSE = "/api/admin/jobs/pause"


@pytest.fixture
def people(engine):
    mk.tenant(engine, "t1")
    create_user(engine, SELLER, PASSWORD, "seller", "t1")
    create_user(engine, ADMIN, PASSWORD, "admin")


@pytest.fixture
def url(engine, people, tmp_path):
    settings = Settings(data_dir=tmp_path)
    with serving(settings, engine, build_registry(settings)) as u:
        yield u


@contextlib.contextmanager
def cookie_client(url, email=ADMIN, **headers):
    with httpx.Client(base_url=url, timeout=30, headers=headers) as c:
        r = c.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        yield c


# -- cross-site request forgery ------------------------------------------------------


@contextlib.contextmanager
def evil_site(target: str):
    """Another origin of the same site (127.0.0.1, another port) with a form that posts
    to the target as soon as it loads: what a sibling service or subdomain could host."""
    page = (
        f'<!doctype html><form id="f" method="post" action="{target}"></form>'
        "<script>document.getElementById('f').submit()</script>"
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def failed_job(engine, registry) -> int:
    job_id = Queue(engine, registry).enqueue("cleanup").id
    with engine.begin() as conn:
        conn.execute(
            jobs.update()
            .where(jobs.c.id == job_id)
            .values(status="failed", attempts=3, last_error="boom", finished_at=datetime.now(UTC))
        )
    return job_id


def test_a_cross_origin_form_cannot_pause_but_the_dashboard_still_works(
    browser,
    engine,
    people,
    tmp_path,
):
    settings = Settings(data_dir=tmp_path)
    registry = build_registry(settings)
    job_id = failed_job(engine, registry)
    with serving(settings, engine, registry) as url, evil_site(url + PAUSE) as evil:
        page = browser.new_page()
        refused = []  # what the Content-Security-Policy blocked on our own pages
        page.on(
            "console",
            lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.goto(f"{url}/entrar")
        page.fill("input[name=email]", ADMIN)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/")

        page.wait_for_load_state("networkidle")  # the overview and its chart
        page.goto(f"{url}/jobs")
        page.wait_for_load_state("networkidle")
        assert refused == []

        page.goto(evil)  # the form posts itself, the browser sends the session cookie
        page.wait_for_url(url + PAUSE)
        assert "cross_origin_refused" in page.content()
        assert pause.state(engine)["paused"] is False

        # The dashboard's own buttons (fetch from our origin) still work.
        page.goto(f"{url}/jobs/{job_id}")
        page.get_by_role("button", name="Tentar novamente").click()
        dialog = page.locator("dialog#confirm")
        dialog.get_by_role("button", name="Confirmar").click()
        expect(page.locator("#outcome")).to_have_text("Job de volta na fila.")
        with engine.connect() as conn:
            status = conn.execute(sql_select(jobs.c.status).where(jobs.c.id == job_id)).scalar()
        assert status == "pending"

        # And "Sair" (a form with the CSRF token) logs out for good.
        page.get_by_role("button", name="Sair").click()
        page.wait_for_url(f"{url}/entrar")
        page.goto(f"{url}/jobs")
        assert page.url == f"{url}/entrar?volta=%2Fjobs"  # signed out: the login, back to /jobs
        page.close()


def test_cookie_changes_need_our_origin_bearer_calls_do_not(url):
    with cookie_client(url) as c:
        for headers in (
            {"Origin": "http://127.0.0.1:1"},  # a sibling port
            {"Origin": "null"},
            {"Referer": "http://evil.example/x"},
            {},  # neither Origin nor Referer
        ):
            r = c.post(PAUSE, headers=headers)
            assert r.status_code == 403, headers
            assert r.json()["error"]["code"] == "cross_origin_refused"
        assert c.post(PAUSE, headers={"Referer": f"{url}/jobs"}).status_code == 200
        token = httpx.post(f"{url}/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})
        bearer = {"Authorization": f"Bearer {token.json()['token']}", "Origin": "http://x"}
        assert c.post("/api/admin/jobs/resume", headers=bearer).status_code == 200
    # A login forced from another site (no cookie yet) is refused too.
    forced = httpx.post(
        f"{url}/api/v1/auth/login",
        json={"email": ADMIN, "password": PASSWORD},
        headers={"Origin": "http://evil.example"},
    )
    assert forced.status_code == 403 and "set-cookie" not in forced.headers


def test_with_an_https_public_url_the_cookie_is_secure_and_the_origin_fixed(
    engine, people, tmp_path
):
    public = "https://superseller.example.com"
    settings = Settings(data_dir=tmp_path, public_url=public)
    with serving(settings, engine, build_registry(settings)) as url:
        r = httpx.post(f"{url}/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})
        assert "secure" in r.headers["set-cookie"].lower()
        assert "max-age=31536000" in r.headers["strict-transport-security"]
        cookies = {"superseller_session": r.json()["token"]}
        own = httpx.post(f"{url}{PAUSE}", cookies=cookies, headers={"Origin": url})
        assert own.status_code == 403  # the server's address is not the public one
        ok = httpx.post(f"{url}{PAUSE}", cookies=cookies, headers={"Origin": public})
        assert ok.status_code == 200


# -- headers and exposure ----------------------------------------------------------------


def test_pages_send_security_headers(url):
    r = httpx.get(f"{url}/entrar")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    script_src = next(p for p in csp.split(";") if p.strip().startswith("script-src"))
    assert "unsafe-inline" not in script_src
    # The only other origin is Mercado Livre's image CDN, and only for images.
    directives = {p.split()[0]: p.split()[1:] for p in csp.split(";") if p.strip()}
    outside = {d: [v for v in vs if "http" in v] for d, vs in directives.items()}
    assert {d: vs for d, vs in outside.items() if vs} == {"img-src": ["https://*.mlstatic.com"]}
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    with cookie_client(url, SELLER) as c:
        page = c.get("/")  # its one inline script carries this response's nonce
        nonce = page.headers["content-security-policy"].split("'nonce-")[1].split("'")[0]
        assert f'<script nonce="{nonce}">' in page.text


@pytest.mark.parametrize(
    "who, path",
    [
        (SELLER, "/"),
        (SELLER, "/anuncios"),
        (SELLER, "/anuncios.csv"),
        (SELLER, "/api/v1/freshness"),
        (ADMIN, "/jobs"),
        (ADMIN, "/api/admin/jobs"),
        (None, "/entrar"),
        (None, "/api/v1/freshness"),  # a refusal is not kept either
    ],
)
def test_pages_and_answers_are_not_stored(url, who, path):
    """A seller's numbers never come back from a browser or proxy cache (after *Sair*, on a
    shared computer): every page and API answer is `no-store`; static assets keep an hour."""
    if who is None:
        r = httpx.get(f"{url}{path}", timeout=30)
    else:
        with cookie_client(url, who) as c:
            r = c.get(path)
    assert r.status_code < 500, (path, r.status_code)
    assert r.headers.get("cache-control") == "no-store", (path, r.headers.get("cache-control"))
    for asset in ("/static/app.css", "/docs-assets/swagger-ui-bundle.js"):  # everyone's same
        shared = httpx.get(f"{url}{asset}", timeout=30)
        assert shared.status_code == 200, asset
        assert shared.headers["cache-control"] == "public, max-age=3600", asset


def test_refusals_before_any_route_carry_the_headers_too(url):
    """A cross-site POST (403) and an oversized body (413) are answered before any route:
    they carry the same headers as every other answer."""
    login = f"{url}/api/v1/auth/login"
    foreign = httpx.post(login, json={}, headers={"Origin": "http://evil.example"}, timeout=30)
    huge = httpx.post(login, content=b"x" * (2 << 20), timeout=30)
    for r, status in ((foreign, 403), (huge, 413)):
        assert r.status_code == status, r.text
        assert r.headers.get("cache-control") == "no-store"
        assert r.headers.get("x-content-type-options") == "nosniff"


def remote_get(engine, tmp_path, paths, headers=None, **options) -> list[httpx.Response]:
    """GETs from a client that is not on this machine (in-process ASGI)."""
    settings = Settings(data_dir=tmp_path, **options)
    svc = Services(settings, engine, build_registry(settings), SystemClock())
    transport = httpx.ASGITransport(app=create_app(svc), client=("10.1.2.3", 40000))

    async def run():
        async with httpx.AsyncClient(transport=transport, base_url="http://ss") as c:
            return [await c.get(p, headers=headers) for p in paths]

    with ThreadPoolExecutor(1) as pool:  # a thread of its own: Playwright's loop runs here
        return pool.submit(asyncio.run, run()).result()


def test_metrics_and_docs_exposure_follow_the_settings(engine, tmp_path):
    metrics, docs = remote_get(engine, tmp_path, ["/metrics", "/openapi.json"])
    assert metrics.status_code == 403  # default: local clients only
    assert docs.status_code == 200  # default: docs on
    token = "m" * 32
    hidden = dict(metrics_token=token, api_docs=False)
    assert remote_get(engine, tmp_path, ["/metrics"], **hidden)[0].status_code == 401
    bad = remote_get(engine, tmp_path, ["/metrics"], {"Authorization": "Bearer no"}, **hidden)
    assert bad[0].status_code == 401
    good = remote_get(
        engine, tmp_path, ["/metrics"], {"Authorization": f"Bearer {token}"}, **hidden
    )
    assert good[0].status_code == 200 and "superseller_jobs" in good[0].text
    paths = ["/docs", "/redoc", "/openapi.json"]
    assert [r.status_code for r in remote_get(engine, tmp_path, paths, **hidden)] == [404] * 3


# -- real `superseller serve` processes -------------------------------------------------


@contextlib.contextmanager
def serve(db_url, tmp_path, **env):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "superseller.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": db_url, "DATA_DIR": str(tmp_path), **env},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def up():
        assert proc.poll() is None, proc.stdout.read()
        try:
            return httpx.get(f"{url}/healthz").status_code == 200
        except httpx.TransportError:
            return False

    out: list[str] = []
    try:
        wait_until(up, timeout=60, interval=0.1, message="superseller serve")
        yield url, proc, out
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out.append(proc.communicate(timeout=60)[0])
        except subprocess.TimeoutExpired:
            proc.kill()
            out.append(proc.communicate()[0])


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def raw_post(port: int, path: str, body: bytes, chunked: bool) -> tuple[int, dict]:
    """Send a large body the way a client that does not wait would, but stop sending as
    soon as the server answers (it answers before reading it all): the status and JSON."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    length = "transfer-encoding: chunked" if chunked else f"content-length: {len(body)}"
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"{length}\r\n\r\n".encode()
    )
    step = 64 * 1024
    with contextlib.suppress(OSError):  # the server may close once it has answered
        for i in range(0, len(body), step):
            if select.select([sock], [], [], 0)[0]:
                break  # the answer is there
            piece = body[i : i + step]
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
    data = b""
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data:
                head, _, rest = data.partition(b"\r\n\r\n")
                size = [h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")]
                if size and len(rest) >= int(size[0].split(b":")[1]):
                    break
    sock.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(rest)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_5_mb_body_gets_413_before_it_is_read(db_url, tmp_path):
    body = b'{"email": "a@b.co", "password": "x", "pad": [' + b"0," * 2_500_000 + b"0]}"
    with serve(db_url, tmp_path) as (url, proc, _):
        port = int(url.rsplit(":", 1)[1])
        assert httpx.post(f"{url}/api/v1/auth/login", json={"email": "a@b.co", "password": "x"})
        before = peak_rss_kb(proc.pid)
        for chunked in (False, True):
            status, error = raw_post(port, "/api/v1/auth/login", body, chunked)
            assert status == 413, chunked
            assert error["error"]["code"] == "payload_too_large"
        grown_mb = (peak_rss_kb(proc.pid) - before) / 1024
        assert grown_mb < 20, f"the server's memory grew by {grown_mb:.1f} MB"
        small = httpx.post(f"{url}/api/v1/auth/login", json={"email": "a@b.co", "password": "x"})
        assert small.status_code == 401  # ordinary requests are untouched


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_logs_of_an_oauth_callback_hide_code_and_state(db_url, tmp_path, fmt):
    with serve(db_url, tmp_path, LOG_FORMAT=fmt) as (url, _, out):
        httpx.get(
            f"{url}/api/v1/mercadolivre/callback",
            params={"code": "TG-SECRETCODE1", "state": "SECRETSTATE2"},
        )
        httpx.get(f"{url}/entrar", params={"token": "SECRETTOKEN3", "access_token": "SECRET4"})
    text = "".join(out)
    assert "/api/v1/mercadolivre/callback?code=[REDACTED]&state=[REDACTED]" in text
    assert "SECRET" not in text
    if fmt == "json":
        lines = [line for line in text.splitlines() if line.strip()]
        parsed = [json.loads(line) for line in lines]  # every line is one JSON object
        assert any(p["logger"] == "uvicorn.access" for p in parsed)


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"JWT_SECRET": ""}, "JWT_SECRET is shorter than 32 bytes"),
        ({"JWT_SECRET": "a"}, "JWT_SECRET is shorter than 32 bytes"),
        ({"INTERNAL_JOBS_KEY": "short-key"}, "INTERNAL_JOBS_KEY is shorter than 24"),
        ({"TOKEN_ENCRYPTION_KEY": "short-key"}, "TOKEN_ENCRYPTION_KEY is not a Fernet key"),
    ],
)
@pytest.mark.parametrize("command", [["serve", "--port"], ["worker", "--burst"]])
def test_weak_secrets_refuse_to_start(db_url, tmp_path, env, says, command):
    if command[0] == "serve":
        command = [*command, str(free_port())]
    proc = subprocess.run(
        [sys.executable, "-m", "superseller.cli", *command],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": db_url, "DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert says in proc.stderr and "Traceback" not in proc.stderr
    assert "short-key" not in proc.stderr  # the secret itself is never echoed


def test_the_data_directory_and_database_files_are_private(tmp_path):
    old = os.umask(0o022)  # the usual umask: files 0644 unless we say otherwise
    try:
        settings = Settings(data_dir=tmp_path / "data")
        eng = make_engine(settings.resolved_database_url())
        migrate.upgrade(eng)
        settings.signing_key()
        settings.encryption_key()
        with eng.connect() as conn:  # a connection open: -wal and -shm exist
            conn.exec_driver_sql("SELECT count(*) FROM users").scalar()
            files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in settings.data_dir.iterdir()}
        eng.dispose()
    finally:
        os.umask(old)
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700
    assert {"superseller.db", "superseller.db-wal", "superseller.db-shm"} <= set(files)
    assert files == dict.fromkeys(files, 0o600), files


# -- dates and nulls -----------------------------------------------------------------------


def test_far_off_dates_and_nulls_are_4xx_not_500(url, engine):
    registry = build_registry(Settings())
    sid = Schedules(engine, registry).create("nightly-cleanup", "cleanup", "0 3 * * *")["id"]
    with cookie_client(url, SELLER, Origin=url) as seller:
        far = seller.get(
            "/api/v1/metrics/overview", params={"from": "0001-01-01", "to": "0001-01-02"}
        )
        assert far.status_code == 400 and "outside 2000-01-01" in far.json()["error"]["message"]
        late = seller.get("/api/v1/listings", params={"from": "9999-12-30", "to": "9999-12-31"})
        assert late.status_code == 400
        page = seller.get("/", params={"de": "0001-01-01", "ate": "0001-01-02"})
        assert page.status_code == 422 and "deve estar entre 01/01/2000" in page.text
    with cookie_client(url, ADMIN, Origin=url) as admin:
        base = f"/api/admin/jobs/schedules/{sid}"
        for field in ("enabled", "cron", "timezone", "payload", "misfirePolicy", "overlapPolicy"):
            r = admin.patch(base, json={field: None})
            assert r.status_code == 422, (field, r.text)
        assert admin.patch(base, json={"deadlineS": None}).status_code == 200  # nullable
        back = admin.post(f"{base}/backfill", json={"from": "2026-01-01", "to": "9999-12-31"})
        assert back.status_code == 400 and "outside" in back.text
        early = admin.post(
            "/api/admin/jobs", json={"type": "cleanup", "runAt": "0001-01-01T00:00:00+14:00"}
        )
        assert early.status_code == 400 and "runAt" in early.text
