"""Login, roles and tenant isolation for the seller routes, over real HTTP."""

from datetime import UTC, date, datetime

import httpx
import pytest
from sqlalchemy import select

from superseller.config import Settings
from superseller.db.schema import jobs, listings
from superseller.metrics.rebuild import rebuild_daily_metrics
from superseller.scoring.jobs import score_tenant
from superseller.users.accounts import UserError, create_user
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import serving
from tests.support.inproc import job

PASSWORD = "correct horse battery"


@pytest.fixture
def shop(engine):
    for tid in ("t1", "t2"):
        mk.tenant(engine, tid)
        mk.account(engine, tid)
        lid = mk.listing(engine, tid, f"MLB-{tid}", date(2026, 1, 1))
        mk.order(engine, tid, f"o-{tid}", "2026-01-10T12:00:00-03:00", "paid", [(lid, 1, "10.00")])
        rebuild_daily_metrics(engine, tid, "2026-01-01", "2026-01-31")
    create_user(engine, "ana@loja1.com", PASSWORD, "seller", "t1")
    create_user(engine, "bia@loja2.com", PASSWORD, "seller", "t2")
    create_user(engine, "ops@superseller.dev", PASSWORD, "admin")


@pytest.fixture
def url(engine, shop, tmp_path):
    settings = Settings(data_dir=tmp_path, login_attempts_per_minute=5)
    with serving(settings, engine, build_registry(settings)) as u:
        yield u


def login(url, email, password=PASSWORD) -> httpx.Client:
    c = httpx.Client(base_url=url, timeout=30, headers={"Origin": url})  # as a browser
    r = c.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    assert "httponly" in r.headers["set-cookie"].lower()
    return c  # the cookie is kept, and the origin sent, as a browser would


def test_login_gives_a_token_and_a_cookie(url):
    r = httpx.post(
        f"{url}/api/v1/auth/login", json={"email": "ANA@loja1.com", "password": PASSWORD}
    )
    body = r.json()
    assert body["user"] == {"email": "ana@loja1.com", "role": "seller", "tenantId": "t1"}
    bearer = httpx.get(
        f"{url}/api/v1/freshness", headers={"Authorization": f"Bearer {body['token']}"}
    )
    assert bearer.status_code == 200 and bearer.json()["tenantId"] == "t1"
    assert httpx.get(f"{url}/api/v1/freshness").status_code == 401
    assert (
        httpx.get(
            f"{url}/api/v1/freshness", headers={"Authorization": "Bearer not.a.token"}
        ).status_code
        == 401
    )


def test_wrong_password_and_rate_limit(url):
    bad = {"email": "ana@loja1.com", "password": "nope"}
    codes = [httpx.post(f"{url}/api/v1/auth/login", json=bad).status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]
    # The limit holds for the right password too, within the minute.
    good = httpx.post(f"{url}/api/v1/auth/login", json={**bad, "password": PASSWORD})
    assert good.status_code == 429 and good.json()["error"]["code"] == "too_many_attempts"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/metrics/overview?from=2026-01-01&to=2026-01-31",
        "/api/v1/listings?from=2026-01-01&to=2026-01-31",
        "/api/v1/freshness",
    ],
)
def test_a_seller_sees_only_their_tenant(url, path):
    ana = login(url, "ana@loja1.com")
    own = ana.get(path)
    assert own.status_code == 200
    sep = "&" if "?" in path else "?"
    assert ana.get(f"{path}{sep}tenantId=t2").status_code == 404  # as if it did not exist
    assert ana.get(f"{path}{sep}tenantId=nope").status_code == 404
    admin = login(url, "ops@superseller.dev")
    assert admin.get(f"{path}{sep}tenantId=t2").status_code == 200
    assert admin.get(path).status_code == 404  # an admin must say which tenant


