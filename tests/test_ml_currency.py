"""Amounts keep their currency: tenant totals are BRL, other currencies are kept apart (never
added into BRL); sales of items that are not listings stay in the totals as "other listings"."""

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import select

from superseller.db.schema import tenant_currency_daily, tenant_metrics_daily
from superseller.mercadolivre.upsert import save_orders
from superseller.metrics.queries import overview
from superseller.metrics.rebuild import rebuild_daily_metrics
from tests.support import marketplace as mk

NOW = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)


def _order(oid, created, currency, items, status="paid"):
    return {
        "id": oid,
        "status": status,
        "date_created": created,
        "total_amount": sum(q * p for _, q, p in items),
        "currency_id": currency,
        "order_items": [
            {
                "item": {"id": ext, "title": ext},
                "quantity": q,
                "unit_price": p,
                "currency_id": currency,
            }
            for ext, q, p in items
        ],
    }


def test_other_currencies_are_kept_apart_and_unknown_items_counted(engine):
    t = mk.tenant(engine)
    mk.listing(engine, t, "MLB1", date(2026, 1, 1))
    mk.listing(engine, t, "MLM9", date(2026, 1, 1), currency="MXN")
    found = [
        _order(1, "2026-01-10T10:00:00.000-04:00", "BRL", [("MLB1", 2, 10.0)]),
        _order(2, "2026-01-10T11:00:00.000-04:00", "BRL", [("MLB404", 1, 7.5)]),  # not a listing
        _order(3, "2026-01-10T12:00:00.000-04:00", "MXN", [("MLM9", 1, 300.0)]),
        _order(4, "2026-01-10T13:00:00.000-04:00", "USD", [("CBT1", 3, 20.0)]),
        _order(5, "2026-01-10T14:00:00.000-04:00", "USD", [("CBT1", 1, 20.0)], "cancelled"),
    ]
    with engine.begin() as conn:
        save_orders(conn, t, "America/Sao_Paulo", found, NOW)
    rebuild_daily_metrics(engine, t, "2026-01-10", "2026-01-10")
    with engine.connect() as conn:
        day = conn.execute(select(tenant_metrics_daily)).one()
        others = conn.execute(
            select(
                tenant_currency_daily.c.currency,
                tenant_currency_daily.c.orders,
                tenant_currency_daily.c.units_sold,
                tenant_currency_daily.c.revenue,
            ).order_by(tenant_currency_daily.c.currency)
        ).all()
    # BRL only: 20.00 of a listing + 7.50 of an item that is not one ("other listings").
    assert (day.orders, day.units_sold, Decimal(str(day.revenue))) == (2, 3, Decimal("27.50"))
    assert (day.other_orders, Decimal(str(day.other_revenue))) == (1, Decimal("7.50"))
    assert [(c, o, u, Decimal(str(r))) for c, o, u, r in others] == [
        ("MXN", 1, 1, Decimal("300.00")),
        ("USD", 1, 3, Decimal("60.00")),
    ]
    view = overview(engine, t, date(2026, 1, 10), date(2026, 1, 10))
    assert view["cards"]["revenue"]["value"] == 27.5 and view["currency"] == "BRL"
    assert view["otherCurrencies"] == [
        {"currency": "MXN", "orders": 1, "revenue": 300.0},
        {"currency": "USD", "orders": 1, "revenue": 60.0},
    ]
    assert view["otherListings"] == {"orders": 1, "revenue": 7.5}
    # Idempotent, and a re-run of the range does not pile up currency rows.
    rebuild_daily_metrics(engine, t, "2026-01-10", "2026-01-10")
    with engine.connect() as conn:
        assert len(conn.execute(select(tenant_currency_daily)).all()) == 2
