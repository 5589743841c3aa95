"""A running sync obeys Cancel: it stops at its next request once the worker's heartbeat
relays the cancel, keeps what it wrote and ends `cancelled` (real HTTP against the sandbox,
SQLite and PostgreSQL). And the client's slots hand a retry the next free one, before the
first tries waiting (mercadolivre/slots.py)."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import func, select

from superseller.db.schema import listings, sync_checkpoints, tenants
from superseller.jobs.admin import JobAdmin
from superseller.jobs.queue import Queue
from superseller.mercadolivre.slots import SlotGate
from superseller.wiring import build_registry
from tests.support.inproc import running_worker, wait_status
from tests.support.ml import connected_tenant, sandbox, settings_for
from tests.support.waiting import wait_until

LISTINGS = 1500
RATE = 100  # requests per second: the visits step alone takes ~15 s


def _visits_asked(sb) -> int:
    log = httpx.get(f"{sb.url}/_sandbox/request-log").json()["requests"]
    return sum(1 for _t, path, _q in log if path.endswith("/visits/time_window"))


def test_a_sync_cancelled_mid_visits_stops_soon_and_keeps_what_it_wrote(engine, tmp_path):
    with sandbox(listings=LISTINGS, history_days=2, orders_per_day=4) as sb:
        settings = settings_for(sb, tmp_path).model_copy(update={"ml_requests_per_s": RATE})
        connected_tenant(engine, settings, "t1")
        registry = build_registry(settings)
        jid = (
            Queue(engine, registry)
            .enqueue("sync_mercadolivre", {"tenantId": "t1", "daysBack": 30}, tenant_id="t1")
            .id
        )
        with running_worker(engine, registry):
            wait_until(
                lambda: _visits_asked(sb) >= 50,
                timeout=300,
                message="the sync to be fetching visits",
            )
            assert JobAdmin(engine).cancel(jid) == "cancel_requested"
            ended = wait_status(engine, jid, "cancelled", "completed", "failed", timeout=120)
        assert ended["status"] == "cancelled", ended["last_error"]
        asked = _visits_asked(sb)
        # Stopped well before the end (a loaded machine relays the cancel late: ~7 s of
        # requests at RATE are allowed for it).
        assert asked < LISTINGS // 2, f"{asked} visits requests after the cancel"
        with engine.connect() as conn:
            stored = conn.execute(select(func.count()).where(listings.c.tenant_id == "t1")).scalar()
            parts = set(
                conn.execute(
                    select(sync_checkpoints.c.part).where(sync_checkpoints.c.job_id == jid)
                ).scalars()
            )
            error = conn.execute(
                select(tenants.c.last_sync_error).where(tenants.c.id == "t1")
            ).scalar()
        assert error is None  # stopping on request is not a failed sync of the seller
        assert stored == LISTINGS  # the listings it had saved stay
        assert {"ids", "orders", "items:0", "items:1000"} <= parts  # and so do its checkpoints


def test_a_freed_slot_goes_to_a_waiting_retry_before_first_tries():
    async def scenario() -> list[str]:
        gate = SlotGate(1)
        order: list[str] = []

        async def take(name: str, retry: bool) -> None:
            async with gate.slot(retry=retry):
                order.append(name)

        await gate.acquire()  # busy: everyone below waits
        tasks = [asyncio.create_task(take(n, False)) for n in ("a", "b", "c")]
        gone = asyncio.create_task(take("cancelled", True))
        await asyncio.sleep(0)
        tasks += [asyncio.create_task(take(n, True)) for n in ("r1", "r2")]
        await asyncio.sleep(0)
        gone.cancel()  # a waiter that gives up takes no slot and loses none
        await asyncio.sleep(0)
        assert gate.waiting == 5
        gate.release()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
        return order

    assert asyncio.run(scenario()) == ["r1", "r2", "a", "b", "c"]
