"""A big seller's sync resumes where it stopped: a worker process SIGKILLed in the middle of
the sync leaves its finished parts in `sync_checkpoints`; the rescued retry fetches none
of them again, and the data it leaves equals an uninterrupted sync's."""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from urllib.parse import parse_qs

import httpx
from sqlalchemy import select

from superseller.db.schema import jobs, listing_visits_daily, listings, orders, sync_checkpoints
from superseller.jobs.queue import Queue
from superseller.wiring import build_registry
from tests.support.fleet import cli_worker, log_of
from tests.support.inproc import running_worker, wait_status
from tests.support.ml import connected_tenant, sandbox, settings_for
from tests.support.procs import stop
from tests.support.waiting import wait_until

LISTINGS = 1500  # 3 ranges of 500: the kill lands after the first range of visits
RATE = 120  # ML_REQUESTS_PER_S of the victim: ~1,600 requests take ~13 s


def _parts(engine, job_id: int) -> dict:
    with engine.connect() as conn:
        rows = conn.execute(
            select(sync_checkpoints.c.part, sync_checkpoints.c.data).where(
                sync_checkpoints.c.job_id == job_id
            )
        ).all()
    return {part: data for part, data in rows if part != "progress"}  # what the seller sees


def _snapshot(engine, tid: str) -> dict:
    """What the sync leaves, without ids and times."""
    with engine.connect() as conn:
        items = conn.execute(
            select(
                listings.c.external_id,
                listings.c.title,
                listings.c.price,
                listings.c.status,
                listings.c.available_quantity,
                listings.c.sold_quantity,
            )
            .where(listings.c.tenant_id == tid)
            .order_by(listings.c.external_id)
        ).all()
        visits = conn.execute(
            select(
                listings.c.external_id, listing_visits_daily.c.date, listing_visits_daily.c.visits
            )
            .join(listings, listings.c.id == listing_visits_daily.c.listing_id)
            .where(listing_visits_daily.c.tenant_id == tid)
            .order_by(listings.c.external_id, listing_visits_daily.c.date)
        ).all()
        sales = conn.execute(
            select(orders.c.external_id, orders.c.status, orders.c.total_amount)
            .where(orders.c.tenant_id == tid)
            .order_by(orders.c.external_id)
        ).all()
    return {"listings": items, "visits": visits, "orders": sales}


def _fetched_after(log: list, since: int) -> dict[str, list]:
    """What the requests from `since` on asked for: scans, multiget ids, visit item ids."""
    out: dict[str, list] = {"scan": [], "multiget": [], "visits": []}
    for _t, path, query in log[since:]:
        q = parse_qs(query)
        if path.endswith("/items/search"):
            out["scan"].append(query)
        elif path == "/items":
            out["multiget"].extend(q["ids"][0].split(","))
        elif path.endswith("/visits/time_window"):
            out["visits"].append(path.split("/")[2])
    return out


def _killed_after_first_visits_range(engine, registry, db_url, sb, tmp_path) -> int:
    """Tenant `big`'s sync, its worker SIGKILLed as soon as the first range of visits is
    recorded; the job's id."""
    jid = (
        Queue(engine, registry)
        .enqueue("sync_mercadolivre", {"tenantId": "big", "daysBack": 30}, tenant_id="big")
        .id
    )
    victim = cli_worker(db_url, sb.url, tmp_path, ML_REQUESTS_PER_S=RATE)
    try:
        wait_until(
            lambda: "visits:0" in _parts(engine, jid),
            timeout=300,
            interval=0.05,
            message="the first range of visits to be recorded",
        )
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
    return jid


def _resumed(engine, db_url, sb, tmp_path, jid: int) -> dict:
    """A second worker takes the killed sync over; the finished job."""
    rescuer = cli_worker(db_url, sb.url, tmp_path, ML_REQUESTS_PER_S=RATE * 2)
    try:
        finished = wait_status(engine, jid, "completed", "failed", timeout=300)
    finally:
        assert stop(rescuer) == 0, log_of(tmp_path)
    assert finished["status"] == "completed", finished["last_error"]
    return finished


