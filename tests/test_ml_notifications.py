"""Mercado Livre notifications end to end over real HTTP: the sandbox emits, the webhook
stores, a worker fetches and rebuilds; on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from playwright.sync_api import expect
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from superseller.db.engine import make_engine
from superseller.db.schema import jobs, listings, marketplace_accounts, ml_notifications, orders
from superseller.jobs.queue import Queue
from superseller.metrics.freshness import RECOVERED_ATTEMPTS, tenant_freshness
from superseller.sandbox.data import SellerSpec
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import serving
from tests.support.faultproxy import FaultProxy
from tests.support.inproc import running_worker, wait_status
from tests.support.ml import connected_tenant, sandbox, settings_for
from tests.support.notify import WEBHOOK, Loop, contents, notification_loop
from tests.support.waiting import wait_until

PASSWORD = "correct horse battery"


def _order(engine, ext: str):
    with engine.connect() as conn:
        return conn.execute(select(orders).where(orders.c.external_id == ext)).first()


def _still(sb) -> None:
    """Stop the sandbox seller's clock: its shop then sells only what the test sells.
    Left running, it makes its own sales as time passes (`orders_per_day`) and notifies
    them, so a test that counts notifications, fetches or orders counted one more
    whenever one fell within its run, more likely the longer a loaded machine made it
    last; and a sale between two syncs made them differ. Call it before the first sync."""
    sb.state.frozen_at = datetime.now(UTC)


def test_a_sandbox_sale_reaches_the_overview_within_a_minute_without_a_click(
    engine, tmp_path, browser
):
    with notification_loop(engine, tmp_path, listings=40) as loop:
        _still(loop.sb)  # one more order of its own would make it "2 novos pedidos"
        _sync_and_wait(loop)
        create_user(engine, "ana@loja1.com", PASSWORD, "seller", "t1")
        api = httpx.Client(base_url=loop.url, timeout=30)
        token = api.post(
            "/api/v1/auth/login", json={"email": "ana@loja1.com", "password": PASSWORD}
        ).json()["token"]
        api.headers["Authorization"] = f"Bearer {token}"
        before = api.get("/api/v1/metrics/overview").json()["today"]["orders"] or 0
        assert api.get("/api/v1/freshness").json()["realtime"]["state"] == "never"

        page = browser.new_page(locale="pt-BR")
        page.goto(f"{loop.url}/entrar")
        page.fill("input[name=email]", "ana@loja1.com")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{loop.url}/")
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads
        expect(page.locator("#live-cue")).to_be_hidden()

        loop.emit()
        sale = loop.sandbox("POST", "/_sandbox/sell", json={"item": "MLB3000000003"})
        today = wait_until(
            lambda: (
                (t := api.get("/api/v1/metrics/overview").json()["today"])["orders"] == before + 1
                and t
            ),
            timeout=60,
            interval=0.5,
            message="the sale in the overview",
        )
        assert today["revenue"] is not None
        fresh = api.get("/api/v1/freshness").json()
        assert fresh["realtime"]["state"] == "flowing" and fresh["label"].endswith("tempo real")
        row = _order(engine, str(sale["id"]))
        assert row.status == "paid"

        expect(page.locator("#live-cue")).to_have_text("Novo pedido", timeout=30_000)
        expect(page.locator("#today")).to_have_attribute(
            "data-orders", str(before + 1), timeout=10_000
        )
        expect(page.locator("#realtime")).to_have_text("tempo real")
        assert page.evaluate("window.__sameDocument === true")  # updated in place
        page.close()


def test_freshness_says_when_notifications_stopped(engine):
    t = mk.tenant(engine)
    mk.account(engine, t, ml_user_id=123456789)
    received = datetime(2026, 1, 20, 15, 0, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            ml_notifications.insert().values(
                notification_id="n1",
                tenant_id=t,
                ml_user_id=123456789,
                topic="orders_v2",
                resource="/orders/1",
                received_at=received,
            )
        )
    flowing = tenant_freshness(engine, t, received + timedelta(minutes=30))["realtime"]
    stopped = tenant_freshness(engine, t, received + timedelta(hours=3))["realtime"]
    assert flowing["state"] == "flowing" and flowing["message"] == "Tempo real"
    assert stopped["state"] == "stopped"
    assert stopped["message"] == "Tempo real parado desde 20/01 às 12:00"  # São Paulo time


def _sample(outcome: str, topic: str = "") -> float:
    value = REGISTRY.get_sample_value(
        "superseller_ml_notifications_total", {"outcome": outcome, "topic": topic}
    )
    return value or 0.0


def _stored(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(ml_notifications).order_by(ml_notifications.c.id)).all()


def _body(**over):
    body = {
        "_id": str(uuid.uuid4()),
        "resource": "/orders/2000000000000001",
        "user_id": 123456789,
        "topic": "orders_v2",
        "application_id": "sandbox-app",
        "attempts": 1,
        "sent": "2025-01-21T13:44:33.006Z",
        "recieved": "2025-01-21T13:44:32.984Z",  # the reference's own typo
    }
    return {k: v for k, v in {**body, **over}.items() if v is not ...}


def test_webhook_answers_every_body_without_a_5xx_and_stores_only_ours(engine, tmp_path):
    with notification_loop(engine, tmp_path, worker=False, listings=10) as loop:
        hook = loop.url + WEBHOOK
        before = {
            k: _sample(*k)
            for k in [
                ("malformed",),
                ("foreign_app", "orders_v2"),
                ("unknown_user", "orders_v2"),
                ("stored", "orders_v2"),
                ("duplicate", "orders_v2"),
                ("stored", "questions"),
                ("stored", "other"),
            ]
        }
        not_json = httpx.post(hook, content=b"{not json", headers={"content-type": "text/plain"})
        assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "invalid_json"
        huge = httpx.post(hook, content=b"[" + b"1," * 600_000 + b"1]")
        assert huge.status_code == 413 and "error" in huge.json()
        deep = httpx.post(hook, content=b'{"a":' * 3000 + b"1" + b"}" * 3000)  # ~18 KB
        assert deep.status_code == 400 and deep.json()["error"]["code"] == "invalid_json"
        answers = [
            httpx.post(hook, json=b)
            for b in (
                [1, 2, 3],  # JSON, not an object
                _body(resource=...),  # a needed field missing
                _body(user_id="abc"),
                _body(user_id=10**30),  # no database stores it
                _body(application_id="999"),  # another app's
                _body(application_id=...),  # no app named
                _body(user_id=55),  # a user we do not know
            )
        ]
        assert [r.status_code for r in answers] == [200] * 7
        assert _stored(engine) == []  # nothing of those was stored
        ours = _body(user_id="123456789", attempts=10**20)  # a string, as in the reference
        assert httpx.post(hook, json=ours).json() == {"status": "stored"}
        assert httpx.post(hook, json=ours).json() == {"status": "duplicate"}  # ML's retry
        other = _body(topic="questions", resource="/questions/5036111111", id=None)
        other["id"] = other.pop("_id")  # `id` instead of `_id`
        assert httpx.post(hook, json=other).json() == {"status": "stored"}
        made_up = _body(topic="x" * 50)
        assert httpx.post(hook, json=made_up).json() == {"status": "stored"}
        rows = _stored(engine)
        assert [(r.notification_id, r.ml_user_id, r.topic) for r in rows] == [
            (ours["_id"], 123456789, "orders_v2"),
            (other["id"], 123456789, "questions"),
            (made_up["_id"], 123456789, "x" * 50),
        ]
        with engine.connect() as conn:
            queued = conn.execute(select(jobs).where(jobs.c.type == "ml_notifications")).all()
        assert len(queued) == 1 and queued[0].tenant_id == "t1"  # one job for the burst
        after = {k: _sample(*k) for k in before}
        assert {k: after[k] - before[k] for k in before} == {
            ("malformed",): 6,  # not JSON, too deep, [1, 2, 3], no resource, "abc", 10**30
            ("foreign_app", "orders_v2"): 2,
            ("unknown_user", "orders_v2"): 1,
            ("stored", "orders_v2"): 1,
            ("duplicate", "orders_v2"): 1,
            ("stored", "questions"): 1,
            ("stored", "other"): 1,  # a free-text topic never becomes a label
        }


def test_source_ip_allow_list_is_off_by_default_and_refuses_others_when_set(engine, tmp_path):
    with notification_loop(engine, tmp_path, worker=False, listings=10) as loop:
        assert httpx.post(loop.url + WEBHOOK, json=_body()).status_code == 200
        settings = loop.settings.model_copy(
            update={"ml_notification_ips": "54.88.218.97,10.0.0.0/8"}
        )
        with serving(settings, engine, loop.registry) as url:
            refused = httpx.post(url + WEBHOOK, json=_body())
            assert refused.status_code == 403
        settings = loop.settings.model_copy(update={"ml_notification_ips": "127.0.0.0/8"})
        with serving(settings, engine, loop.registry) as url:
            assert httpx.post(url + WEBHOOK, json=_body()).json() == {"status": "stored"}


def _sync_and_wait(loop) -> dict:
    """A full sync of the same sandbox state, with the rebuild it queues."""
    q = Queue(loop.engine, loop.registry)
    jid = q.enqueue("sync_mercadolivre", {"tenantId": "t1"}, tenant_id="t1").id
    done = wait_status(loop.engine, jid, "completed", "failed", timeout=120)
    assert done["status"] == "completed", done["last_error"]
    for rid in done["result"]["rebuildJobIds"]:
        assert wait_status(loop.engine, rid, "completed", "failed", timeout=120)["status"] == (
            "completed"
        )
    return done


def _changes(loop, sales: int, cancels: int, edits: int) -> list[int]:
    """Sales, cancellations of synced orders and item edits: each one notified."""
    with loop.engine.connect() as conn:
        paid = (
            conn.execute(
                select(orders.c.external_id)
                .where(orders.c.status == "paid")
                .order_by(orders.c.external_id)
                .limit(cancels)
            )
            .scalars()
            .all()
        )
    items = [f"MLB{3000000000 + (i * 7) % 40}" for i in range(sales)]
    half = sales // 2
    sold = loop.sandbox("POST", "/_sandbox/sell", json={"items": items[:half]})["ids"]
    for i, item in enumerate(items[:edits]):  # later sales of these are at the new price
        loop.sandbox("POST", "/_sandbox/edit-item", json={"id": item, "price": 10.0 + i})
    sold += loop.sandbox("POST", "/_sandbox/sell", json={"items": items[half:]})["ids"]
    loop.sandbox("POST", "/_sandbox/change-orders", json={"ids": [int(x) for x in paid]})
    return sold


def _settled(loop, expected: int):
    def done():
        stats = loop.sandbox("GET", "/_sandbox/notifications")
        finished = stats["delivered"] + stats["dropped"] + stats["exhausted"]
        return stats["created"] >= expected and not stats["inflight"] and finished and stats

    stats = wait_until(done, timeout=120, message="the emitter to finish")
    made = stats["created"]
    assert made == expected, f"the sandbox notified {made} changes, the test made {expected}"
    wait_until(lambda: loop.unprocessed() == 0, timeout=120, message="all processed")
    return stats


def test_a_thousand_notifications_with_duplicates_and_disorder_equal_a_full_sync(engine, tmp_path):
    with notification_loop(engine, tmp_path, listings=60, orders_per_day=40) as loop:
        _still(loop.sb)
        _sync_and_wait(loop)
        loop.emit(duplicate_rate=0.3, out_of_order_rate=0.1, seed=3)
        sold = _changes(loop, sales=700, cancels=50, edits=20)
        stats = _settled(loop, expected=770)
        assert stats["posts"] >= 950 and stats["duplicates"] > 150
        assert stats["out_of_order"] > 40 and stats["dropped"] == 0
        fetches = loop.sandbox("GET", "/_sandbox/order-fetches")
        # Each order fetched once per distinct change, however often it was notified.
        assert {fetches.get(str(oid)) for oid in sold} == {1}
        assert len(fetches) == 750 and set(fetches.values()) == {1}
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(ml_notifications)).scalar() == 770
        via_notifications = contents(engine)
        _sync_and_wait(loop)
        assert contents(engine) == via_notifications


def test_dropped_notifications_are_recovered_by_reconciliation(engine, tmp_path):
    with notification_loop(engine, tmp_path, listings=40, orders_per_day=40) as loop:
        _still(loop.sb)
        _sync_and_wait(loop)
        loop.emit(drop_rate=0.05, seed=11)
        sold = _changes(loop, sales=200, cancels=10, edits=5)
        stats = _settled(loop, expected=215)
        assert stats["dropped"] > 0
        with engine.connect() as conn:
            stored = set(conn.execute(select(orders.c.external_id)).scalars())
        assert len({str(s) for s in sold} - stored) > 0  # some sales were never notified
        old = datetime.now(UTC) - timedelta(days=8)  # processed long ago: forgotten
        with engine.begin() as conn:
            conn.execute(
                ml_notifications.insert(),
                [
                    {
                        "notification_id": f"old-{k}",
                        "tenant_id": "t1",
                        "ml_user_id": 123456789,
                        "topic": "orders_v2",
                        "resource": "/orders/1",
                        "received_at": old,
                        "processed_at": old,
                        "outcome": "processed",
                    }
                    for k in range(2)
                ],
            )
        jid = Queue(engine, loop.registry).enqueue("ml_missed_feeds").id
        done = wait_status(engine, jid, "completed", "failed", timeout=60)
        assert done["status"] == "completed" and done["result"]["stored"] == stats["dropped"]
        assert done["result"]["pruned"] == 2
        with engine.connect() as conn:  # marked as recovered: "tempo real" ignores them
            recovered = conn.execute(
                select(func.count()).where(ml_notifications.c.attempts == RECOVERED_ATTEMPTS)
            ).scalar()
        assert recovered == stats["dropped"]
        wait_until(lambda: loop.unprocessed() == 0, timeout=60, message="all processed")
        with engine.connect() as conn:
            stored = set(conn.execute(select(orders.c.external_id)).scalars())
        assert {str(s) for s in sold} <= stored
        via_notifications = contents(engine)
        _sync_and_wait(loop)
        assert contents(engine) == via_notifications


@contextlib.contextmanager
def _app_of_three_sellers(engine, tmp_path):
    """Three sandbox sellers of one application behind one address (the simulation's hub:
    one `/missed_feeds` list for the app); sellers 1 and 2 are connected as t1 and t2,
    seller 3 is not (a seller who never connected, or left)."""
    from superseller.simulation.hub import Hub, start_hub

    hub = start_hub(Hub())
    try:
        for n in (1, 2, 3):
            hub.hub.add(
                SellerSpec(
                    seed=n, user_id=n, listings=20, orders_per_day=5, start=datetime.now(UTC)
                ),
                None,
            )
        settings = settings_for(hub, tmp_path)
        for n in (1, 2):
            hub.hub.connecting = n
            connected_tenant(engine, settings, f"t{n}")
        yield hub, settings
    finally:
        hub.stop()


def _drop_sales(hub, user: int, sales: int) -> dict:
    """`sales` sales of a seller whose notifications are all dropped (only /missed_feeds
    lists them); returns its emitter's counts once every one is dropped."""

    def call(method: str, path: str, **kw):
        r = httpx.request(
            method, hub.url + path, headers={"X-Sandbox-User": str(user)}, timeout=30, **kw
        )
        assert r.status_code == 200, r.text
        return r.json()

    call(
        "POST",
        "/_sandbox/notifications",
        json={"callback_url": "http://127.0.0.1:9/x", "drop_rate": 1.0, "tick_s": 0.05},
    )
    ids = call("POST", "/_sandbox/sell", json={"items": ["MLB3000000001"] * sales})["ids"]
    stats = wait_until(
        lambda: (s := call("GET", "/_sandbox/notifications"))["dropped"] >= sales and s,
        timeout=30,
        message="the seller's notifications to be dropped",
    )
    call("POST", "/_sandbox/notifications", json={"callback_url": None})  # stop: counts fixed
    return {"ids": {str(i) for i in ids}, "dropped": stats["dropped"]}


