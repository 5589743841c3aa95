"""The 30-day simulation's oracle beyond the audit's cases: the one snapshot the morning
check reads (nothing written after the check instant counts), the listing's days of
existence, today's figures bounded by the sandbox, item edits, and a cause line that
says what differs. The tenant is built as the truth (a row per listing and day it
existed, the overview's totals), then one thing is broken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, insert, update

from superseller.db.engine import make_engine
from superseller.db.schema import jobs, listing_metrics_daily, listings, tenant_metrics_daily
from superseller.sandbox import data
from superseller.sandbox.app import SandboxState
from superseller.simulation import oracle
from superseller.simulation.faults import SAO_PAULO
from superseller.tenants import create_tenant

TENANT = "oracle-00"
NOW = datetime(2026, 3, 20, 6, 0, tzinfo=SAO_PAULO).astimezone(UTC)
TODAY = NOW.astimezone(SAO_PAULO).date()
FIRST = TODAY - timedelta(days=30)
STAMP = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)


def _spec() -> data.SellerSpec:
    # Listings are created up to 5 days before `start`: some inside the 30-day window.
    return data.SellerSpec(
        seed=77,
        user_id=500_000_077,
        nickname="ORACLE",
        listings=120,
        history_days=45,
        orders_per_day=15.0,
        start=datetime(2026, 3, 2, 10, tzinfo=UTC),
    )


@pytest.fixture
def seller(db_url):
    engine = make_engine(db_url)
    state = SandboxState(_spec())
    create_tenant(engine, "Loja do oráculo", tenant_id=TENANT)
    rows = oracle.expected(state, FIRST, TODAY, NOW, all_rows=True)
    over = oracle.overview_truth(state, FIRST, TODAY, NOW, rows)
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
                    price=it["price"],
                    status=it["status"],
                    created_at=STAMP,
                    updated_at=STAMP,
                )
                .returning(listings.c.id)
            ).scalar_one()
        conn.execute(
            insert(listing_metrics_daily),
            [
                {
                    "tenant_id": TENANT,
                    "listing_id": ids[ext],
                    "date": day,
                    "visits": v,
                    "orders": o,
                    "units_sold": u,
                    "revenue": r,
                    "conversion": o / v if v else None,
                    "avg_ticket": round(r / o, 2) if o else None,
                    "source": "rebuild",
                    "updated_at": STAMP,
                }
                for (ext, day), (o, u, r, v) in rows.items()
            ],
        )
        conn.execute(
            insert(tenant_metrics_daily),
            [
                {
                    "tenant_id": TENANT,
                    "date": day,
                    "orders": o,
                    "units_sold": u,
                    "revenue": r,
                    "visits": v,
                    "orders_with_visits": w,
                    "updated_at": STAMP,
                }
                for day, (o, u, r, v, w) in over.items()
            ],
        )
    yield engine, state, ids
    engine.dispose()


def _old(state, ids) -> list[str]:
    """Listings that existed on every day of the window."""
    truth = oracle.listings_truth(state)
    return [e for e in sorted(ids) if truth[e]["created"] <= FIRST]


def test_a_write_after_the_check_instant_does_not_count(seller):
    """The check reads one snapshot: a listing's rows deleted by the (still running)
    engine after it was pinned are still there for the check, and missed after it."""
    engine, state, ids = seller
    ext = _old(state, ids)[0]
    with oracle.snapshot(engine) as conn:
        with engine.begin() as writer:
            writer.execute(
                delete(listing_metrics_daily).where(listing_metrics_daily.c.listing_id == ids[ext])
            )
        assert oracle.check_tenant(conn, TENANT, state, NOW).ok
    verdict = oracle.check_tenant(engine, TENANT, state, NOW)
    assert not verdict.ok
    assert "missing 30" in verdict.cause and "today's partial day missing 1" in verdict.cause


def test_a_listing_has_rows_from_its_creation_day_on(seller):
    """A listing created inside the window needs no row before its local creation day,
    and misses one on it."""
    engine, state, ids = seller
    truth = oracle.listings_truth(state)
    ext, li = next((e, li) for e, li in truth.items() if FIRST < li["created"] < TODAY)
    m = listing_metrics_daily
    assert oracle.check_tenant(engine, TENANT, state, NOW).ok  # no rows before: fine
    with engine.begin() as conn:
        conn.execute(delete(m).where(m.c.listing_id == ids[ext], m.c.date == li["created"]))
    verdict = oracle.check_tenant(engine, TENANT, state, NOW)
    assert not verdict.ok
    assert f"missing: {ext} {li['created']}" in verdict.cause


def test_the_cause_says_what_differs_by_kind(seller):
    engine, state, ids = seller
    want = oracle.expected(state, FIRST, TODAY - timedelta(days=1), NOW)
    (sold, day), _ = next((k, f) for k, f in sorted(want.items()) if f[0] > 0)
    quiet = next(e for e in _old(state, ids) if e != sold)
    m = listing_metrics_daily
    with engine.begin() as conn:
        conn.execute(
            update(m)
            .where(m.c.listing_id == ids[sold], m.c.date == day)
            .values(orders=m.c.orders + 1)
        )
        conn.execute(
            update(m).where(m.c.listing_id == ids[quiet], m.c.date < TODAY).values(visits=None)
        )
    verdict = oracle.check_tenant(engine, TENANT, state, NOW)
    assert not verdict.ok
    assert "visits unknown 30" in verdict.cause
    assert f"sales: {sold} {day} stored" in verdict.cause
    assert verdict.wrong == 31


def test_todays_figures_above_the_sandbox_are_a_miss(seller):
    """Today's figures move after the night's sync, but never above what the sandbox
    holds at the check instant."""
    engine, state, ids = seller
    m = listing_metrics_daily
    lid = next(iter(ids.values()))
    with engine.begin() as conn:
        conn.execute(update(m).where(m.c.listing_id == lid, m.c.date == TODAY).values(visits=10**6))
    verdict = oracle.check_tenant(engine, TENANT, state, NOW)
    assert not verdict.ok and "today above sandbox 1" in verdict.cause
    with engine.begin() as conn:  # lower (an earlier sync's partial count) is fine
        conn.execute(update(m).where(m.c.listing_id == lid, m.c.date == TODAY).values(visits=0))
    assert oracle.check_tenant(engine, TENANT, state, NOW).ok


def _sync_started(engine, when: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(jobs).values(
                type="sync_mercadolivre",
                tenant_id=TENANT,
                payload={"tenantId": TENANT},
                status="completed",
                run_at=when,
                created_at=when,
                started_at=when,
                finished_at=when + timedelta(minutes=5),
            )
        )


def test_an_edit_made_before_the_last_sync_must_be_in_listings(seller):
    engine, state, ids = seller
    ext = sorted(ids)[3]
    edited = datetime(2026, 3, 19, 15, 45, tzinfo=SAO_PAULO)
    state.item_edits[ext] = {
        "price": 123.45,
        "title": "Anúncio editado 123.45",
        "last_updated": data.utc_time(edited),
    }
    _sync_started(engine, edited - timedelta(hours=2))  # the sync began before the edit
    assert oracle.check_tenant(engine, TENANT, state, NOW).ok
    _sync_started(engine, datetime(2026, 3, 20, 2, 0, tzinfo=SAO_PAULO))  # the night's
    verdict = oracle.check_tenant(engine, TENANT, state, NOW)
    assert not verdict.ok and f"edit not synced: {ext}" in verdict.cause
    with engine.begin() as conn:
        conn.execute(
            update(listings)
            .where(listings.c.id == ids[ext])
            .values(title="Anúncio editado 123.45", price=123.45)
        )
    assert oracle.check_tenant(engine, TENANT, state, NOW).ok