def test_sigkilled_big_sync_resumes_without_refetching_finished_ranges(engine, db_url, tmp_path):
    with sandbox(listings=LISTINGS, history_days=2, orders_per_day=4) as sb:
        sb.state.frozen_at = datetime.now(UTC)  # both syncs see the same visits and orders
        settings = settings_for(sb, tmp_path)
        for tid, user in (("big", 7001), ("ref", 7002)):
            httpx.post(f"{sb.url}/_sandbox/login-as", json={"user_id": user})
            connected_tenant(engine, settings, tid)
        registry = build_registry(settings)
        jid = _killed_after_first_visits_range(engine, registry, db_url, sb, tmp_path)
        done = _parts(engine, jid)
        cut = len(httpx.get(f"{sb.url}/_sandbox/request-log").json()["requests"])
        with engine.connect() as conn:
            assert conn.execute(select(jobs.c.status).where(jobs.c.id == jid)).scalar() == (
                "running"
            ), "the victim finished the sync before it was killed: nothing left to resume"
        ids = done["ids"]["ids"]
        item_ranges = {int(p.split(":")[1]) for p in done if p.startswith("items:")}
        visit_ranges = {int(p.split(":")[1]) for p in done if p.startswith("visits:")}
        assert len(ids) == LISTINGS and visit_ranges and len(visit_ranges) < 3

        finished = _resumed(engine, db_url, sb, tmp_path, jid)
        assert finished["attempts"] >= 2  # the killed attempt, then the resumed one
        assert finished["result"]["resumedParts"] >= len(done)
        assert _parts(engine, jid) == {}  # a finished run leaves no checkpoints

        again = _fetched_after(httpx.get(f"{sb.url}/_sandbox/request-log").json()["requests"], cut)
        assert again["scan"] == [], "the listing ids were scanned again"
        finished_items = {x for lo in item_ranges for x in ids[lo : lo + 500]}
        assert not finished_items & set(again["multiget"]), "finished details fetched again"
        finished_visits = {x for lo in visit_ranges for x in ids[lo : lo + 500]}
        assert not finished_visits & set(again["visits"]), "finished visits fetched again"
        # ...and the rest was fetched: every listing's visits, before or after the kill.
        assert set(ids) - finished_visits <= set(again["visits"])

        # The same seller's catalogue synced in one go, for comparison.
        ref = (
            Queue(engine, registry)
            .enqueue("sync_mercadolivre", {"tenantId": "ref", "daysBack": 30}, tenant_id="ref")
            .id
        )
        with running_worker(engine, registry):
            assert wait_status(engine, ref, "completed", "failed", timeout=300)["status"] == (
                "completed"
            )
    big, whole = _snapshot(engine, "big"), _snapshot(engine, "ref")
    assert len(big["listings"]) == LISTINGS and big["visits"] and big["orders"]
    assert big == whole


def test_with_429s_visits_ranges_are_checkpointed_in_order_and_a_resume_skips_them(
    engine, db_url, tmp_path
):
    """A call that met a 429 is retried before the first tries still waiting (there are
    thousands: the step asks every listing at once), so the first range of visits is
    recorded while the last one has barely started, not at the end of the step; a worker
    killed then loses at most the range in progress."""
    with sandbox(listings=LISTINGS, history_days=2, orders_per_day=4) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings, "big")
        # Every 429 says Retry-After (50 ms): a retry is due at once, never held back by
        # a long back-off of its own.
        httpx.post(f"{sb.url}/_sandbox/faults", json={"rate_429": 0.1, "retry_after_share": 1})
        registry = build_registry(settings)
        jid = _killed_after_first_visits_range(engine, registry, db_url, sb, tmp_path)
        with engine.connect() as conn:
            marked = conn.execute(
                select(sync_checkpoints.c.created_at).where(
                    sync_checkpoints.c.job_id == jid, sync_checkpoints.c.part == "visits:0"
                )
            ).scalar_one()
            assert conn.execute(select(jobs.c.status).where(jobs.c.id == jid)).scalar() == (
                "running"
            ), "the victim finished the sync before it was killed: nothing left to resume"
        done = _parts(engine, jid)
        ids = done["ids"]["ids"]
        log = httpx.get(f"{sb.url}/_sandbox/request-log").json()["requests"]
        assert httpx.get(f"{sb.url}/_sandbox/stats").json()["429"] > 0
        # Before the first range was recorded, the last range's listings were not asked
        # (a retry behind every first try held the range open until nearly the end).
        before = {
            path.split("/")[2]
            for t, path, _q in log
            if path.endswith("/visits/time_window") and t < marked.timestamp()
        }
        last_range = set(ids[2 * 500 :])
        assert len(before & last_range) < 100, (
            f"{len(before & last_range)} of the last range's listings were asked before "
            "the first range was recorded"
        )

        cut = len(log)
        visit_ranges = {int(p.split(":")[1]) for p in done if p.startswith("visits:")}
        _resumed(engine, db_url, sb, tmp_path, jid)
        again = _fetched_after(httpx.get(f"{sb.url}/_sandbox/request-log").json()["requests"], cut)
        finished_visits = {x for lo in visit_ranges for x in ids[lo : lo + 500]}
        assert not finished_visits & set(again["visits"]), "finished visits fetched again"
        assert set(ids) - finished_visits <= set(again["visits"])
