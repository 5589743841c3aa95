"""The nightly fan-out queues small sellers first: by the listings their last sync stored,
so a big seller that sorts first by name does not keep the small ones' numbers waiting."""

from __future__ import annotations

from sqlalchemy import select

from superseller.config import Settings
from superseller.db.schema import jobs
from superseller.jobs.queue import Queue
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.inproc import running_worker, wait_status


def test_fan_out_queues_sellers_smallest_first(engine, tmp_path):
    sizes = {"a-big": 30, "b-mid": 5, "c-small": 1, "d-new": 0, "e-gone": 2}
    for i, (tid, n) in enumerate(sizes.items()):
        mk.tenant(engine, tid)
        mk.account(engine, tid, "reauth_required" if tid == "e-gone" else "connected", 100 + i)
        for k in range(n):
            mk.listing(engine, tid, f"MLB{i}{k:03d}", None)
    registry = build_registry(Settings(data_dir=tmp_path))
    fan = Queue(engine, registry).enqueue("sync_mercadolivre", {"tenantId": "all"}).id
    with running_worker(engine, registry):  # (the children fail: these accounts have no tokens)
        done = wait_status(engine, fan, "completed", "failed", timeout=30)
    assert done["status"] == "completed", done["last_error"]
    with engine.connect() as conn:
        order = (
            conn.execute(
                select(jobs.c.tenant_id)
                .where(jobs.c.id.in_(done["result"]["jobIds"]))
                .order_by(jobs.c.id)
            )
            .scalars()
            .all()
        )
    assert order == ["d-new", "c-small", "b-mid", "a-big"]
