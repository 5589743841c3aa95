"""The incremental rebuild (some (listing, day) pairs) writes exactly what a full
rebuild of those days writes, on SQLite and PostgreSQL."""

from datetime import date

from sqlalchemy import select, update

from superseller.db.schema import (
    listing_metrics_daily,
    listing_visits_daily,
    order_items,
    orders,
    tenant_currency_daily,
    tenant_metrics_daily,
)
from superseller.mercadolivre.upsert import order_pairs
from superseller.metrics.rebuild import rebuild_daily_metrics, rebuild_pairs
from tests.support import marketplace as mk

D = date.fromisoformat
TABLES = (listing_metrics_daily, tenant_metrics_daily, tenant_currency_daily)


def snapshot(engine) -> dict:
    out = {}
    with engine.connect() as conn:
        for t in TABLES:
            cols = [c for c in t.c if c.name != "updated_at"]
            out[t.name] = [tuple(r) for r in conn.execute(select(*cols).order_by(*t.primary_key))]
    return out


def test_pairs_rebuild_equals_a_full_rebuild_of_their_days(engine):
    t = mk.tenant(engine)
    a = mk.listing(engine, t, "MLB1", D("2026-01-01"))
    b = mk.listing(engine, t, "MLB2", D("2026-01-12"))  # created after a sale below
    c = mk.listing(engine, t, "MLB3", D("2026-01-01"))
    mk.order(engine, t, "o1", "2026-01-10T10:00:00-03:00", "paid", [(a, 1, "10.00")])
    mk.order(engine, t, "o2", "2026-01-11T10:00:00-03:00", "paid", [(c, 2, "7.00")])
    mk.visits(engine, t, a, D("2026-01-10"), 20)
    mk.visits(engine, t, c, D("2026-01-11"), 0)
    rebuild_daily_metrics(engine, t, "2026-01-01", "2026-01-20")
    before = snapshot(engine)

    # What notifications bring: new sales (one of a listing before its creation day, one
    # in another currency, one of an item that is no listing, one on a day never rebuilt
    # yet), and a cancellation; with visits the sync fetched meanwhile (a known count
    # changed, a day whose visits were all unknown gets one).
    new = [
        mk.order(engine, t, "o3", "2026-01-10T23:30:00-03:00", "paid", [(b, 3, "5.50")]),
        mk.order(
            engine, t, "o4", "2026-01-15T08:00:00-03:00", "paid", [(a, 1, "9.90"), (c, 1, "1.00")]
        ),
        mk.order(engine, t, "o5", "2026-01-15T09:00:00-03:00", "paid", [(a, 1, "3.00")]),
        mk.order(engine, t, "o6", "2026-01-16T09:00:00-03:00", "paid", [(a, 1, "4.00")]),
        mk.order(engine, t, "o7", "2026-01-25T09:00:00-03:00", "paid", [(c, 1, "2.00")]),
    ]
    mk.visits(engine, t, b, D("2026-01-15"), 7)
    mk.visits(engine, t, c, D("2026-01-25"), 3)
    with engine.begin() as conn:
        conn.execute(
            update(listing_visits_daily)
            .where(
                listing_visits_daily.c.listing_id == a,
                listing_visits_daily.c.date == D("2026-01-10"),
            )
            .values(visits=25)
        )
        conn.execute(update(orders).where(orders.c.id == new[2]).values(currency="USD"))
        conn.execute(
            update(order_items).where(order_items.c.order_id == new[3]).values(listing_id=None)
        )
        conn.execute(update(orders).where(orders.c.external_id == "o2").values(status="cancelled"))
        pairs, days = order_pairs(conn, t, ["o2", "o3", "o4", "o5", "o6", "o7"])
    assert D("2026-01-16") in days and all(d in days for _, d in pairs)

    result = rebuild_pairs(engine, t, pairs, days)
    incremental = snapshot(engine)
    assert incremental != before and result["pairs"] == len(pairs)
    with engine.connect() as conn:
        rolled = dict(
            conn.execute(
                select(tenant_metrics_daily.c.date, tenant_metrics_daily.c.visits).where(
                    tenant_metrics_daily.c.date.in_([D("2026-01-10"), D("2026-01-15")])
                )
            ).all()
        )
    assert rolled == {D("2026-01-10"): 25, D("2026-01-15"): 7}
    rebuild_daily_metrics(engine, t, "2026-01-01", "2026-01-20")
    rebuild_daily_metrics(engine, t, "2026-01-25", "2026-01-25")
    assert snapshot(engine) == incremental  # the full rebuild finds nothing left to change

    with engine.connect() as conn:
        totals = dict(
            conn.execute(
                select(tenant_metrics_daily.c.date, tenant_metrics_daily.c.orders).where(
                    tenant_metrics_daily.c.date.in_([D("2026-01-11"), D("2026-01-16")])
                )
            ).all()
        )
        usd = conn.execute(select(tenant_currency_daily.c.currency)).scalars().all()
    assert totals == {D("2026-01-11"): 0, D("2026-01-16"): 1} and usd == ["USD"]


def test_no_pairs_no_work(engine):
    t = mk.tenant(engine)
    assert rebuild_pairs(engine, t, [], []) == {"pairs": 0, "days": 0, "rowsUpserted": 0}
