"""Minutes-fresh numbers that stay honest: "tempo real" judged from webhook deliveries
only, and the "até" labels following what notifications applied; on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update

from superseller.db.schema import ml_notifications, orders, tenants
from superseller.jobs.queue import Queue
from superseller.mercadolivre.notification_jobs import GIVE_UP_AFTER
from superseller.metrics.freshness import RECOVERED_ATTEMPTS, tenant_freshness
from superseller.metrics.queries import today_so_far
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.inproc import job, running_worker, wait_status
from tests.support.ml import connected_tenant, sandbox, settings_for
from tests.support.waiting import wait_until

T0 = datetime(2026, 1, 20, 15, 0, tzinfo=UTC)  # 12:00 in São Paulo


def _note(engine, t, nid, *, received, attempts=1, sent=None, processed=None, outcome=None):
    with engine.begin() as conn:
        conn.execute(
            ml_notifications.insert().values(
                notification_id=nid,
                tenant_id=t,
                ml_user_id=123456789,
                topic="orders_v2",
                resource=f"/orders/{nid}",
                attempts=attempts,
                sent_at=sent or received,
                received_at=received,
                processed_at=processed,
                outcome=outcome,
            )
        )


def _shop(engine) -> str:
    t = mk.tenant(engine)
    mk.account(engine, t, ml_user_id=123456789)
    return t


def test_recovered_notifications_never_count_as_tempo_real(engine):
    """A webhook broken since 12:00 while reconciliation recovers one sale an hour: the
    recoveries do not keep "tempo real" alive, and one sent after the last delivery says
    "parado" at once, not an hour later."""
    t = _shop(engine)
    _note(engine, t, "d1", received=T0)
    # ML sent it 20 min after our last delivery; /missed_feeds gave it back 10 min later
    _note(
        engine,
        t,
        "r1",
        received=T0 + timedelta(minutes=30),
        sent=T0 + timedelta(minutes=20),
        attempts=RECOVERED_ATTEMPTS,
    )
    live = tenant_freshness(engine, t, T0 + timedelta(minutes=31))["realtime"]
    assert live["state"] == "stopped"
    assert live["message"] == "Tempo real parado desde 20/01 às 12:00"
    # hours later, a recovery every hour still does not make it flow again
    for h in (1, 2, 3):
        _note(
            engine,
            t,
            f"r{h + 1}",
            received=T0 + timedelta(hours=h, minutes=5),
            sent=T0 + timedelta(hours=h),
            attempts=RECOVERED_ATTEMPTS,
        )
    later = tenant_freshness(engine, t, T0 + timedelta(hours=3, minutes=6))["realtime"]
    assert later["message"] == "Tempo real parado desde 20/01 às 12:00"
    # the webhook is back: a delivery after the last missed one flows again
    _note(engine, t, "d2", received=T0 + timedelta(hours=3, minutes=10))
    back = tenant_freshness(engine, t, T0 + timedelta(hours=3, minutes=11))["realtime"]
    assert back["state"] == "flowing"


def test_an_old_gap_already_followed_by_deliveries_is_not_an_alarm(engine):
    """One notification lost at 11:50 and recovered at 12:10, with deliveries at 12:00
    and after: the webhook works, "tempo real" stays."""
    t = _shop(engine)
    _note(engine, t, "d1", received=T0)
    _note(
        engine,
        t,
        "r1",
        received=T0 + timedelta(minutes=10),
        sent=T0 - timedelta(minutes=10),
        attempts=RECOVERED_ATTEMPTS,
    )
    live = tenant_freshness(engine, t, T0 + timedelta(minutes=11))["realtime"]
    assert live["state"] == "flowing"


def test_labels_follow_what_notifications_applied_while_they_flow(engine):
    """Synced and rebuilt at 12:00; a sale notified and applied at 12:20: "Hoje até" and
    "Atualizado até" say 12:20 while notifications flow, and fall back to the rebuild's
    time when they stopped (then the numbers may miss sales)."""
    t = _shop(engine)
    with engine.begin() as conn:
        conn.execute(
            update(tenants)
            .where(tenants.c.id == t)
            .values(last_sync_ok_at=T0, last_rebuild_ok_at=T0)
        )
    applied = T0 + timedelta(minutes=20)
    _note(
        engine,
        t,
        "d1",
        received=applied - timedelta(seconds=5),
        processed=applied,
        outcome="processed",
    )
    now = applied + timedelta(minutes=1)
    tenant = {
        "id": t,
        "timezone": "America/Sao_Paulo",
        "last_sync_ok_at": T0,
        "last_rebuild_ok_at": T0,
    }
    assert tenant_freshness(engine, t, now)["updatedUntil"] == "20/01 às 12:20"
    assert today_so_far(engine, tenant, now)["asOf"] == "12:20"
    later = T0 + timedelta(hours=3)  # no delivery for over an hour: stopped
    assert tenant_freshness(engine, t, later)["updatedUntil"] == "20/01 às 12:00"
    assert today_so_far(engine, tenant, later)["asOf"] == "12:00"


def _outcomes(engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                ml_notifications.c.resource,
                ml_notifications.c.outcome,
                ml_notifications.c.processed_at,
            )
        ).all()
    return {r.resource: (r.outcome, r.processed_at is not None) for r in rows}


def test_an_order_ml_cannot_serve_does_not_freeze_the_others(engine, tmp_path):
    """An order Mercado Livre answers 500 for (the demo's) while it serves the rest: the
    sale notified with it is applied, the bad one waits, and after GIVE_UP_AFTER jobs it
    is given up (`failed`) instead of failing every job for ever. Alone it is counted too
    (ML answers, so the order is what fails); when ML answers nothing the job fails and
    nothing is counted (it is retried as a whole)."""
    with sandbox(listings=20) as sb:
        settings = settings_for(sb, tmp_path, ml_max_tries=2)
        user = connected_tenant(engine, settings)
        registry = build_registry(settings)
        control = httpx.Client(base_url=sb.url, timeout=30)
        sale = control.post("/_sandbox/sell", json={}).json()["id"]
        bad = 2000000001000007  # the fault answers 500 for it whoever asks
        assert control.post("/_sandbox/faults", json={"order_fail_ids": [bad]}).status_code == 200
        now = datetime.now(UTC)

        def notify(nid: str, oid: int) -> None:
            with engine.begin() as conn:
                conn.execute(
                    ml_notifications.insert().values(
                        notification_id=nid,
                        tenant_id="t1",
                        ml_user_id=user,
                        topic="orders_v2",
                        resource=f"/orders/{oid}",
                        attempts=1,
                        sent_at=now,
                        received_at=now,
                    )
                )

        def run() -> dict:
            jid = Queue(engine, registry).enqueue("ml_notifications", {"tenantId": "t1"}).id
            return wait_status(engine, jid, "completed", "failed", timeout=60)

        notify("n-bad", bad)
        notify("n-sale", sale)
        with running_worker(engine, registry):
            first = run()
            assert first["status"] == "completed", first["last_error"]
            assert first["result"]["orders"] == 1 and first["result"]["fetchFailed"] == 1
            with engine.connect() as conn:
                assert conn.execute(
                    select(orders.c.id).where(orders.c.external_id == str(sale))
                ).first()
            assert _outcomes(engine)[f"/orders/{bad}"] == ("fetch_failed:1", False)
            assert _outcomes(engine)[f"/orders/{sale}"] == ("processed", True)
            for _ in range(2, GIVE_UP_AFTER + 1):  # alone now, ML up: still counted
                done = run()
                assert done["status"] == "completed", done["last_error"]
            assert _outcomes(engine)[f"/orders/{bad}"] == ("failed", True)
            assert done["result"]["failed"] == 1
            # ML down: every request fails; the job fails (to be retried), nothing counted
            notify("n-down", sale)
            control.post("/_sandbox/faults", json={"rate_500": 1.0})
            jid = Queue(engine, registry).enqueue("ml_notifications", {"tenantId": "t1"}).id
            down = wait_until(
                lambda: (j := job(engine, jid))["last_error"] and j["status"] != "running" and j,
                timeout=60,
                message="the job's first attempt to fail",
            )  # not while a retry runs: last_error stays from the attempt before
            assert down["status"] in ("pending", "failed")  # to be retried as today
            with engine.connect() as conn:
                row = conn.execute(
                    select(ml_notifications.c.outcome, ml_notifications.c.processed_at).where(
                        ml_notifications.c.notification_id == "n-down"
                    )
                ).one()
            assert row.outcome is None and row.processed_at is None
            control.post("/_sandbox/faults", json={})
