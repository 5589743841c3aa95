"""Mercado Livre as it really is: the faults the real API sends, orders that change after
they are created, items that are not (or no longer) listings, absent keys. Against the
sandbox over real HTTP, on SQLite and PostgreSQL."""

import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
from sqlalchemy import func, select

from superseller.db.schema import (
    listing_metrics_daily,
    listings,
    marketplace_accounts,
    order_items,
    orders,
    tenant_metrics_daily,
)
from superseller.jobs.clock import ManualClock
from superseller.jobs.queue import Queue
from superseller.mercadolivre import tokens as tokens_mod
from superseller.mercadolivre.upsert import LISTING_COLUMNS, listing_rows, upsert
from superseller.sandbox import data
from superseller.scoring.jobs import score_tenant
from superseller.wiring import build_registry
from tests.support.inproc import logs, running_worker, wait_status
from tests.support.marketplace import tenant
from tests.support.ml import connected_tenant, sandbox, settings_for


def sync(engine, reg, days_back=30, clock=None, max_attempts=None, follow=False):
    """One sync of t1 through a worker; with `follow`, also the rebuilds it queued."""
    jid = (
        Queue(engine, reg, clock)
        .enqueue(
            "sync_mercadolivre",
            {"tenantId": "t1", "daysBack": days_back},
            tenant_id="t1",
            max_attempts=max_attempts,
        )
        .id
    )
    with running_worker(engine, reg, clock=clock):
        done = wait_status(engine, jid, "completed", "failed", timeout=240)
        if follow and done["status"] == "completed":
            for rid in done["result"]["rebuildJobIds"]:
                wait_status(engine, rid, "completed", timeout=120)
    return done


def day_totals(engine) -> dict:
    with engine.connect() as conn:
        return {
            str(r.date)[:10]: (r.orders, Decimal(str(r.revenue)), Decimal(str(r.other_revenue)))
            for r in conn.execute(select(tenant_metrics_daily))
        }


def test_token_endpoint_429_twice_then_200_and_retry_after_is_honoured(
    engine, tmp_path, monkeypatch
):
    waits: list[float] = []
    monkeypatch.setattr(tokens_mod, "_sleep", waits.append)  # record, do not wait
    with sandbox(listings=5) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        httpx.post(f"{sb.url}/_sandbox/expire-tokens")  # the sync must refresh first
        with engine.begin() as conn:
            conn.execute(
                marketplace_accounts.update().values(
                    expires_at=datetime.now(UTC) - timedelta(minutes=1)
                )
            )
        httpx.post(f"{sb.url}/_sandbox/faults", json={"token_429": 2, "token_retry_after_s": 1.5})
        done = sync(engine, build_registry(settings), days_back=2)
        assert done["status"] == "completed", done["last_error"]
        assert sb.state.stats["refreshes"] == 1 and sb.state.faults.token_429 == 0
        assert waits == [1.5, 1.5]  # Retry-After, not the client's own back-off


def test_an_invalid_scroll_once_restarts_the_scan_and_twice_fails_clearly(engine, tmp_path):
    with sandbox(listings=1150, orders_per_day=5) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        reg = build_registry(settings)
        httpx.post(f"{sb.url}/_sandbox/faults", json={"scroll_invalid": 1})
        done = sync(engine, reg, days_back=1)
        assert done["status"] == "completed", done["last_error"]
        assert done["result"]["listings"] == 1150
        with engine.connect() as conn:
            stored = conn.execute(select(listings.c.external_id)).scalars().all()
        assert len(stored) == len(set(stored)) == 1150  # every listing exactly once

        httpx.post(f"{sb.url}/_sandbox/faults", json={"scroll_invalid": 2})
        failed = sync(engine, reg, days_back=1, max_attempts=1)
        assert failed["status"] == "failed"
        reason = logs(engine, failed["id"])[-1]["error_message"]
        assert "invalid.scroll.id" in reason and "interrupted twice" in reason
        assert "\n" not in reason and "Traceback" not in reason


def test_an_old_order_cancelled_later_corrects_its_day_idempotently(engine, tmp_path):
    clock = ManualClock(datetime.now(UTC))
    with sandbox(listings=20, orders_per_day=80) as sb:
        sb.state.frozen_at = clock.now()
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        reg = build_registry(settings)
        assert sync(engine, reg, days_back=60, clock=clock, follow=True)["status"] == "completed"
        before = day_totals(engine)

        changed = httpx.post(
            f"{sb.url}/_sandbox/change-orders",
            json={"older_than_days": 40, "count": 1, "status": "cancelled"},
        ).json()
        (oid,) = changed["ids"]
        (order,) = data.orders_by_id(sb.state.spec, [oid], sb.state.now())
        day = order["_created"].astimezone(data.BRT).date().isoformat()
        revenue = sum(
            Decimal(str(it["unit_price"])).quantize(Decimal("0.01")) * it["quantity"]
            for it in order["order_items"]
        )

        # A 7-day sync: the order's creation is far outside its window.
        second = sync(engine, reg, days_back=7, clock=clock, follow=True)
        assert second["status"] == "completed", second["last_error"]
        assert second["result"]["updatedOrders"] >= 1
        assert [day, day] in second["result"]["extraDays"]
        with engine.connect() as conn:
            status = conn.execute(
                select(orders.c.status).where(orders.c.external_id == str(oid))
            ).scalar()
        assert status == "cancelled"
        after = day_totals(engine)
        assert after[day][0] == before[day][0] - 1
        assert after[day][1] == before[day][1] - revenue
        assert {d: v for d, v in after.items() if d != day} == {
            d: v for d, v in before.items() if d != day
        }

        third = sync(engine, reg, days_back=7, clock=clock, follow=True)  # idempotent
        assert third["status"] == "completed"
        assert day_totals(engine) == after


