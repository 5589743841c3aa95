"""Sync faults found by a walk: a grant lost during the visits step, silent network retries.

Real HTTP against the sandbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from sqlalchemy import func, select

from superseller.db.schema import jobs, marketplace_accounts, tenants
from superseller.mercadolivre import client as ml_client
from superseller.mercadolivre.client import MLClient, RetryNotice
from superseller.mercadolivre.errors import MLError
from superseller.sandbox import data
from superseller.sandbox.server import free_port
from superseller.wiring import build_registry
from tests.support.ml import connected_tenant, run_sync, sandbox, settings_for

CLIENT_LOG = "superseller.mercadolivre.client"


class _OnRequest(list):
    """The sandbox's request log, calling `hook` (under the sandbox's lock) as each request
    whose path ends with `suffix` arrives, before it is answered: a fault that strikes
    exactly when the sync reaches a given step."""

    def __init__(self, hook, suffix: str, *args):
        super().__init__(*args)
        self.hook = hook
        self.suffix = suffix

    def append(self, entry) -> None:
        super().append(entry)
        if entry[1].endswith(self.suffix):
            self.hook()


def _strike_at(sb, suffix: str, hook) -> None:
    sb.state.request_log = _OnRequest(hook, suffix, sb.state.request_log)


def _tenant(engine):
    with engine.connect() as conn:
        return conn.execute(select(tenants).where(tenants.c.id == "t1")).one()


def _rebuilds(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(jobs).where(jobs.c.type == "metrics_aggregation")
        ).scalar()


# The listing details (multiget), the orders search, the visits: each step's first call.
STEPS = ["/items", "/orders/search", "/visits/time_window"]


@pytest.mark.parametrize("step", STEPS, ids=["listings", "orders", "visits"])
def test_grant_lost_during_a_step_ends_reconnect_required(engine, tmp_path, step):
    """The walk: Mercado Livre forgot every token (a restart with fresh state) just as the
    visits step began. Every visits call answers 401, the refresh answers invalid_grant:
    the sync must end as reconnect-required, not "completed" with each listing's visits
    filed as a refusal (which told the seller the update worked). The same in every step."""
    with sandbox(listings=12) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        reg = build_registry(settings)
        first = run_sync(engine, reg, days_back=3)
        assert first["status"] == "completed", first["last_error"]
        ok_at = _tenant(engine).last_sync_ok_at
        rebuilds = _rebuilds(engine)

        def forget_every_token():
            sb.state.access.clear()
            sb.state.latest_refresh.clear()

        _strike_at(sb, step, forget_every_token)
        done = run_sync(engine, reg, days_back=3)
        assert done["status"] == "failed" and done["attempts"] == 1, done["result"]
        assert "needs re-authorization" in done["last_error"]
        with engine.connect() as conn:
            acct = conn.execute(select(marketplace_accounts)).one()
        assert acct.status == "reauth_required"
        t = _tenant(engine)
        assert t.last_sync_ok_at == ok_at  # not noted as a successful sync
        assert t.last_sync_error.startswith("reconnect needed")
        assert _rebuilds(engine) == rebuilds  # nothing queued as if it had worked


def test_a_401_that_a_fresh_token_does_not_fix_fails_the_sync(engine, tmp_path):
    """Even a just-refreshed token is refused on the visits calls: the account's answer, not
    each listing's. The sync fails (as a 401 in the listings or orders step does), never
    "completed" with every listing's visits filed as refused."""
    with sandbox(listings=6) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        reg = build_registry(settings)
        _strike_at(sb, STEPS[-1], sb.state.access.clear)  # every token refused, refresh works
        done = run_sync(engine, reg, days_back=3)
        assert done["status"] == "failed", done["result"]
        assert "401" in done["last_error"]
        assert _tenant(engine).last_sync_ok_at is None
        assert sb.state.stats["refreshes"] >= 1  # a refresh was tried, and did not help


