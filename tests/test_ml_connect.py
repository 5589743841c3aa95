"""Connecting Mercado Livre from the browser: connect -> authorization -> callback, with a
signed state, PKCE and an encrypted cookie, against the sandbox over real HTTP."""

import httpx
import pytest
from sqlalchemy import select, update

from superseller.db.schema import marketplace_accounts
from superseller.tenants import create_tenant
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support.api import serving
from tests.support.ml import sandbox, settings_for

PASSWORD = "correct horse battery"


@pytest.fixture
def flow(engine, tmp_path):
    with sandbox(listings=5) as sb:
        create_tenant(engine, "Loja", tenant_id="t1")
        create_user(engine, "ana@loja.com", PASSWORD, "seller", "t1")
        settings = settings_for(sb, tmp_path)
        with serving(settings, engine, build_registry(settings)) as url:
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
    assert done.status_code == 303 and done.headers["location"] == "/?conectado=1"
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
