"""What the webhook does per notification, without HTTP: the tenant it finds, and the one
processing job a burst joins; on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update

from superseller.config import Settings
from superseller.db.schema import jobs, ml_notifications
from superseller.jobs.clock import SystemClock
from superseller.mercadolivre.notifications import PROCESS_TYPE, receive
from superseller.wiring import build_registry
from tests.support import marketplace as mk

APP = "app-1"


def _send(engine, registry, user_id: int) -> str:
    body = {
        "_id": str(uuid.uuid4()),
        "resource": "/orders/2000000000000001",
        "user_id": user_id,
        "topic": "orders_v2",
        "application_id": APP,
    }
    return receive(engine, registry, SystemClock(), APP, body, 1.0)


def _jobs(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(
            select(jobs.c.unique_key, jobs.c.status)
            .where(jobs.c.type == PROCESS_TYPE)
            .order_by(jobs.c.id)
        ).all()


def test_a_seller_who_just_connected_is_served_at_once(engine, tmp_path):
    registry = build_registry(Settings(data_dir=tmp_path, ml_client_id=APP))
    t = mk.tenant(engine, "w1")
    assert _send(engine, registry, 4242) == "unknown_user"  # not remembered as unknown
    mk.account(engine, t, "connected", 4242)
    assert _send(engine, registry, 4242) == "stored"
    assert _jobs(engine) == [("mlnotify:w1", "pending")]


def test_a_burst_joins_the_waiting_job_and_one_running_gets_a_successor(engine, tmp_path):
    registry = build_registry(Settings(data_dir=tmp_path, ml_client_id=APP))
    t = mk.tenant(engine, "w2")
    mk.account(engine, t, "connected", 5151)
    assert [_send(engine, registry, 5151) for _ in range(5)] == ["stored"] * 5
    assert _jobs(engine) == [("mlnotify:w2", "pending")]

    # The job starts (it may already have read what is stored): what arrives now queues a
    # second, which the next arrivals join.
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.type == PROCESS_TYPE).values(status="running"))
    assert [_send(engine, registry, 5151) for _ in range(3)] == ["stored"] * 3
    assert _jobs(engine) == [("mlnotify:w2", "running"), ("mlnotify:w2:next", "pending")]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ml_notifications)).scalar() == 8