def test_overview_figures_are_the_tenants_own(url):
    ana = login(url, "ana@loja1.com")
    o = ana.get("/api/v1/metrics/overview", params={"from": "2026-01-01", "to": "2026-01-31"})
    assert o.json()["cards"]["revenue"]["value"] == 10.0
    assert [t["externalId"] for t in o.json()["topListings"]] == ["MLB-t1"]
    rows = ana.get("/api/v1/listings", params={"from": "2026-01-01", "to": "2026-01-31"}).json()
    assert [r["externalId"] for r in rows["listings"]] == ["MLB-t1"]
    assert ana.get("/api/v1/metrics/overview", params={"days": 7}).json()["period"]["days"] == 7
    assert ana.get("/api/v1/metrics/overview", params={"from": "2026-01-05"}).status_code == 422
    assert ana.get("/api/v1/metrics/overview", params={"days": "x"}).status_code == 422


def test_refresh_is_deduplicated_and_scoped(url, engine):
    ana = login(url, "ana@loja1.com")
    first = ana.post("/api/v1/refresh", json={"days": 7})
    second = ana.post("/api/v1/refresh", json={"days": 7})  # a double click
    assert first.status_code == 202 and first.json()["created"] is True
    assert second.json()["jobIds"] == first.json()["jobIds"] and second.json()["created"] is False
    jid = first.json()["jobIds"][0]
    assert job(engine, jid)["tenant_id"] == "t1"
    assert ana.get(f"/api/v1/refresh/{jid}").json()["state"] == "running"
    bia = login(url, "bia@loja2.com")
    assert bia.get(f"/api/v1/refresh/{jid}").status_code == 404  # not hers
    assert (
        bia.post("/api/v1/refresh", json={"days": 7}, params={"tenantId": "t1"}).status_code == 404
    )


def test_an_unconnected_tenant_is_told_to_connect_not_sent_a_sync(url, engine):
    mk.tenant(engine, "t3")
    create_user(engine, "cid@loja3.com", PASSWORD, "seller", "t3")
    cid = login(url, "cid@loja3.com")
    fresh = cid.get("/api/v1/freshness").json()
    assert fresh["status"] == fresh["connection"] == "not_connected"
    assert fresh["label"] == "Não conectado"
    refused = cid.post("/api/v1/refresh", json={"days": 7})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "not_connected"
    with engine.connect() as conn:  # nothing queued: a sync could only fail
        assert conn.execute(select(jobs.c.id).where(jobs.c.tenant_id == "t3")).first() is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("not-an-email", PASSWORD, "seller", "t1"), "not an email"),
        (("x@y.com", "short", "seller", "t1"), "at least 8"),
        (("x@y.com", PASSWORD, "root", None), "role must be"),
        (("x@y.com", PASSWORD, "seller", None), "belongs to a tenant"),
        (("ana@loja1.com", PASSWORD, "seller", "t1"), "already exists"),
    ],
)
def test_user_creation_is_validated(engine, shop, args, message):
    with pytest.raises(UserError, match=message):
        create_user(engine, *args)


def test_listing_score_and_clip_override_are_the_tenants_own(url, engine):
    score_tenant(engine, "t1", datetime.now(UTC))
    score_tenant(engine, "t2", datetime.now(UTC))
    with engine.connect() as conn:
        ids = dict(conn.execute(select(listings.c.tenant_id, listings.c.id)).all())
    ana = login(url, "ana@loja1.com")
    assert ana.get(f"/api/v1/listings/{ids['t1']}/score").status_code == 200
    theirs = f"/api/v1/listings/{ids['t2']}"
    assert ana.get(f"{theirs}/score").status_code == 404
    assert ana.put(f"{theirs}/clips", json={"hasClips": True}).status_code == 404
    with engine.connect() as conn:  # and nothing was written to the other tenant's listing
        assert (
            conn.execute(
                select(listings.c.has_clips_override).where(listings.c.id == ids["t2"])
            ).scalar()
            is None
        )
