"""The 30-day simulation's oracle (`simulation.oracle.check_tenant`) must count a seller
fresh only when the product's figures are the sandbox's: these tests build a tenant whose
`listing_metrics_daily` is exactly the oracle's truth (every listing, every day, zeros
included, visits known), check that it passes, then break one thing a seller would see
and require the oracle to say "late".

Regression tests from the audit of 2026-12-06 (issue 22): the oracle then compared only
non-zero (orders, units, revenue, visits) tuples, so a listing whose truth is all zeros
(most of a large seller's tail, and nearly every paused listing) could be missing or have
unknown visits, and the derived figures and the day after today were never looked at.
Each case below failed then.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, insert, text, update

from superseller.db.engine import make_engine
from superseller.db.schema import listing_metrics_daily, listings, tenant_metrics_daily
from superseller.sandbox import data
from superseller.sandbox.app import SandboxState
from superseller.simulation import oracle, runner
from superseller.simulation.clock import SimClock
from superseller.simulation.faults import SAO_PAULO, Fault
from superseller.tenants import create_tenant

TENANT = "audit-00"
# 06:00 local on a morning of the simulation's month, as `Simulation._check` calls it.
NOW = datetime(2026, 3, 20, 6, 0, tzinfo=SAO_PAULO).astimezone(UTC)
TODAY = NOW.astimezone(SAO_PAULO).date()
FIRST = TODAY - timedelta(days=30)


def _spec() -> data.SellerSpec:
    return data.SellerSpec(
        seed=4242,
        user_id=500_000_042,
        nickname="AUDIT",
        listings=400,  # a long tail: many quiet listings, ~1 in 11 paused
        history_days=45,
        orders_per_day=20.0,
        start=datetime(2026, 3, 2, 10, tzinfo=UTC),
    )


def _quiet_listing(state: SandboxState) -> str:
    """A listing whose 30 days are all zeros in the truth (no sale, no visit)."""
    want = oracle.expected(state, FIRST, TODAY - timedelta(days=1), NOW)
    busy = {ext for ext, _ in want}
    for i in range(state.spec.listings):
        ext = data.item_id(state.spec, i)
        if ext not in busy:
            return ext
    raise AssertionError("the spec has no quiet listing")


@pytest.fixture
def seller(db_url):
    """A tenant whose listing_metrics_daily is the truth: a row per listing and day from
    FIRST to TODAY (today partial), visits known, conversion and ticket derived."""
    engine = make_engine(db_url)
    state = SandboxState(_spec())
    create_tenant(engine, "Loja auditada", tenant_id=TENANT)
    want = oracle.expected(state, FIRST, TODAY, NOW)
    stamp = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)
    with engine.begin() as conn:
        ids = {}
        for i in range(state.spec.listings):
            it = data.item(state.spec, i)
            ids[it["id"]] = conn.execute(
                insert(listings)
                .values(
                    tenant_id=TENANT,
                    external_id=it["id"],
                    title=it["title"],
                    status=it["status"],
                    created_at=stamp,
                    updated_at=stamp,
                )
                .returning(listings.c.id)
            ).scalar_one()
        rows = []
        for ext, lid in ids.items():
            for k in range(31):
                day = FIRST + timedelta(days=k)
                orders, units, revenue, visits = want.get((ext, day), (0, 0, 0.0, 0))
                rows.append(
                    {
                        "tenant_id": TENANT,
                        "listing_id": lid,
                        "date": day,
                        "visits": visits,
                        "orders": orders,
                        "units_sold": units,
                        "revenue": revenue,
                        "conversion": orders / visits if visits else None,
                        "avg_ticket": round(revenue / orders, 2) if orders else None,
                        "source": "rebuild",
                        "updated_at": stamp,
                    }
                )
        conn.execute(insert(listing_metrics_daily), rows)
        conn.execute(insert(tenant_metrics_daily), _overview(state, rows, stamp))
    yield engine, state, ids
    engine.dispose()


def _overview(state: SandboxState, rows: list[dict], stamp: datetime) -> list[dict]:
    """The overview's rows (what the seller's dashboard totals read): distinct counted
    orders of the day, their units and revenue, the day's visits, and the distinct orders
    with known visits."""
    out = []
    for k in range(31):
        day = FIRST + timedelta(days=k)
        start = datetime(day.year, day.month, day.day, tzinfo=SAO_PAULO)
        sold = [
            o
            for o in data.orders_between(state.spec, start, start + timedelta(days=1), NOW)
            if o["status"] in oracle.COUNTED
        ]
        lines = [line for o in sold for line in o["order_items"]]
        mine = [r for r in rows if r["date"] == day]
        out.append(
            {
                "tenant_id": TENANT,
                "date": day,
                "orders": len(sold),
                "units_sold": sum(x["quantity"] for x in lines),
                "revenue": round(sum(x["quantity"] * x["unit_price"] for x in lines), 2),
                "visits": sum(r["visits"] for r in mine),
                # every listing's visits are known: each counted order once, however many
                # listings it has (docs/metrics.md)
                "orders_with_visits": len(sold),
                "other_orders": 0,
                "other_revenue": 0,
                "updated_at": stamp,
            }
        )
    return out


def _verdict(engine, state) -> oracle.Verdict:
    return oracle.check_tenant(engine, TENANT, state, NOW)


def test_the_truth_passes(seller):
    engine, state, _ = seller
    assert _verdict(engine, state).ok


def test_a_quiet_listing_the_product_never_synced_is_a_miss(seller):
    """A listing (row and metrics) missing from the product: the seller does not see it.
    The truth has it every day (all zeros), so the oracle must notice."""
    engine, state, ids = seller
    ext = _quiet_listing(state)
    with engine.begin() as conn:
        conn.execute(
            delete(listing_metrics_daily).where(listing_metrics_daily.c.listing_id == ids[ext])
        )
        conn.execute(delete(listings).where(listings.c.id == ids[ext]))
    assert not _verdict(engine, state).ok


def test_unknown_visits_are_not_a_real_zero(seller):
    """visits NULL means "not known" (tables_metrics.py); the truth is a known 0."""
    engine, state, ids = seller
    ext = _quiet_listing(state)
    with engine.begin() as conn:
        conn.execute(
            update(listing_metrics_daily)
            .where(listing_metrics_daily.c.listing_id == ids[ext])
            .values(visits=None, conversion=None)
        )
    assert not _verdict(engine, state).ok


def test_a_wrong_conversion_or_ticket_is_a_miss(seller):
    """conversion and avg_ticket are figures the seller sees (and scoring reads)."""
    engine, state, _ = seller
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE listing_metrics_daily SET conversion = 0.99, avg_ticket = 1 "
                "WHERE tenant_id = :t AND orders > 0 AND date < :d"
            ),
            {"t": TENANT, "d": TODAY},
        )
    assert not _verdict(engine, state).ok


def test_wrong_overview_totals_are_a_miss(seller):
    """The seller's dashboard totals (orders, revenue) read tenant_metrics_daily, a table
    the rebuild maintains apart (metrics/rebuild.py _ROLLUP_SQL): a stale rollup is a
    wrong figure the seller sees even when every listing row is right."""
    engine, state, _ = seller
    with engine.begin() as conn:
        conn.execute(
            update(tenant_metrics_daily)
            .where(tenant_metrics_daily.c.date == TODAY - timedelta(days=1))
            .values(orders=tenant_metrics_daily.c.orders + 5, revenue=0)
        )
    assert not _verdict(engine, state).ok


def test_metrics_dated_after_today_are_a_miss(seller):
    """The issue's check is MAX(date) = today's partial day; a row dated tomorrow (a UTC
    date, a clock bug) is not "fresh"."""
    engine, state, ids = seller
    lid = next(iter(ids.values()))
    with engine.begin() as conn:
        conn.execute(
            update(listing_metrics_daily)
            .where(listing_metrics_daily.c.listing_id == lid, listing_metrics_daily.c.date == TODAY)
            .values(date=TODAY + timedelta(days=1))
        )
    assert not _verdict(engine, state).ok


def test_todays_partial_day_is_present_for_every_listing(seller):
    """Today's partial day present: one listing's row for today is not the day."""
    engine, state, ids = seller
    keep = next(iter(ids.values()))
    with engine.begin() as conn:
        conn.execute(
            delete(listing_metrics_daily).where(
                listing_metrics_daily.c.date == TODAY, listing_metrics_daily.c.listing_id != keep
            )
        )
    assert not _verdict(engine, state).ok


def test_a_sqlite_database_outage_is_seen_by_the_product(tmp_path):
    """faults.KINDS says db_outage makes the database unreachable. On SQLite the driver
    once held the write lock for 1-6 s of wall time, under the product's 60 s busy timeout
    (db/engine.py SQLITE_BUSY_TIMEOUT_MS): writes just waited and succeeded, and the product
    never had an outage. It now holds it past the busy timeout: a write fails."""
    url = f"sqlite:///{tmp_path / 'sim.db'}"
    product = make_engine(url)
    with product.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE beat (n INTEGER)")
    sim = runner.Simulation.__new__(runner.Simulation)
    sim.clock = SimClock(tmp_path / "clock")
    start = datetime(2026, 3, 8, 2, 0, 5, tzinfo=SAO_PAULO)
    sim.clock.set(start.astimezone(UTC))
    sim.pg, sim.url, sim.outage_lock = False, url, None
    fault = Fault("db_outage", start, start + timedelta(minutes=10))
    outage = threading.Thread(target=sim._outage, args=(fault,))
    outage.start()
    deadline = time.monotonic() + 10
    while sim.outage_lock is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sim.outage_lock is not None
    failed = None
    try:
        with product.begin() as conn:  # a worker's heartbeat during the outage
            conn.exec_driver_sql("INSERT INTO beat VALUES (1)")
    except Exception as exc:  # noqa: BLE001 - any database error is the outage seen
        failed = exc
    outage.join(30)
    product.dispose()
    assert isinstance(failed, Exception), "the write during the 'outage' succeeded"


# -- what the oracle already does (no test exercised its figures branch before) ------------
def test_a_cancellation_the_product_missed_is_a_miss(seller):
    """A buyer cancels a counted order of 10 days ago (the driver's `_cancel`); the product
    still counts it: the figures differ, the tenant is late."""
    engine, state, _ = seller
    day = TODAY - timedelta(days=10)
    start = datetime(day.year, day.month, day.day, 12, tzinfo=SAO_PAULO)
    paid = [
        o
        for o in data.orders_between(state.spec, start, start + timedelta(hours=12), NOW)
        if o["status"] == "paid"
    ]
    state.order_changes[paid[0]["id"]] = ("cancelled", NOW - timedelta(hours=8))
    verdict = _verdict(engine, state)
    assert not verdict.ok
    assert "differ" in verdict.cause


def test_the_fault_schedule_replays_from_its_seed():
    from superseller.simulation import faults

    tenants = [f"t{n:02d}" for n in range(20)]
    args = (runner.FIRST_DAY, 30, list(faults.KINDS), tenants)
    one = [f.describe() for f in faults.draw(7, *args)]
    assert one == [f.describe() for f in faults.draw(7, *args)]
    assert one != [f.describe() for f in faults.draw(8, *args)]
    # Every kind the issue lists is in a 30-day schedule.
    assert {f.split()[0] for f in one} == set(faults.KINDS)