def _tenant_orders(engine, tid: str) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(select(orders.c.external_id).where(orders.c.tenant_id == tid)).scalars()
        )


def test_one_read_of_the_apps_missed_feed_gives_each_seller_its_own(engine, tmp_path):
    with _app_of_three_sellers(engine, tmp_path) as (hub, settings):
        registry = build_registry(settings)
        # The sandbox numbers its on-demand sales alike for every seller: the same
        # resource `/orders/N` for three sellers, told apart only by the user_id.
        s1, s2, s3 = (_drop_sales(hub, n, k) for n, k in ((1, 3), (2, 4), (3, 5)))
        with running_worker(engine, registry):
            jid = Queue(engine, registry).enqueue("ml_missed_feeds").id
            done = wait_status(engine, jid, "completed", "failed", timeout=60)["result"]
            # One page per topic for the whole application, not a read per seller.
            assert done["requests"] == 2 and done["errors"] == []
            assert done["stored"] == s1["dropped"] + s2["dropped"]
            assert done["notConnected"] == s3["dropped"]  # nobody to fetch them for
            with engine.connect() as conn:
                per_tenant = dict(
                    conn.execute(
                        select(ml_notifications.c.tenant_id, func.count()).group_by(
                            ml_notifications.c.tenant_id
                        )
                    ).all()
                )
            assert per_tenant == {"t1": s1["dropped"], "t2": s2["dropped"]}
            wait_until(
                lambda: (
                    _tenant_orders(engine, "t1") >= s1["ids"]
                    and _tenant_orders(engine, "t2") >= s2["ids"]
                ),
                timeout=60,
                message="each tenant's missed sales fetched with its own token",
            )
            # Read again: the same list (ML keeps it 2 days) stores nothing new.
            jid = Queue(engine, registry).enqueue("ml_missed_feeds").id
            again = wait_status(engine, jid, "completed", "failed", timeout=60)["result"]
            assert again["stored"] == 0 and again["requests"] == 2

            # The first seller revokes the app: its token cannot read the app's list any
            # more, the next connected seller's does, and the first is flagged.
            revoked = hub.hub.sellers[1][0]
            with revoked.lock:
                revoked.revoked.add(1)
            s2b = _drop_sales(hub, 2, 2)
            jid = Queue(engine, registry).enqueue("ml_missed_feeds").id
            later = wait_status(engine, jid, "completed", "failed", timeout=60)["result"]
            assert later["errors"] == [] and later["stored"] == s2b["dropped"]
            with engine.connect() as conn:
                status = dict(
                    conn.execute(
                        select(marketplace_accounts.c.tenant_id, marketplace_accounts.c.status)
                    ).all()
                )
            assert status == {"t1": "reauth_required", "t2": "connected"}
            wait_until(
                lambda: _tenant_orders(engine, "t2") >= s2["ids"] | s2b["ids"],
                timeout=60,
                message="the second seller's later sales",
            )
        assert _tenant_orders(engine, "t1").isdisjoint(s2b["ids"] - s1["ids"])


