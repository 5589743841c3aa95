"""The API while its database is unreachable: a 503 the user can act on (JSON for API
clients, a Portuguese page for a browser), one log line instead of tracebacks, and
everything back as soon as the database is."""

from __future__ import annotations

import logging

import httpx
import pytest

from superseller.config import Settings
from superseller.db.engine import make_engine
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import PASSWORD, serving
from tests.support.faultproxy import FaultProxy
from tests.support.pgfault import terminate_backends

EMAIL = "ana@loja1.com"


@pytest.fixture
def behind_proxy(db_url, engine):
    mk.tenant(engine, "t1")
    create_user(engine, EMAIL, PASSWORD, "seller", "t1")
    proxy = FaultProxy.for_url(db_url)
    proxied = make_engine(proxy.url(db_url))
    yield proxy, proxied, db_url.rsplit("/", 1)[1]
    proxied.dispose()
    proxy.close()


def _cut(proxy: FaultProxy, db_name: str) -> None:
    proxy.cut()
    terminate_backends(db_name)


# PostgreSQL only: SQLite has no connection to lose (a held write lock is waited out by the
# busy timeout, and tests/test_outages.py covers it).
@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_database_outage_is_a_503_in_the_users_words(behind_proxy, tmp_path, caplog):
    proxy, proxied, db_name = behind_proxy
    settings = Settings(data_dir=tmp_path)
    with serving(settings, proxied, build_registry(settings)) as url:
        with httpx.Client(base_url=url, timeout=30, headers={"Origin": url}) as c:
            login = {"email": EMAIL, "password": PASSWORD}
            assert c.post("/api/v1/auth/login", json=login).status_code == 200
            assert c.get("/api/v1/metrics/overview").status_code == 200
            _cut(proxy, db_name)
            try:
                with caplog.at_level(logging.WARNING):
                    overview = c.get("/api/v1/metrics/overview")
                    again = httpx.post(f"{url}/api/v1/auth/login", json=login, timeout=30)
                    page = c.get("/", headers={"Accept": "text/html"})
                for r in (overview, again):
                    assert r.status_code == 503, r.text
                    assert r.json()["error"]["code"] == "database_unavailable"
                    assert r.headers["Retry-After"] == "5"
                assert page.status_code == 503
                assert "temporariamente indisponível" in page.text
                assert "tente de novo em instantes" in page.text
                # A warning line per request, not a traceback: an outage is not a bug.
                away = [r for r in caplog.records if "database unreachable" in r.getMessage()]
                assert away and all(r.exc_info is None for r in away)
                assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
            finally:
                proxy.restore()
            # Back as soon as the database is: the same session works again.
            assert c.get("/api/v1/metrics/overview").status_code == 200
            assert c.post("/api/v1/auth/login", json=login).status_code == 200
