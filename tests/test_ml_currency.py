"""Amounts keep their currency: tenant totals are BRL, other currencies are kept apart (never
added into BRL); sales of items that are not listings stay in the totals as "other listings"."""

from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
from sqlalchemy import select, update

from superseller.config import Settings
from superseller.db.schema import tenant_currency_daily, tenant_metrics_daily, tenants
from superseller.mercadolivre.upsert import save_orders
from superseller.metrics.queries import overview
from superseller.metrics.rebuild import rebuild_daily_metrics
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import serving

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


def sales_in_three_currencies(engine) -> str:
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
    return t


def test_other_currencies_are_kept_apart_and_unknown_items_counted(engine):
    t = sales_in_three_currencies(engine)
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


def test_the_overview_shows_a_line_per_other_currency_and_the_other_listings(engine, tmp_path):
    t = sales_in_three_currencies(engine)
    mk.account(engine, t)
    with engine.begin() as conn:
        conn.execute(update(tenants).where(tenants.c.id == t).values(last_sync_ok_at=NOW))
    create_user(engine, "ana@loja.com", "correct horse battery", "seller", t)
    settings = Settings(data_dir=tmp_path)
    with serving(settings, engine, build_registry(settings)) as url:
        with httpx.Client(base_url=url, timeout=30, headers={"Origin": url}) as seller:
            login = {"email": "ana@loja.com", "password": "correct horse battery"}
            assert seller.post("/api/v1/auth/login", json=login).status_code == 200
            page = seller.get("/", params={"de": "2026-01-10", "ate": "2026-01-10"})
    assert page.status_code == 200, page.text[:300]
    html = page.text
    assert 'data-key="revenue" data-value="27.5"' in html  # BRL only in the cards
    line = html[html.index('id="other-currencies"') :].split("</p>")[0]
    assert "MXN&nbsp;300,00 (1 pedido)" in line and "USD&nbsp;60,00 (1 pedido)" in line
    other = html[html.index('id="other-listings"') :].split("</p>")[0]
    assert "R$\u00a07,50 de 1 venda" in other