@contextlib.contextmanager
def _outage(backend: str, db_url: str):
    """(engine for the API, a context in which its database is unreachable)."""
    if backend == "postgresql":
        proxy = FaultProxy.for_url(db_url)
        api_engine = make_engine(proxy.url(db_url))

        @contextlib.contextmanager
        def down():
            proxy.cut()
            try:
                yield
            finally:
                proxy.restore()

        try:
            yield api_engine, down
        finally:
            api_engine.dispose()
            proxy.close()
        return

    @contextlib.contextmanager
    def locked():  # SQLite: another connection holds the write lock
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=60, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()

    yield None, locked


def test_database_unreachable_answers_503_so_mercado_livre_retries_and_nothing_is_lost(
    engine, backend, db_url, tmp_path
):
    with sandbox(listings=10) as sb:
        _still(sb)  # exactly two notifications: the test's body and its sale's
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        registry = build_registry(settings)
        with _outage(backend, db_url) as (api_engine, down):
            with serving(settings, api_engine or engine, registry) as url:
                loop = Loop(sb, settings, registry, url, engine)
                loop.emit(retry_scale=0.005)  # retries after 0.3 s, 0.6 s, 1.5 s, 3 s...
                body = _body()
                with down():
                    r = httpx.post(url + WEBHOOK, json=body, timeout=30)
                    assert r.status_code == 503
                    assert r.json()["error"]["code"] == "database_unavailable"
                    loop.sandbox("POST", "/_sandbox/sell", json={})
                    wait_until(
                        lambda: (
                            loop.sandbox("GET", "/_sandbox/notifications")["failed_attempts"] >= 2
                        ),
                        timeout=30,
                        message="the emitter's deliveries to fail",
                    )
                assert _stored(engine) == []
                # Mercado Livre's retry, once the database is back, is stored.
                assert httpx.post(url + WEBHOOK, json=body).json() == {"status": "stored"}
                stats = wait_until(
                    lambda: (
                        (s := loop.sandbox("GET", "/_sandbox/notifications"))["delivered"] and s
                    ),
                    timeout=30,
                    message="the emitter's retry to be delivered",
                )
                assert stats["exhausted"] == 0
        assert {r.topic for r in _stored(engine)} == {"orders_v2"} and len(_stored(engine)) == 2


def test_an_item_notification_re_scores_that_listing_only(engine, tmp_path):
    with notification_loop(engine, tmp_path, listings=20) as loop:
        _sync_and_wait(loop)
        wait_until(lambda: _scored(engine), timeout=60, message="the sync's scoring")
        with engine.begin() as conn:  # forget every score: what gets one was re-scored
            conn.execute(update(listings).values(score=None, score_breakdown=None))
        loop.emit()
        loop.sandbox("POST", "/_sandbox/edit-item", json={"id": "MLB3000000004", "price": 12.5})
        wait_until(
            lambda: loop.unprocessed() == 0 and _scored(engine),
            timeout=60,
            message="the item notification processed",
        )
        assert _scored(engine) == ["MLB3000000004"]
        with engine.connect() as conn:
            queued = conn.execute(
                select(func.count()).select_from(jobs).where(jobs.c.type == "score_listings")
            ).scalar()
        assert queued == 1  # the sync's: the notification scored its item itself


def _scored(engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(listings.c.external_id)
                .where(listings.c.score.is_not(None))
                .order_by(listings.c.external_id)
            ).scalars()
        )