class _Tokens:
    refreshes = 0

    def current(self):
        return "APP_USR-secret-token-123", 1


class _Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def notice(monkeypatch) -> _Clock:
    """A fresh process-wide notice, on a clock the test moves."""
    clock = _Clock()
    monkeypatch.setattr(ml_client, "RETRY_NOTICE", RetryNotice(30.0, clock))
    return clock


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == CLIENT_LOG]


def _get(url: str, path: str, tries: int, params: dict | None = None) -> MLError:
    async def run() -> MLError:
        client = MLClient(url, _Tokens(), max_tries=tries, backoff_base_s=0.001)
        try:
            await client.get(path, params)
        except MLError as exc:
            return exc
        finally:
            await client.close()
        raise AssertionError("the request did not fail")

    return asyncio.run(run())


def test_5xx_retries_are_logged_once_per_interval_with_the_count(notice, caplog):
    caplog.set_level(logging.WARNING, logger=CLIENT_LOG)
    with sandbox(listings=3) as sb:
        httpx.post(f"{sb.url}/_sandbox/faults", json={"rate_500": 1.0})
        err = _get(sb.url, "/users/me", tries=4, params={"access_token": "secret-in-query"})
        assert err.status == 500
        lines = _lines(caplog)
        # 3 retried failures (the 4th is not retried): the first is told at once, the
        # next two wait for the interval.
        assert len(lines) == 1
        assert "GET /users/me" in lines[0] and "HTTP 500" in lines[0]
        notice.t += 31
        _get(sb.url, "/users/me", tries=2)
        lines = _lines(caplog)
        assert len(lines) == 2
        assert "3 failed and were retried" in lines[1] and "last 31 s" in lines[1]
    text = "\n".join(_lines(caplog))
    assert "secret" not in text and "access_token" not in text


def test_429s_are_not_logged(notice, caplog):
    """Mercado Livre pacing us is routine (/metrics counts it): no warning for it."""
    caplog.set_level(logging.WARNING, logger=CLIENT_LOG)
    with sandbox(listings=3) as sb:
        faults = {"rate_429": 1.0, "retry_after_share": 1.0, "retry_after_s": 0.01}
        httpx.post(f"{sb.url}/_sandbox/faults", json=faults)
        assert _get(sb.url, "/users/me", tries=3).status == 429
    assert _lines(caplog) == []


def test_network_errors_are_logged_without_secrets(notice, caplog):
    caplog.set_level(logging.WARNING, logger=CLIENT_LOG)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    err = _get(url, "/items/MLB1/visits/time_window", tries=3, params={"last": 3})
    assert err.status == 0
    lines = _lines(caplog)
    assert len(lines) == 1
    assert "network error (ConnectError)" in lines[0]
    assert "/items/MLB1/visits/time_window" in lines[0] and "last=" not in lines[0]
    assert "APP_USR" not in "\n".join(lines)


def test_a_sync_whose_visits_keep_failing_logs_a_notice_not_a_line_per_retry(
    engine, tmp_path, notice, caplog
):
    caplog.set_level(logging.WARNING, logger=CLIENT_LOG)
    with sandbox(listings=8) as sb:
        settings = settings_for(sb, tmp_path, ml_max_tries=3)
        connected_tenant(engine, settings)
        ids = [data.item_id(sb.state.spec, i) for i in range(8)]
        httpx.post(f"{sb.url}/_sandbox/faults", json={"visits_fail_ids": ids})
        done = run_sync(engine, build_registry(settings), days_back=3)
        assert done["status"] == "completed", done["last_error"]
        result = done["result"]
        assert result["visitsMissing"] == 8 and result["retries"] >= 16
        lines = _lines(caplog)
        assert len(lines) == 1  # the notice's clock did not move: one line, not 32
        assert "HTTP 500" in lines[0] and "/visits/time_window" in lines[0]
        tokens = list(sb.state.access)
    assert tokens and not any(t in line for t in tokens for line in lines)
