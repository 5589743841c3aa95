"""Minutes-fresh numbers that stay honest: "tempo real" judged from webhook deliveries
only, and the "até" labels following what notifications applied; on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from superseller.db.schema import ml_notifications, tenants
from superseller.metrics.freshness import RECOVERED_ATTEMPTS, tenant_freshness
from superseller.metrics.queries import today_so_far
from tests.support import marketplace as mk

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
