"""What the webhook does per notification: the tenant it finds, the one processing job a
burst joins, and notifications arriving together written in one transaction, each
answered only after it committed; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import event, func, select, update
from sqlalchemy.exc import OperationalError

from superseller.api.app import create_app
from superseller.api.deps import Services
from superseller.config import Settings
from superseller.db.schema import jobs, ml_notifications
from superseller.jobs.clock import SystemClock
from superseller.jobs.dbwatch import DB_ERRORS
from superseller.mercadolivre.group_commit import GroupCommit
from superseller.mercadolivre.notifications import PROCESS_TYPE, receive, store_received
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import serving_app
from tests.support.waiting import wait_until

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


# --- Group commit: notifications that arrive together are written together -------------


class Gate:
    """Holds the writer's first write until released, counting who waits behind it."""

    def __init__(self, write):
        self.write = write
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, notes):
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            assert self.release.wait(30), "the test never released the gate"
        return self.write(notes)


@contextlib.contextmanager
def _webhook(engine, tmp_path, user_id: int):
    """The API over real HTTP with its writer's first write held at a gate."""
    settings = Settings(data_dir=tmp_path, ml_client_id=APP)
    registry = build_registry(settings)
    mk.account(engine, mk.tenant(engine, "g1"), "connected", user_id)
    svc = Services(settings=settings, engine=engine, registry=registry, clock=SystemClock())
    app = create_app(svc)
    gate = Gate(lambda notes: store_received(engine, registry, svc.clock, notes, 1.0))
    writer = app.state.ml_notification_writer = GroupCommit(gate, retry_alone_unless=DB_ERRORS)
    with serving_app(app) as url, ThreadPoolExecutor(max_workers=32) as pool:
        yield url, gate, writer, pool


def _post(url, body):
    return httpx.post(url + "/api/v1/mercadolivre/notifications", json=body, timeout=30)


def _stored_ids(engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(ml_notifications.c.notification_id)).scalars())


def test_concurrent_notifications_share_a_transaction_and_each_is_answered_after_its_commit(
    engine, tmp_path
):
    with _webhook(engine, tmp_path, 6161) as (url, gate, writer, pool):
        first = pool.submit(_post, url, _note(6161))
        assert gate.entered.wait(30)
        bodies = [_note(6161) for _ in range(20)]
        bodies.append(dict(bodies[0]))  # the same _id twice in one batch: stored once
        answers = [pool.submit(_post, url, b) for b in bodies]
        wait_until(lambda: writer.waiting == len(bodies), message="the posts to queue up")
        # Nothing is answered before its transaction committed.
        assert not first.done() and not any(a.done() for a in answers)
        assert _stored_ids(engine) == []
        gate.release.set()
        assert first.result().json() == {"status": "stored"}
        outcomes = [a.result() for a in answers]
        assert [r.status_code for r in outcomes] == [200] * len(bodies)
        statuses = [r.json()["status"] for r in outcomes]
        assert statuses[1:20] == ["stored"] * 19
        # The two posts of one _id race to the server: whichever arrives first is stored.
        assert sorted([statuses[0], statuses[20]]) == ["duplicate", "stored"]
        assert writer.batches == 2  # 22 posts, two transactions
        assert _stored_ids(engine) == sorted(b["_id"] for b in [first_body(first)] + bodies[:20])
        assert _jobs(engine) == [("mlnotify:g1", "pending")]