def _best_sellers(spec, now, n):
    sold = Counter(
        it["item"]["id"]
        for o in data.orders_between(spec, now - timedelta(days=8), now, now)
        if o["status"] == "paid"
        for it in o["order_items"]
    )
    return [ext for ext, _ in sold.most_common(n)]


def test_sales_of_unknown_items_are_fetched_or_kept_as_other_listings(engine, tmp_path, caplog):
    clock = ManualClock(datetime.now(UTC))
    with sandbox(listings=30, orders_per_day=120) as sb:
        sb.state.frozen_at = clock.now()
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        hidden, deleted = _best_sellers(sb.state.spec, clock.now(), 2)
        # `hidden`: not in items/search (e.g. closed), fetchable; `deleted`: 404 everywhere.
        httpx.post(f"{sb.url}/_sandbox/items", json={"hidden": [hidden], "deleted": [deleted]})
        with caplog.at_level(logging.WARNING):
            done = sync(engine, build_registry(settings), days_back=7, clock=clock, follow=True)
        assert done["status"] == "completed", done["last_error"]
        assert done["result"]["unknownItemsFetched"] == 1
        assert done["result"]["otherListingsItems"] == 1
        with engine.connect() as conn:
            fetched = conn.execute(select(listings.c.id).where(listings.c.external_id == hidden))
            fetched_id = fetched.scalar()
            sold_hidden = conn.execute(
                select(func.sum(listing_metrics_daily.c.revenue)).where(
                    listing_metrics_daily.c.listing_id == fetched_id
                )
            ).scalar()
            lost = conn.execute(
                select(func.sum(order_items.c.quantity * order_items.c.unit_price))
                .join(orders, orders.c.id == order_items.c.order_id)
                .where(
                    order_items.c.listing_external_id == deleted,
                    order_items.c.listing_id.is_(None),
                    orders.c.status.in_(["paid", "partially_refunded"]),
                )
            ).scalar()
        assert fetched_id is not None and sold_hidden > 0  # the sale counts on its listing
        totals = day_totals(engine)
        assert lost > 0 and sum(v[2] for v in totals.values()) == lost  # "other listings"
        with engine.connect() as conn:  # and the tenant total includes it
            listed = conn.execute(select(func.sum(listing_metrics_daily.c.revenue))).scalar()
        assert sum(v[1] for v in totals.values()) == Decimal(str(listed)) + lost
        said = [r for r in caplog.records if "other listings" in r.getMessage()]
        assert len(said) == 1 and "1 items" in said[0].getMessage()


def test_an_item_without_pictures_is_unknown_and_scored_not_verified(engine):
    tenant(engine, "t1")
    now = datetime.now(UTC)
    body = {  # the cross-border item shape / an `attributes=` projection: no pictures key
        "id": "CBT1234567",
        "title": "Relógio Digital Esportivo à Prova D'água Com Cronômetro",
        "price": 99.9,
        "currency_id": "USD",
        "status": "active",
        "available_quantity": 10,
        "listing_type_id": "gold_pro",
        "date_created": "2026-01-01T00:00:00.000Z",
    }
    with engine.begin() as conn:
        upsert(
            conn,
            listings,
            listing_rows([body], "t1", None, "America/Sao_Paulo", now),
            ["tenant_id", "external_id"],
            LISTING_COLUMNS,
        )
    with engine.connect() as conn:
        row = conn.execute(select(listings)).one()
    assert row.pictures_count is None and row.attributes_count is None  # unknown, not 0
    assert row.currency == "USD"
    score_tenant(engine, "t1", now)
    with engine.connect() as conn:
        breakdown = conn.execute(select(listings.c.score_breakdown)).scalar()
    midia = next(d for d in breakdown["dimensions"] if d["key"] == "midia")
    fotos = next(c for c in midia["criteria"] if c["key"] == "fotos")
    assert fotos["points"] is None  # out of the sum, not "no photos"
    assert "fotos: não verificado" in midia["explanation"]
    assert not any("fotos" in a["text"].lower() for a in breakdown["actions"])
