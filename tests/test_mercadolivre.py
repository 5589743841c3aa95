"""Mercado Livre sync over real HTTP against the sandbox, on SQLite and PostgreSQL."""

import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from superseller.db.engine import make_engine
from superseller.db.schema import (
    listing_visits_daily,
    listings,
    marketplace_accounts,
    order_items,
    orders,
)
from superseller.jobs.clock import ManualClock
from superseller.jobs.queue import Queue
from superseller.mercadolivre.connect import oauth_app
from superseller.mercadolivre.errors import ReauthRequired
from superseller.mercadolivre.tokens import TokenCipher, TokenStore
from superseller.sandbox import data
from superseller.wiring import build_registry
from tests.support.inproc import logs, running_worker, wait_status
from tests.support.ml import connected_tenant, run_sync, sandbox, settings_for


def count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


# 2,500 listings and ~22,000 orders through scan paging, on 2 cores beside three other test workers:
# 95-175 s when the machine has nothing else to do, past 240 s when it does.
@pytest.mark.timeout(900)
def test_large_seller_syncs_completely_through_scan(engine, tmp_path):
    with sandbox(listings=2500, orders_per_day=700, history_days=35) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        before = sb.state.now()
        done = run_sync(engine, build_registry(settings), timeout=840)
        after = sb.state.now()
        assert done["status"] == "completed", done["last_error"]
        assert count(engine, listings) == 2500  # more than 1000: the scan path
        # Every order created from the window's start (31 days back) until the sync began
        # is stored; nothing outside [window start - 1 h, end of sync] is.
        window = done["started_at"] - timedelta(days=31)
        lower = {
            str(o["id"])
            for o in data.orders_between(sb.state.spec, window + timedelta(hours=1), before, before)
        }
        upper = {
            str(o["id"])
            for o in data.orders_between(
                sb.state.spec, window - timedelta(hours=1), after + timedelta(hours=1), after
            )
        }
        with engine.connect() as conn:
            stored = set(conn.execute(select(orders.c.external_id)).scalars())
        assert len(lower) > 20000
        assert lower <= stored <= upper
        assert count(engine, order_items) >= len(stored)
        assert done["result"]["listings"] == 2500 and done["result"]["itemErrors"] == []
        assert done["result"]["visitDays"] == 2500 * 31


def test_sync_is_idempotent_and_queues_the_rebuild(engine, tmp_path):
    clock = ManualClock(datetime.now(UTC))
    with sandbox(listings=60) as sb:
        sb.state.frozen_at = clock.now()
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        reg = build_registry(settings)
        first = run_sync(engine, reg, clock=clock)
        assert first["status"] == "completed"
        with running_worker(engine, reg, clock=clock):  # the jobs the sync queued
            rebuild = wait_status(engine, first["result"]["rebuildJobId"], "completed")
            wait_status(engine, first["result"]["scoreJobId"], "completed")
        assert rebuild["result"]["dateRange"]["to"] == first["result"]["daysTouched"]["to"]
        assert logs(engine, first["id"])[0]["job_type"] == "sync_mercadolivre"
        snapshot = _contents(engine)
        second = run_sync(engine, reg, clock=clock)
        assert second["status"] == "completed"
        with running_worker(engine, reg, clock=clock):
            wait_status(engine, second["result"]["rebuildJobId"], "completed")
            scored = wait_status(engine, second["result"]["scoreJobId"], "completed")
        assert scored["result"]["scoresChanged"] == 0
        assert _contents(engine) == snapshot  # nothing changed, not even updated_at


def _contents(engine) -> dict:
    out = {}
    with engine.connect() as conn:
        for table, key in ((listings, listings.c.external_id), (orders, orders.c.external_id)):
            out[table.name] = [
                tuple(r)
                for r in conn.execute(
                    select(*[c for c in table.c if c.name not in ("id", "account_id")]).order_by(
                        key
                    )
                )
            ]
        out["order_items"] = [
            tuple(r)
            for r in conn.execute(
                select(
                    orders.c.external_id,
                    order_items.c.line,
                    order_items.c.listing_external_id,
                    order_items.c.quantity,
                    order_items.c.unit_price,
                )
                .join(orders, orders.c.id == order_items.c.order_id)
                .order_by(orders.c.external_id, order_items.c.line)
            )
        ]
        out["visits"] = [
            tuple(r)
            for r in conn.execute(
                select(
                    listings.c.external_id,
                    listing_visits_daily.c.date,
                    listing_visits_daily.c.visits,
                )
                .join(listings, listings.c.id == listing_visits_daily.c.listing_id)
                .order_by(listings.c.external_id, listing_visits_daily.c.date)
            )
        ]
    return out


