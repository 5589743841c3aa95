"""The period's conversion counts each order once, however many listings it has.

An order of two listings is one order of the seller: the overview's Conversão is
distinct orders ÷ visits, not the sum of the listings' orders ÷ visits (which counted
that order twice and overstated the rate)."""

from datetime import date

import httpx
import pytest

from superseller.config import Settings
from superseller.metrics.rebuild import rebuild_daily_metrics, rebuild_pairs
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import serving

D = date.fromisoformat
PASSWORD = "correct horse battery"


@pytest.fixture
def shop(engine):
    t = mk.tenant(engine)
    mk.account(engine, t)
    a = mk.listing(engine, t, "MLB1", D("2026-01-01"))
    b = mk.listing(engine, t, "MLB2", D("2026-01-01"))
    c = mk.listing(engine, t, "MLB3", D("2026-01-01"))  # visits never known
    # One order of two listings, both with known visits: one order, not two.
    mk.order(
        engine, t, "o1", "2026-01-10T10:00:00-03:00", "paid", [(a, 1, "10.00"), (b, 2, "5.00")]
    )
    mk.order(engine, t, "o2", "2026-01-10T11:00:00-03:00", "paid", [(a, 1, "10.00")])
    # An order of a listing with known visits and one without: it had known visits.
    mk.order(
        engine, t, "o3", "2026-01-11T11:00:00-03:00", "paid", [(a, 1, "10.00"), (c, 1, "3.00")]
    )
    # An order only of a listing whose visits are unknown: not in the conversion.
    mk.order(engine, t, "o4", "2026-01-11T12:00:00-03:00", "paid", [(c, 1, "3.00")])
    for day, va, vb in (("2026-01-10", 30, 20), ("2026-01-11", 40, 10)):
        mk.visits(engine, t, a, D(day), va)
        mk.visits(engine, t, b, D(day), vb)
    return {"t": t, "a": a, "b": b, "c": c}


def test_overview_conversion_is_distinct_orders_over_visits(engine, shop):
    from superseller.metrics.queries import listings_table, overview

    rebuild_daily_metrics(engine, "t1", "2026-01-01", "2026-01-12")
    cards = overview(engine, "t1", D("2026-01-10"), D("2026-01-11"))["cards"]
    assert cards["orders"]["value"] == 4
    assert cards["visits"]["value"] == 100
    # o1, o2, o3 had a listing with known visits: 3 orders / 100 visits (was 5 / 100).
    assert cards["conversion"]["value"] == pytest.approx(3 / 100)
    # Each listing's own conversion still counts its own orders.
    rows = {r["id"]: r for r in listings_table(engine, "t1", D("2026-01-10"), D("2026-01-11"))}
    assert rows[shop["a"]]["conversion"] == pytest.approx(3 / 70)
    assert rows[shop["b"]]["conversion"] == pytest.approx(1 / 30)


def test_every_visit_known_makes_conversion_orders_over_visits(engine, shop):
    from superseller.metrics.queries import overview

    rebuild_daily_metrics(engine, "t1", "2026-01-01", "2026-01-12")
    cards = overview(engine, "t1", D("2026-01-10"), D("2026-01-10"))["cards"]
    assert (cards["orders"]["value"], cards["visits"]["value"]) == (2, 50)
    assert cards["conversion"]["value"] == pytest.approx(2 / 50)  # the card's own figures


def test_incremental_rebuild_counts_a_new_multi_listing_order_once(engine, shop):
    from superseller.metrics.queries import overview

    rebuild_daily_metrics(engine, "t1", "2026-01-01", "2026-01-12")
    a, b = shop["a"], shop["b"]
    mk.order(
        engine, "t1", "o5", "2026-01-10T15:00:00-03:00", "paid", [(a, 1, "10.00"), (b, 1, "5.00")]
    )
    rebuild_pairs(engine, "t1", [(a, "2026-01-10"), (b, "2026-01-10")])
    cards = overview(engine, "t1", D("2026-01-10"), D("2026-01-10"))["cards"]
    assert cards["conversion"]["value"] == pytest.approx(3 / 50)
    # ...and what it wrote is what a full rebuild writes: a second one changes nothing.
    again = rebuild_daily_metrics(engine, "t1", "2026-01-01", "2026-01-12")
    assert again["rowsUpserted"] == 0
    assert overview(engine, "t1", D("2026-01-10"), D("2026-01-10"))["cards"] == cards


def test_api_overview_conversion(engine, shop, tmp_path):
    rebuild_daily_metrics(engine, "t1", "2026-01-01", "2026-01-12")
    create_user(engine, "ana@loja1.com", PASSWORD, "seller", "t1")
    settings = Settings(data_dir=tmp_path)
    with serving(settings, engine, build_registry(settings)) as url:
        with httpx.Client(base_url=url, timeout=30, headers={"Origin": url}) as c:
            r = c.post("/api/v1/auth/login", json={"email": "ana@loja1.com", "password": PASSWORD})
            assert r.status_code == 200, r.text
            o = c.get("/api/v1/metrics/overview", params={"from": "2026-01-10", "to": "2026-01-10"})
    assert o.status_code == 200, o.text
    cards = o.json()["cards"]
    assert (cards["orders"]["value"], cards["visits"]["value"]) == (2, 50)
    assert cards["conversion"]["value"] == pytest.approx(2 / 50)


def test_the_upgrade_corrects_stored_days_counted_twice(empty_db_url):
    """Days rebuilt before the fix keep their double-counted numerator until rebuilt:
    migration 0025 recounts them in place, so the 30-day view is right after an upgrade,
    not only for the days the nightly rebuild touches again."""
    from sqlalchemy import select, update

    from superseller.db import migrate
    from superseller.db.engine import make_engine
    from superseller.db.schema import tenant_metrics_daily as tmd

    eng = make_engine(empty_db_url)
    try:
        migrate.upgrade(eng)
        t = mk.tenant(eng)
        mk.account(eng, t)
        a = mk.listing(eng, t, "MLB1", D("2026-01-01"))
        b = mk.listing(eng, t, "MLB2", D("2026-01-01"))
        mk.order(
            eng, t, "o1", "2026-01-10T10:00:00-03:00", "paid", [(a, 1, "10.00"), (b, 2, "5.00")]
        )
        mk.order(eng, t, "o2", "2026-01-10T11:00:00-03:00", "paid", [(a, 1, "10.00")])
        mk.order(eng, t, "o3", "2026-01-11T11:00:00-03:00", "paid", [(a, 1, "10.00")])
        for day in ("2026-01-10", "2026-01-11"):
            mk.visits(eng, t, a, D(day), 30)
            mk.visits(eng, t, b, D(day), 20)
        rebuild_daily_metrics(eng, t, "2026-01-10", "2026-01-11")
        # What the rebuild stored before the fix: the listing rows' orders summed (o1 twice).
        with eng.begin() as conn:
            conn.execute(
                update(tmd)
                .where(tmd.c.tenant_id == t, tmd.c.date == D("2026-01-10"))
                .values(orders_with_visits=3)
            )
        migrate.downgrade(eng, "0024")
        migrate.upgrade(eng)
        assert migrate.check(eng).ok
        with eng.connect() as conn:
            stored = dict(
                conn.execute(
                    select(tmd.c.date, tmd.c.orders_with_visits).where(tmd.c.tenant_id == t)
                ).all()
            )
        assert stored == {D("2026-01-10"): 2, D("2026-01-11"): 1}
    finally:
        eng.dispose()
