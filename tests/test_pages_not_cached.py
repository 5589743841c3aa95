"""A seller's pages and API answers are never kept by a browser or a proxy (`no-store`):
after *Sair* nothing of the store's numbers may come back from a cache. Real HTTP, on SQLite
and PostgreSQL; static assets stay cacheable. (A Chromium back-button check was tried and
dropped: headless Chromium asked the server again even without the header, so it could
not fail.)"""

from datetime import date

import httpx
import pytest

from superseller.config import Settings
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import PASSWORD, client, serving

SELLER, ADMIN = "ana@loja1.com", "ops@superseller.dev"


@pytest.fixture
def url(engine, tmp_path):
    mk.tenant(engine, "t1")
    mk.listing(engine, "t1", "MLB1", date(2026, 1, 1))
    create_user(engine, SELLER, PASSWORD, "seller", "t1")
    create_user(engine, ADMIN, PASSWORD, "admin")
    settings = Settings(data_dir=tmp_path)
    with serving(settings, engine, build_registry(settings)) as u:
        yield u


@pytest.mark.parametrize(
    "who, path",
    [
        (SELLER, "/"),
        (SELLER, "/anuncios"),
        (SELLER, "/anuncios.csv"),
        (SELLER, "/api/v1/freshness"),
        (ADMIN, "/admin/jobs"),
        (ADMIN, "/api/admin/jobs"),
        (None, "/entrar"),
        (None, "/api/v1/freshness"),  # a refusal is not cached either
    ],
)
def test_pages_and_answers_are_not_stored(url, who, path):
    if who is None:
        with httpx.Client(base_url=url, timeout=30) as c:
            r = c.get(path)
    else:
        with client(url, who) as c:
            r = c.get(path)
    assert r.status_code < 500, (path, r.status_code)
    assert r.headers.get("cache-control") == "no-store", (path, r.headers.get("cache-control"))


def test_static_assets_stay_cacheable(url):

    r = httpx.get(f"{url}/static/app.css", timeout=30)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=3600"