def test_a_database_failure_mid_batch_answers_every_member_503_and_stores_none_of_them(
    engine, tmp_path
):
    with _webhook(engine, tmp_path, 7171) as (url, gate, writer, pool):
        first = pool.submit(_post, url, _note(7171))
        assert gate.entered.wait(30)
        bodies = [_note(7171) for _ in range(10)]
        answers = [pool.submit(_post, url, b) for b in bodies]
        wait_until(lambda: writer.waiting == len(bodies), message="the posts to queue up")
        inserts = []

        def drop_after_the_batch_insert(conn, cursor, statement, *_):
            # The batch's rows are inserted, then the connection drops (its job's turn).
            if len(inserts) == 2:
                inserts.append(statement)
                raise OperationalError(statement, None, Exception("connection lost"))
            if statement.lstrip().upper().startswith("INSERT INTO ML_NOTIFICATIONS"):
                inserts.append(statement)  # the first post's, then the batch's

        event.listen(engine, "before_cursor_execute", drop_after_the_batch_insert)
        try:
            gate.release.set()
            assert first.result().json() == {"status": "stored"}
            failed = [a.result() for a in answers]
        finally:
            event.remove(engine, "before_cursor_execute", drop_after_the_batch_insert)
        assert len(inserts) == 3  # the failure came after the batch's insert
        assert [r.status_code for r in failed] == [503] * len(bodies)
        assert {r.json()["error"]["code"] for r in failed} == {"database_unavailable"}
        # The rows inserted before the failure were rolled back with it.
        assert _stored_ids(engine) == [first_body(first)["_id"]]
        # Mercado Livre's retries are stored.
        again = [f.result() for f in [pool.submit(_post, url, b) for b in bodies]]
        assert [r.json()["status"] for r in again] == ["stored"] * len(bodies)
        assert len(_stored_ids(engine)) == 1 + len(bodies)


def test_a_bad_item_fails_alone_and_the_rest_of_its_batch_is_written():
    written: list[list[str]] = []
    release = threading.Event()

    def write(items: list[str]) -> list[str]:
        if items == ["hold"]:
            release.wait(30)
        if "bad" in items:
            raise ValueError("a bug or bad data, not the database")
        written.append(items)
        return [i.upper() for i in items]

    async def scenario():
        writer = GroupCommit(write, retry_alone_unless=DB_ERRORS)
        hold = asyncio.ensure_future(writer.submit("hold"))
        while writer.batches == 0:
            await asyncio.sleep(0)
        rest = [asyncio.ensure_future(writer.submit(i)) for i in ("a", "bad", "b")]
        while writer.waiting < 3:
            await asyncio.sleep(0)
        release.set()
        return await asyncio.gather(hold, *rest, return_exceptions=True)

    hold, a, bad, b = asyncio.run(scenario())
    assert (hold, a, b) == ("HOLD", "A", "B") and isinstance(bad, ValueError)
    assert written == [["hold"], ["a"], ["b"]]  # the batch failed whole, then one by one


def first_body(future) -> dict:
    return json.loads(future.result().request.content)


def _note(user_id: int) -> dict:
    return {
        "_id": str(uuid.uuid4()),
        "resource": "/items/MLB1",
        "user_id": user_id,
        "topic": "items",
        "application_id": APP,
    }


def test_a_sender_hanging_up_mid_body_is_counted_not_a_traceback(engine, tmp_path):
    """Mercado Livre (and the sandbox's emitter) gives up on a slow answer and disconnects;
    each hang-up is one counter tick, not an 'Exception in ASGI application' in the log."""
    from superseller.mercadolivre.notifications import RECEIVED

    errors: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.ERROR:
                errors.append(record)

    def hung_up() -> float:
        return RECEIVED.labels("disconnected", "")._value.get()

    keep = Keep()
    server_log = logging.getLogger("uvicorn.error")
    server_log.addHandler(keep)
    before = hung_up()
    try:
        with _webhook(engine, tmp_path, 7171) as (url, gate, _writer, _pool):
            gate.release.set()  # no write is held here
            host, port = url.removeprefix("http://").split(":")
            for _ in range(3):
                with socket.create_connection((host, int(port)), timeout=10) as s:
                    s.sendall(
                        b"POST /api/v1/mercadolivre/notifications HTTP/1.1\r\n"
                        b"Host: x\r\nContent-Type: application/json\r\n"
                        b'Content-Length: 500\r\n\r\n{"_id": "half'
                    )
            wait_until(lambda: hung_up() >= before + 3, message="the hang-ups to be counted")
            # The webhook still answers the next sender.
            assert _post(url, _note(7171)).json() == {"status": "stored"}
    finally:
        server_log.removeHandler(keep)
    assert [r.getMessage() for r in errors] == []