def _comparable(contents: dict) -> dict:
    """What the seller's data is, without our own bookkeeping timestamps or the scores we
    derive from it (the scoring job runs after the sync, whenever a worker gets to it)."""
    drop = {"created_at", "updated_at", "last_sync_ok_at", "score", "score_breakdown", "scored_at"}
    out = dict(contents)
    for name in ("listings", "orders"):
        cols = [
            c.name
            for c in (listings if name == "listings" else orders).c
            if c.name not in ("id", "account_id")
        ]
        keep = [i for i, c in enumerate(cols) if c not in drop]
        out[name] = [tuple(r[i] for i in keep) for r in contents[name]]
    return out


def test_faults_give_the_same_database_as_a_clean_run(engine, tmp_path):
    clock = ManualClock(datetime.now(UTC))
    with sandbox(listings=80, orders_per_day=120) as sb:
        sb.state.frozen_at = clock.now()
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        reg = build_registry(settings)
        httpx.post(
            f"{sb.url}/_sandbox/faults",
            json={"rate_429": 0.2, "rate_500": 0.05, "retry_after_s": 0.01},
        )
        done = run_sync(engine, reg, clock=clock)
        assert done["status"] == "completed", done["last_error"]
        assert done["result"]["retries"] > 10
        faulty = _comparable(_contents(engine))
        with engine.begin() as conn:  # start again from nothing, without faults
            for table in (listing_visits_daily, order_items, orders, listings):
                conn.execute(table.delete())
        httpx.post(f"{sb.url}/_sandbox/faults", json={})
        clean = run_sync(engine, reg, clock=clock)
        assert clean["status"] == "completed" and clean["result"]["retries"] == 0
        assert faulty == _comparable(_contents(engine))
        assert len(faulty["orders"]) > 100 and len(faulty["visits"]) == 80 * 31


def test_failed_visits_call_never_erases_stored_visits(engine, tmp_path):
    clock = ManualClock(datetime.now(UTC))
    with sandbox(listings=20) as sb:
        sb.state.frozen_at = clock.now()
        settings = settings_for(sb, tmp_path, ml_max_tries=3)
        connected_tenant(engine, settings)
        reg = build_registry(settings)
        run_sync(engine, reg, clock=clock)
        victim = data.item_id(sb.state.spec, 3)
        before = _visits_of(engine, victim)
        assert before and any(v for _, v in before)
        httpx.post(f"{sb.url}/_sandbox/faults", json={"visits_fail_ids": [victim]})
        sb.state.frozen_at = clock.advance(timedelta(days=2))  # new days, new counts
        done = run_sync(engine, reg, clock=clock)
        assert done["status"] == "completed"
        assert [e["id"] for e in done["result"]["visitErrors"]] == [victim]
        after = dict(_visits_of(engine, victim))
        assert all(after[d] == v for d, v in before)  # nothing erased or zeroed
        assert max(after) == max(d for d, _ in before)  # and no invented new days


def test_a_listing_whose_visits_ran_out_of_tries_is_asked_again_in_the_same_sync(engine, tmp_path):
    """A 5xx burst (or a 429 storm) longer than one listing's tries: the sync asks for that
    listing again once the others are done, so yesterday does not keep the partial count
    of the last sync until the next night."""
    clock = ManualClock(datetime.now(UTC))
    with sandbox(listings=20) as sb:
        sb.state.frozen_at = clock.now()
        settings = settings_for(sb, tmp_path, ml_max_tries=3)
        connected_tenant(engine, settings)
        reg = build_registry(settings)
        run_sync(engine, reg, clock=clock)
        victim = data.item_id(sb.state.spec, 3)
        httpx.post(f"{sb.url}/_sandbox/faults", json={"visits_fail_next": {victim: 3}})
        sb.state.frozen_at = clock.advance(timedelta(days=2))  # new days, new counts
        done = run_sync(engine, reg, clock=clock)
        assert done["status"] == "completed"
        assert done["result"]["visitErrors"] == []
        now = sb.state.now()
        stored = dict(_visits_of(engine, victim))
        spec, i = sb.state.spec, data.item_index(sb.state.spec, victim)
        newest = max(stored)
        assert newest == max(d for d, _ in _visits_of(engine, data.item_id(spec, 4)))
        assert stored[newest] == data.visits_on(spec, i, newest, now)


def _visits_of(engine, ext):
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(listing_visits_daily.c.date, listing_visits_daily.c.visits)
                .join(listings, listings.c.id == listing_visits_daily.c.listing_id)
                .where(listings.c.external_id == ext)
                .order_by(listing_visits_daily.c.date)
            )
        ]


