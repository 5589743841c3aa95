"""Fair scheduling across tenants: no tenant holds more running jobs than the cap
(JOB_TENANT_MAX_RUNNING), fleet-wide, so a big seller's queue cannot keep small sellers
waiting; jobs without a tenant are not capped."""

from __future__ import annotations

from sqlalchemy import func, select

from superseller.db.schema import jobs
from superseller.jobs.queue import JobSpec, Queue
from superseller.jobs.store import JobStore, Outcome
from tests.support.handlers import build_registry
from tests.support.inproc import running_worker
from tests.support.waiting import wait_until

BIG = 40
SMALL = 30


def _enqueue_big_first(engine, job_type="noop", payload=None):
    queue = Queue(engine, build_registry())
    queue.enqueue_many([JobSpec(job_type, payload, tenant_id="big") for _ in range(BIG)])
    queue.enqueue_many(
        [JobSpec(job_type, payload, tenant_id=f"small{i:02d}") for i in range(SMALL)]
    )


def _running_per_tenant(engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(jobs.c.tenant_id, func.count())
            .where(jobs.c.status == "running")
            .group_by(jobs.c.tenant_id)
        ).all()
    return dict(rows)


def test_two_workers_finish_every_small_tenant_before_the_big_one(engine):
    """Two worker slots (two workers, one job each), the big tenant's 40 jobs queued before
    30 small tenants' one each: with a cap of 1 the big tenant keeps one slot and the small
    tenants the other, so every small tenant is done before the big one. (Without the cap
    both slots work through the big tenant's queue first.)"""
    _enqueue_big_first(engine)
    stores = [JobStore(engine, tenant_max_running=1) for _ in range(2)]
    held: dict[str, list] = {"w0": [], "w1": []}
    finished: list[str] = []
    for _ in range(4 * (BIG + SMALL)):
        for (wid, mine), store in zip(held.items(), stores, strict=True):
            if not mine:
                mine.extend(store.claim(wid, 1))
        assert all(n <= 1 for n in _running_per_tenant(engine).values())
        if not any(held.values()):
            break
        for (wid, mine), store in zip(held.items(), stores, strict=True):
            if mine:
                claimed = mine.pop()
                outcome = Outcome(claimed, "completed", "success", "noop", store.clock.now(), 1)
                store.finish(wid, [outcome])
                finished.append(claimed.tenant_id)
    assert len(finished) == BIG + SMALL
    last_small = max(i for i, t in enumerate(finished) if t != "big")
    last_big = max(i for i, t in enumerate(finished) if t == "big")
    assert last_small < last_big
    # ...and the big tenant was never starved: it ran while the small ones did.
    assert finished[:2].count("big") == 1


def test_one_claim_takes_no_tenant_past_the_cap_and_skips_to_other_tenants(engine):
    _enqueue_big_first(engine)
    claimed = JobStore(engine, tenant_max_running=2).claim("w", 10)
    tenants = [c.tenant_id for c in claimed]
    assert len(claimed) == 10 and tenants.count("big") == 2
    assert sorted(t for t in tenants if t != "big") == [f"small{i:02d}" for i in range(8)]
    # Capped fleet-wide: another worker gets none of the big tenant's jobs now.
    again = JobStore(engine, tenant_max_running=2).claim("w2", 5)
    assert "big" not in {c.tenant_id for c in again}


def test_jobs_without_a_tenant_are_not_capped(engine):
    queue = Queue(engine, build_registry())
    queue.enqueue_many([JobSpec("noop") for _ in range(6)])
    assert len(JobStore(engine, tenant_max_running=1).claim("w", 10)) == 6


def test_a_real_worker_with_two_slots_serves_small_tenants_first(engine):
    _enqueue_big_first(engine, "async_sleep", {"seconds": 0.02})
    with running_worker(engine, build_registry(), concurrency=2, tenant_max_running=1):

        def done():
            with engine.connect() as conn:
                return (
                    conn.execute(select(func.count()).where(jobs.c.status == "completed")).scalar()
                    == BIG + SMALL
                )

        wait_until(done, timeout=60, message="every job to complete")
    with engine.connect() as conn:
        rows = conn.execute(select(jobs.c.tenant_id, jobs.c.finished_at)).all()
    last_small = max(f for t, f in rows if t != "big")
    last_big = max(f for t, f in rows if t == "big")
    assert last_small < last_big


def test_the_cap_holds_for_a_worker_of_named_queues(engine):
    _enqueue_big_first(engine)
    claimed = JobStore(engine, tenant_max_running=1).claim("w", 5, queues=["default"])
    tenants = [c.tenant_id for c in claimed]
    assert len(claimed) == 5 and tenants.count("big") == 1
    assert JobStore(engine, tenant_max_running=1).claim("w", 5, queues=["other"]) == []
