"""Sessions that end and a login limit that holds (issue 16), over real HTTP, on both
databases: a token is valid only while its session exists; user ids are never reused;
failed logins are counted per normalized email and per TCP peer, in the database."""

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from superseller.config import Settings
from superseller.db.schema import login_failures
from superseller.users import accounts
from superseller.users.accounts import create_user
from superseller.users.ratelimit import LoginLimiter
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import serving
from tests.support.cli import cli

PASSWORD = "correct horse battery"


@pytest.fixture
def shop(engine):
    for tid in ("ta", "tb"):
        mk.tenant(engine, tid)
    create_user(engine, "ana@loja-a.com", PASSWORD, "seller", "ta")
    create_user(engine, "ops@superseller.dev", PASSWORD, "admin")


@pytest.fixture
def url(engine, shop, tmp_path):
    settings = Settings(data_dir=tmp_path, login_attempts_per_minute=5)
    with serving(settings, engine, build_registry(settings)) as u:
        yield u


def login(url, email, password=PASSWORD, **headers) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/auth/login", json={"email": email, "password": password}, headers=headers
    )


def token(url, email) -> str:
    r = login(url, email)
    assert r.status_code == 200, r.text
    return r.json()["token"]


def freshness(url, tok, tenant=None) -> httpx.Response:
    return httpx.get(
        f"{url}/api/v1/freshness",
        params={"tenantId": tenant} if tenant else None,
        headers={"Authorization": f"Bearer {tok}"},
    )


def test_a_deleted_users_token_never_opens_the_next_users_account(url, engine):
    # The finding: on SQLite a deleted seller's id went to the next user, in any tenant,
    # and the deleted seller's token read that user's data.
    bia = create_user(engine, "bia@loja-b.com", PASSWORD, "seller", "tb")
    old = token(url, "bia@loja-b.com")
    assert freshness(url, old).json()["tenantId"] == "tb"
    accounts.delete_user(engine, "bia@loja-b.com")
    newcomer = create_user(engine, "caio@loja-a.com", PASSWORD, "seller", "ta")
    assert newcomer.id != bia.id  # ids are never reused
    assert freshness(url, old).status_code == 401
    assert freshness(url, token(url, "caio@loja-a.com")).json()["tenantId"] == "ta"


def test_logout_ends_the_token_for_api_calls(url):
    tok = token(url, "ana@loja-a.com")
    other = token(url, "ana@loja-a.com")  # a second device
    r = httpx.post(f"{url}/api/v1/auth/logout", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 204
    assert freshness(url, tok).status_code == 401
    assert freshness(url, other).status_code == 200  # only that session ended


def test_the_sair_button_ends_the_session_not_only_the_cookie(url):
    with httpx.Client(base_url=url, headers={"Origin": url}) as browser:
        r = browser.post(
            "/api/v1/auth/login", json={"email": "ana@loja-a.com", "password": PASSWORD}
        )
        tok = r.json()["token"]
        page = browser.get("/").text
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        # A form without the page's token (a forged one) does not log out.
        assert browser.post("/sair", data={"csrf": "forged"}).headers["location"] == "/"
        assert freshness(url, tok).status_code == 200
        out = browser.post("/sair", data={"csrf": csrf})
        assert out.status_code == 303 and out.headers["location"] == "/entrar"
    assert freshness(url, tok).status_code == 401


def test_password_role_and_state_changes_end_sessions(url, engine, db_url):
    tok = token(url, "ana@loja-a.com")
    accounts.set_password(engine, "ana@loja-a.com", "another good password")
    assert freshness(url, tok).status_code == 401
    assert login(url, "ana@loja-a.com").status_code == 401  # the old password is gone

    tok = token(url, "ops@superseller.dev")
    accounts.set_role(engine, "ops@superseller.dev", "seller", "tb")
    assert freshness(url, tok, "ta").status_code == 401
    tok = token(url, "ops@superseller.dev")
    assert freshness(url, tok, "ta").status_code == 404  # a seller of tb now

    # The CLI: list, revoke-sessions, disable, enable, delete.
    listed = json.loads(cli(db_url, "users", "list", "--json", check=True).stdout)
    ops = next(u for u in listed if u["email"] == "ops@superseller.dev")
    assert ops["sessions"] == 1 and ops["role"] == "seller" and ops["disabled_at"] is None
    out = cli(db_url, "users", "revoke-sessions", "ops@superseller.dev", check=True).stdout
    assert "1 session(s)" in out
    assert freshness(url, tok).status_code == 401
    tok = token(url, "ops@superseller.dev")
    cli(db_url, "users", "disable", "ops@superseller.dev", check=True)
    assert freshness(url, tok).status_code == 401
    assert login(url, "ops@superseller.dev").status_code == 401
    cli(db_url, "users", "enable", "ops@superseller.dev", check=True)
    tok = token(url, "ops@superseller.dev")
    cli(db_url, "users", "delete", "ops@superseller.dev", "--yes", check=True)
    assert freshness(url, tok).status_code == 401
    missing = cli(db_url, "users", "disable", "nobody@x.com")
    assert missing.returncode != 0 and "no user with email nobody@x.com" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_whitespace_and_case_variants_of_an_email_share_one_limit(url):
    variants = [" ana@loja-a.com", "ana@loja-a.com\t", "ANA@loja-a.com ", "\nAna@Loja-A.com"]
    variants.append("ana@loja-a.com  ")
    for email in variants:  # 5 failures allowed per minute
        assert login(url, email, "wrong password").status_code == 401
    r = login(url, "ana@loja-a.com")  # the right password, too late
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_attempts"


def test_a_forged_x_forwarded_for_does_not_make_a_new_client(url):
    # Fresh emails each time: only the client address can stop this guessing.
    codes = [
        login(
            url, f"guess{i}@loja-a.com", "wrong", **{"X-Forwarded-For": f"10.9.8.{i}"}
        ).status_code
        for i in range(7)
    ]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]


def test_successful_logins_are_not_counted(url):
    assert [login(url, "ana@loja-a.com").status_code for _ in range(8)] == [200] * 8


def test_every_process_sees_the_same_failures(url, engine, tmp_path):
    settings = Settings(data_dir=tmp_path, login_attempts_per_minute=5)
    with serving(settings, engine, build_registry(settings)) as second:
        for i in range(5):
            assert login(url if i % 2 else second, "ana@loja-a.com", "wrong").status_code == 401
        assert login(second, "ana@loja-a.com").status_code == 429
        assert login(url, "ana@loja-a.com").status_code == 429


def test_failures_are_forgotten_after_the_window(engine):
    limiter = LoginLimiter(engine, per_window=5, window_s=60)
    t0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    for i in range(200):  # a flood of fresh emails
        limiter.attempt([f"email:x{i}@y.com"], t0)
    again = [limiter.attempt(["email:x0@y.com"], t0) for _ in range(5)]
    assert again == [True] * 4 + [False]  # 5 failures allowed, the 6th attempt is not
    later = t0 + timedelta(seconds=61)
    assert limiter.attempt(["email:x0@y.com"], later) is True
    with engine.connect() as conn:  # nothing of the old window is kept
        assert conn.execute(select(func.count()).select_from(login_failures)).scalar() == 1