def test_concurrent_refreshes_make_exactly_one_refresh_call(engine, db_url, tmp_path):
    with sandbox(listings=5) as sb:
        settings = settings_for(sb, tmp_path)
        account = connected_tenant(engine, settings)
        httpx.post(f"{sb.url}/_sandbox/expire-tokens")
        with engine.begin() as conn:  # our copy says expired too
            conn.execute(
                marketplace_accounts.update().values(
                    expires_at=datetime.now(UTC) - timedelta(minutes=1)
                )
            )
        cipher = TokenCipher(settings.encryption_key())
        tokens, errors = [], []
        barrier = threading.Barrier(8)

        def racer():
            own = make_engine(db_url)  # its own connections, like another process
            try:
                barrier.wait()
                tokens.append(TokenStore(own, account, oauth_app(settings), cipher).current())
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                own.dispose()

        threads = [threading.Thread(target=racer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert sb.state.stats["refreshes"] == 1
        assert len({t for t, _ in tokens}) == 1  # everyone got the one new token


def test_eight_sync_jobs_with_an_expiring_token_share_one_refresh(engine, tmp_path):
    with sandbox(listings=10) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        httpx.post(f"{sb.url}/_sandbox/expire-tokens")  # the server now refuses it: 401
        reg = build_registry(settings)
        ids = [
            Queue(engine, reg)
            .enqueue("sync_mercadolivre", {"tenantId": "t1", "daysBack": 3}, tenant_id="t1")
            .id
            for _ in range(8)
        ]
        with running_worker(engine, reg, concurrency=8):
            done = [wait_status(engine, i, "completed", "failed", timeout=120) for i in ids]
        assert [d["status"] for d in done] == ["completed"] * 8
        assert sb.state.stats["refreshes"] == 1


def test_revoked_grant_marks_reauth_and_stops_without_retries(engine, tmp_path):
    with sandbox(listings=5) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        httpx.post(f"{sb.url}/_sandbox/revoke", json={})
        reg = build_registry(settings)
        done = run_sync(engine, reg)
        assert done["status"] == "failed" and done["attempts"] == 1
        assert "needs re-authorization" in done["last_error"]
        with engine.connect() as conn:
            acct = conn.execute(select(marketplace_accounts)).one()
        assert acct.status == "reauth_required"
        assert "expired or it was already used" in acct.status_reason
        again = run_sync(engine, reg)  # a later sync stops at once, no refresh storm
        assert again["status"] == "failed" and "re-authorization" in again["last_error"]
        assert sb.state.stats["refreshes"] == 0


def test_tokens_are_encrypted_at_rest(engine, tmp_path):
    with sandbox(listings=1) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        with engine.connect() as conn:
            acct = conn.execute(select(marketplace_accounts)).one()
        assert not acct.access_token_enc.startswith("APP_USR")
        assert "TG-" not in acct.refresh_token_enc
        assert (
            TokenCipher(settings.encryption_key())
            .decrypt(acct.access_token_enc)
            .startswith("APP_USR-")
        )
        with pytest.raises(ReauthRequired, match="cannot be decrypted"):
            from cryptography.fernet import Fernet

            TokenCipher(Fernet.generate_key()).decrypt(acct.access_token_enc)


def test_all_fans_out_to_connected_tenants_and_a_later_sync_finds_new_orders(engine, tmp_path):
    with sandbox(listings=10, orders_per_day=200) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings, "t1")
        # One Mercado Livre account belongs to one store: t2 is another seller.
        httpx.post(f"{sb.url}/_sandbox/login-as", json={"user_id": 987654321})
        connected_tenant(engine, settings, "t2")
        reg = build_registry(settings)
        jid = Queue(engine, reg).enqueue("sync_mercadolivre", {"tenantId": "all", "daysBack": 2}).id
        with running_worker(engine, reg):
            fan = wait_status(engine, jid, "completed")
            children = [
                wait_status(engine, c, "completed", timeout=60) for c in fan["result"]["jobIds"]
            ]
        assert fan["result"]["fannedOut"] == 2
        assert sorted(c["tenant_id"] for c in children) == ["t1", "t2"]
        first = count(engine, orders)
        # Five hours on (within the 6 h access token).
        httpx.post(f"{sb.url}/_sandbox/advance", json={"seconds": 5 * 3600})
        clock = ManualClock(datetime.now(UTC) + timedelta(hours=5))
        assert run_sync(engine, reg, days_back=2, clock=clock)["status"] == "completed"
        assert count(engine, orders) > first  # new orders appeared and were fetched
