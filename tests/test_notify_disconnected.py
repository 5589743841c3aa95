"""A store disconnected while its notifications wait: the processing job ends skipped
(as the sync does for a store without a connected account), its notifications marked
`not_connected`, not a failed job in the operator's console. On both databases."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select

from superseller.config import Settings
from superseller.db.schema import ml_notifications
from superseller.jobs.queue import Queue
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.inproc import running_worker, wait_status


def test_notifications_of_a_disconnected_store_end_skipped_not_failed(engine, tmp_path):
    t = mk.tenant(engine)  # never connected, or its account deleted by a disconnect
    with engine.begin() as conn:
        conn.execute(
            insert(ml_notifications).values(
                notification_id="n-1",
                tenant_id=t,
                ml_user_id=1,
                topic="orders_v2",
                resource="/orders/2000001",
                received_at=datetime.now(UTC),
            )
        )
    registry = build_registry(Settings(data_dir=tmp_path))
    job = Queue(engine, registry).enqueue("ml_notifications", {"tenantId": t}, tenant_id=t)
    with running_worker(engine, registry):
        done = wait_status(engine, job.id, "completed", "failed", "cancelled")
    assert done["status"] == "completed", done["last_error"]
    assert done["result"]["skipped"] == "not_connected"
    assert done["result"]["notConnected"] == 1
    with engine.connect() as conn:
        row = conn.execute(
            select(ml_notifications.c.outcome, ml_notifications.c.processed_at)
        ).one()
    assert row.outcome == "not_connected" and row.processed_at is not None


def test_a_store_whose_id_reads_reauth_required_keeps_its_notifications(engine, tmp_path):
    """`reauth_required` is a valid tenant id: a connected store of that name is a seller
    of ours like any other, its notifications stored, not answered as if it had to
    reconnect (the marker for that case is not a string)."""
    from superseller.jobs.clock import SystemClock
    from superseller.mercadolivre.notifications import accept, store_received

    t = mk.tenant(engine, "reauth_required")
    mk.account(engine, t, ml_user_id=77)
    note = accept(
        "123",
        {
            "_id": "n-77",
            "resource": "/orders/2000077",
            "user_id": 77,
            "topic": "orders_v2",
            "application_id": 123,
            "attempts": 1,
            "sent": "2026-01-10T10:00:00.000Z",
            "received": "2026-01-10T10:00:00.000Z",
        },
    )
    registry = build_registry(Settings(data_dir=tmp_path))
    assert store_received(engine, registry, SystemClock(), [note], delay_s=0) == ["stored"]
    with engine.connect() as conn:
        assert conn.execute(select(ml_notifications.c.tenant_id)).scalars().all() == [t]
