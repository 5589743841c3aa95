"""A seller who revokes the app while notifications flow: over real HTTP (sandbox, webhook,
the browser's connect flow) with a real worker, on SQLite and PostgreSQL.

The notifications already stored end as `reauth_required` and their job as skipped (not a
red failed job no retry can heal); later ones are answered 200 and counted as
`reauth_required`, not as a user we do not know; reconnecting queues the sync that brings
what those notifications named."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
from prometheus_client import REGISTRY
from sqlalchemy import select

from superseller.db.schema import jobs, marketplace_accounts, ml_notifications, orders
from superseller.tenants import create_tenant
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support.api import serving
from tests.support.inproc import running_worker, wait_status
from tests.support.ml import sandbox, settings_for
from tests.support.notify import WEBHOOK
from tests.support.waiting import wait_until

PASSWORD = "correct horse battery"
SELLER = 123456789  # the sandbox seller's Mercado Livre user id


def _count(outcome: str) -> float:
    labels = {"outcome": outcome, "topic": "orders_v2"}
    return REGISTRY.get_sample_value("superseller_ml_notifications_total", labels) or 0.0


def _connect(browser: httpx.Client, sb) -> int:
    """The seller connects (again) from the dashboard; returns the import's sync job."""
    start = browser.get("/api/v1/mercadolivre/connect")
    back = httpx.get(start.headers["location"])  # the sandbox approves at once
    done = browser.get(back.headers["location"])
    assert done.status_code == 303, done.text
    return int(httpx.URL(done.headers["location"]).params["importacao"])


def _orders(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(orders.c.external_id)).scalars())


def _probe(url: str) -> dict:
    note = {
        "_id": str(uuid.uuid4()),
        "resource": "/orders/1",
        "user_id": SELLER,
        "topic": "orders_v2",
        "application_id": "sandbox-app",
    }
    r = httpx.post(url + WEBHOOK, json=note)
    assert r.status_code == 200, r.text
    return r.json()


def _sell(sb, items: list[str]) -> set[str]:
    r = httpx.post(f"{sb.url}/_sandbox/sell", json={"items": items}, timeout=30)
    assert r.status_code == 200, r.text
    return {str(i) for i in r.json()["ids"]}


def test_a_revoked_sellers_notifications_are_skipped_and_the_reconnection_catches_up(
    engine, tmp_path
):
    with sandbox(listings=10) as sb:
        sb.state.frozen_at = datetime.now(UTC)  # it sells only what the test sells
        create_tenant(engine, "Loja", tenant_id="t1")
        create_user(engine, "ana@loja.com", PASSWORD, "seller", "t1")
        settings = settings_for(sb, tmp_path, ml_notification_delay_s=0.2)
        registry = build_registry(settings)
        with (
            serving(settings, engine, registry) as url,
            running_worker(engine, registry),
            httpx.Client(base_url=url, timeout=30, headers={"Origin": url}) as browser,
        ):
            settings.ml_redirect_uri = f"{url}/api/v1/mercadolivre/callback"
            login = {"email": "ana@loja.com", "password": PASSWORD}
            assert browser.post("/api/v1/auth/login", json=login).status_code == 200
            first = wait_status(engine, _connect(browser, sb), "completed", "failed", timeout=120)
            assert first["status"] == "completed", first["last_error"]
            emitter = {"callback_url": url + WEBHOOK, "retry_scale": 0.001, "tick_s": 0.05}
            assert httpx.post(f"{sb.url}/_sandbox/notifications", json=emitter).status_code == 200

            # The seller revokes the app at Mercado Livre, then sells: the webhook still
            # takes us for connected, stores the burst, and its job finds the grant gone.
            assert httpx.post(f"{sb.url}/_sandbox/revoke", json={"user_id": SELLER}).is_success
            missed = _sell(sb, ["MLB3000000001", "MLB3000000002", "MLB3000000003"])

            def processing_done():
                with engine.connect() as conn:
                    rows = conn.execute(
                        select(jobs.c.status, jobs.c.result).where(
                            jobs.c.type == "ml_notifications"
                        )
                    ).all()
                return rows and all(r.status in ("completed", "failed") for r in rows) and rows

            ran = wait_until(processing_done, timeout=60, message="the notifications' job")
            assert [r.status for r in ran] == ["completed"] * len(ran)  # no red failed job
            assert {r.result["skipped"] for r in ran} == {"reauth_required"}
            with engine.connect() as conn:
                kept = conn.execute(
                    select(ml_notifications.c.outcome, ml_notifications.c.processed_at)
                ).all()
                status = conn.execute(select(marketplace_accounts.c.status)).scalar()
            assert status == "reauth_required"
            assert kept and {o for o, _ in kept} == {"reauth_required"}
            assert all(at is not None for _, at in kept)  # none waits for ever

            # Now the account says it: later notifications are answered 200, counted as
            # the seller's own `reauth_required` (not `unknown_user`), and not stored
            # (once the webhook's few seconds of remembering the seller as connected end).
            wait_until(
                lambda: _probe(url) == {"status": "reauth_required"},
                timeout=30,
                interval=0.5,
                message="the webhook to answer reauth_required",
            )
            with engine.connect() as conn:
                kept = conn.execute(select(ml_notifications.c.id)).all()
            unknown, reauth = _count("unknown_user"), _count("reauth_required")
            later = _sell(sb, ["MLB3000000004", "MLB3000000005"])
            wait_until(
                lambda: _count("reauth_required") >= reauth + 2,
                timeout=60,
                message="the later notifications answered",
            )
            assert _count("unknown_user") == unknown
            with engine.connect() as conn:
                assert len(conn.execute(select(ml_notifications.c.id)).all()) == len(kept)
            assert _orders(engine).isdisjoint(missed | later)

            # The seller authorizes the app again: the sync the reconnection queues brings
            # every order those notifications named.
            with sb.state.lock:
                sb.state.revoked.discard(SELLER)
            again = wait_status(engine, _connect(browser, sb), "completed", "failed", timeout=120)
            assert again["status"] == "completed", again["last_error"]
            assert (missed | later) <= _orders(engine)
            with engine.connect() as conn:
                assert conn.execute(select(marketplace_accounts.c.status)).scalar() == "connected"
