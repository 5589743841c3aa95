"""Small sellers stay fresh while a big one syncs: the nightly fan-out of one big seller and
30 small ones, on two worker processes, finishes every small seller's sync before the big
seller's.

Scaled down from the issue's 20,000 listings to 1,500 (held to 40 requests/s per seller, so
its sync takes ~40 s, as a 20,000-listing sync at the app's usual rate takes far longer):
what matters is that the big sync is long, not how many rows it writes, and the suite runs
on two shared cores."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from superseller.db.schema import jobs
from superseller.jobs.queue import Queue
from superseller.wiring import build_registry
from tests.support.fleet import cli_worker, log_of
from tests.support.inproc import wait_status
from tests.support.ml import connected_tenant, sandbox, settings_for
from tests.support.procs import stop
from tests.support.waiting import wait_until

BIG = 1500
SMALL_TENANTS = 30
SMALL = 10


def _syncs(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(
            select(jobs.c.tenant_id, jobs.c.status, jobs.c.finished_at).where(
                jobs.c.type == "sync_mercadolivre", jobs.c.tenant_id.is_not(None)
            )
        ).all()


def test_every_small_seller_syncs_before_the_big_one_with_two_workers(engine, db_url, tmp_path):
    with sandbox(listings=BIG, history_days=2, orders_per_day=1) as sb:
        settings = settings_for(sb, tmp_path)
        sizes = {8000: BIG} | {8001 + i: SMALL for i in range(SMALL_TENANTS)}
        httpx.post(f"{sb.url}/_sandbox/seller-listings", json={str(k): v for k, v in sizes.items()})
        # "a-big" sorts first: the fan-out queues its sync before every small one's.
        names = ["a-big"] + [f"s{i:02d}" for i in range(SMALL_TENANTS)]
        for tid, user in zip(names, sizes, strict=True):
            httpx.post(f"{sb.url}/_sandbox/login-as", json={"user_id": user})
            connected_tenant(engine, settings, tid)
        fan = (
            Queue(engine, build_registry(settings))
            .enqueue("sync_mercadolivre", {"tenantId": "all", "daysBack": 1})
            .id
        )
        procs = [
            cli_worker(
                db_url,
                sb.url,
                tmp_path,
                concurrency=1,
                ML_REQUESTS_PER_S=1000,
                ML_SELLER_REQUESTS_PER_S=40,
                JOB_TENANT_MAX_RUNNING=1,
            )
            for _ in range(2)
        ]
        try:
            assert wait_status(engine, fan, "completed", timeout=60)["result"]["fannedOut"] == 31

            def all_synced():
                rows = _syncs(engine)
                return len(rows) == 31 and all(r.status in ("completed", "failed") for r in rows)

            wait_until(all_synced, timeout=300, interval=0.5, message="every seller's sync")
        finally:
            codes = [stop(p) for p in procs]
        assert codes == [0, 0], log_of(tmp_path)
    rows = {r.tenant_id: r for r in _syncs(engine)}
    assert {r.status for r in rows.values()} == {"completed"}, log_of(tmp_path)
    big = rows.pop("a-big")
    late = [tid for tid, r in rows.items() if r.finished_at >= big.finished_at]
    assert late == [], f"small sellers synced after the big one: {late}"
