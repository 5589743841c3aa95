"""Leftovers of the web layer, over real HTTP, on SQLite and PostgreSQL: CSV downloads named
after a store whose id predates the slug rule; "Atualizar dados" saying when its sync left
listings without visits."""

import re
from datetime import UTC, date, datetime
from urllib.parse import unquote

import httpx
import pytest
from sqlalchemy import insert

from superseller.config import Settings
from superseller.db.schema import tenants
from superseller.sandbox import data
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import client, serving
from tests.support.inproc import running_worker
from tests.support.ml import connected_tenant, sandbox, settings_for
from tests.support.waiting import wait_until

ADMIN = "ops@superseller.dev"
# Ids an older release accepted: a quote and a semicolon (they end the header's
# parameter), characters outside Latin-1 (the header could not even be encoded), and a
# CR/LF that would start a header of its own.
AWKWARD_IDS = ['loja "velha"; x=1', "lojão-東京", "a\r\nSet-Cookie: pego=1"]


@pytest.fixture
def url(engine, tmp_path):
    with engine.begin() as conn:
        for i, tid in enumerate(AWKWARD_IDS):
            conn.execute(
                insert(tenants).values(
                    id=tid, name=f"Loja Antiga {i}", timezone="UTC", created_at=datetime.now(UTC)
                )
            )
    mk.listing(engine, AWKWARD_IDS[0], "MLB1", date(2026, 1, 1))
    create_user(engine, ADMIN, "correct horse battery", "admin")
    settings = Settings(data_dir=tmp_path)
    with serving(settings, engine, build_registry(settings)) as u:
        yield u


def filenames(disposition: str) -> tuple[str, str]:
    """(the ASCII `filename`, the decoded `filename*`) of a Content-Disposition value."""
    assert disposition.startswith("attachment;"), disposition
    plain = re.fullmatch(r'attachment; filename="([^"]*)"; filename\*=(.*)', disposition)
    assert plain, disposition
    charset, _, encoded = plain.group(2).partition("''")
    assert charset == "UTF-8" and re.fullmatch(r"[A-Za-z0-9%._~-]+", encoded), encoded
    return plain.group(1), unquote(encoded, encoding="utf-8", errors="strict")


@pytest.mark.parametrize("tid", AWKWARD_IDS, ids=["quote-semicolon", "non-latin1", "crlf"])
@pytest.mark.parametrize("path", ["/anuncios.csv", "/metricas.csv"])
def test_csv_downloads_name_an_awkward_store_safely(url, tid, path):
    with client(url, ADMIN) as c:
        r = c.get(path, params={"loja": tid})
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("text/csv")
    assert all("pego" not in v for v in r.headers.get_list("set-cookie"))  # no header smuggled
    [disposition] = r.headers.get_list("content-disposition")
    ascii_name, exact = filenames(disposition)
    # The exact name keeps the id (control characters aside: no file name holds them).
    kind = path.strip("/").removesuffix(".csv")
    shown = tid.replace("\r", "_").replace("\n", "_")
    assert exact.startswith(f"{kind}_{shown}_") and exact.endswith(".csv"), exact
    # Old clients get a plain ASCII token: nothing to end the parameter or the header.
    assert re.fullmatch(r"[A-Za-z0-9._-]+", ascii_name), ascii_name
    assert ascii_name.startswith(f"{kind}_") and ascii_name.endswith(".csv")


def refreshed(c) -> dict:
    """Run "Atualizar dados" to its end (the caller runs a worker): its final status."""
    started = c.post("/api/v1/refresh", json={"days": 8})
    assert started.status_code == 202, started.text

    def ended():
        st = c.get(started.json()["statusUrl"]).json()
        return st if st["state"] != "running" else None

    return wait_until(ended, timeout=120, interval=0.2, message="the refresh to end")


def test_the_refresh_status_names_the_listings_its_sync_left_without_visits(engine, tmp_path):
    seller = "ana@loja1.com"
    with sandbox(listings=20) as sb:
        settings = settings_for(sb, tmp_path, ml_max_tries=2)
        connected_tenant(engine, settings)
        registry = build_registry(settings)
        create_user(engine, seller, "correct horse battery", "seller", "t1")
        victims = [data.item_id(sb.state.spec, i) for i in (3, 7, 11)]
        httpx.post(f"{sb.url}/_sandbox/faults", json={"visits_fail_ids": victims})
        with serving(settings, engine, registry) as url, client(url, seller) as c:
            with running_worker(engine, registry):
                partial = refreshed(c)
                assert partial["state"] == "done", partial
                assert partial["message"] == (
                    "As visitas de 3 anúncios não vieram do Mercado Livre; a próxima "
                    "sincronização tenta de novo."
                )
                assert c.get("/api/v1/freshness").json()["status"] == "partial"
                httpx.post(f"{sb.url}/_sandbox/faults", json={})
                clean = refreshed(c)
            assert clean["state"] == "done" and clean["message"] is None, clean


def test_a_wrong_method_anywhere_in_the_api_is_405_naming_the_allowed_ones(url, engine, tmp_path):
    """Not only the internal job endpoints: every route of the app asked with a method it
    does not serve answers 405 `method_not_allowed` with its `Allow` header (RFC 9110), the
    client's cue for what to send instead."""
    from superseller.api.app import create_app  # the routes, not a hard-coded list
    from superseller.api.deps import Services
    from superseller.jobs.clock import SystemClock

    settings = Settings(data_dir=tmp_path)
    svc = Services(settings, engine, build_registry(settings), SystemClock())
    documented = {  # every documented API path, and its methods
        path: {m.upper() for m in ops}
        for path, ops in create_app(svc).openapi()["paths"].items()
        if path.startswith("/api/")
    }

    def methods_of(path: str) -> set[str]:
        """The methods of every documented route whose template matches `path` (e.g.
        GET /api/admin/jobs/{job_id} matches /api/admin/jobs/pause too)."""
        found = set()
        for template, methods in documented.items():
            if re.fullmatch(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)), path):
                found |= methods
        return found

    served = {path: documented[path] for path in documented if "{" not in path}
    assert len(served) > 5
    with client(url, ADMIN) as c:
        for path, methods in served.items():
            wrong = next(m for m in ("PATCH", "PUT", "DELETE", "POST", "GET") if m not in methods)
            r = c.request(wrong, path)
            assert r.status_code == 405, (wrong, path, r.status_code)
            assert r.json()["error"]["code"] == "method_not_allowed", (wrong, path)
            allowed = {m.strip() for m in r.headers["allow"].split(",")}
            # Every method of the path's own routes, and none that no route could take
            # (an id route's `{job_id:int}` is documented as `{job_id}`: a bound, not equality).
            assert methods <= allowed - {"HEAD"} <= methods_of(path), (path, allowed)


def test_the_login_page_sends_someone_signed_in_to_their_overview(url):
    """A bookmark or the back button to /entrar with a live session: the overview, not a
    form that would sign them in again; without a session, the form."""
    with client(url, ADMIN) as c:
        r = c.get("/entrar")
        assert r.status_code == 303 and r.headers["location"] == "/"
        c.post("/api/v1/auth/logout")
        r = c.get("/entrar")
        assert r.status_code == 200 and 'name="password"' in r.text
