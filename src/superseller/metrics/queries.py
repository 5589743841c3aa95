"""Dashboard queries: the tenant overview for a period, and the listings table.

Periods are local days in the tenant's time zone, both ends inclusive; each
figure comes with the previous period of equal length for comparison. The
overview reads the `tenant_metrics_daily` rollup (one row per day), so it
costs the same at 10 listings or 10,000.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select

from superseller.db.schema import (
    listing_metrics_daily,
    listings,
    tenant_currency_daily,
    tenant_metrics_daily,
)
from superseller.jobs.cron import zone


def period(tz: str, now: datetime, days: int) -> tuple[date, date]:
    end = now.astimezone(zone(tz)).date()
    return end - timedelta(days=days - 1), end


def _num(v) -> float:
    return float(v) if v is not None else 0.0


def _totals(rows) -> dict[str, Any]:
    revenue = sum((Decimal(str(r.revenue)) for r in rows), Decimal(0))
    orders = sum(r.orders for r in rows)
    units = sum(r.units_sold for r in rows)
    known = [r for r in rows if r.visits is not None]
    visits = sum(r.visits for r in known) if known else None
    with_visits = sum(r.orders_with_visits for r in known)
    return {
        "revenue": float(round(revenue, 2)),
        "orders": orders,
        "units": units,
        "visits": visits,
        "conversion": (with_visits / visits) if visits else None,
        "avgTicket": float(round(revenue / orders, 2)) if orders else None,
    }


def _change(cur, prev) -> float | None:
    if cur is None or prev is None or prev == 0:
        return None
    return round((cur - prev) / prev * 100, 1)


def overview(
    engine: Engine, tenant_id: str, start: date, end: date, top: int = 10
) -> dict[str, Any]:
    length = (end - start).days + 1
    prev_start, prev_end = start - timedelta(days=length), start - timedelta(days=1)
    t = tenant_metrics_daily
    with engine.connect() as conn:
        rows = conn.execute(
            select(t)
            .where(t.c.tenant_id == tenant_id, t.c.date.between(prev_start, end))
            .order_by(t.c.date)
        ).all()
        lm = listing_metrics_daily
        top_rows = conn.execute(
            select(
                lm.c.listing_id,
                listings.c.external_id,
                listings.c.title,
                func.sum(lm.c.revenue).label("revenue"),
                func.sum(lm.c.orders).label("orders"),
                func.sum(lm.c.units_sold).label("units"),
            )
            .join(listings, listings.c.id == lm.c.listing_id)
            .where(lm.c.tenant_id == tenant_id, lm.c.date.between(start, end), lm.c.orders > 0)
            .group_by(lm.c.listing_id, listings.c.external_id, listings.c.title)
            .order_by(func.sum(lm.c.revenue).desc(), lm.c.listing_id)
            .limit(top)
        ).all()
    by_day = {_as_date(r.date): r for r in rows}
    current = [r for d, r in by_day.items() if start <= d <= end]
    previous = [r for d, r in by_day.items() if prev_start <= d <= prev_end]
    cur, prev = _totals(current), _totals(previous)
    series = []
    for i in range(length):
        d = start + timedelta(days=i)
        r = by_day.get(d)
        series.append(
            {
                "date": d.isoformat(),
                "revenue": _num(r.revenue) if r else 0.0,
                "orders": r.orders if r else 0,
                # no rollup row, or no known visits that day: a gap, not a zero
                "visits": r.visits if r else None,
            }
        )
    cur_rows = {}
    with engine.connect() as conn:
        c = tenant_currency_daily
        for r in conn.execute(
            select(
                c.c.currency,
                func.sum(c.c.orders).label("orders"),
                func.sum(c.c.revenue).label("revenue"),
            )
            .where(c.c.tenant_id == tenant_id, c.c.date.between(start, end))
            .group_by(c.c.currency)
            .order_by(c.c.currency)
        ):
            cur_rows[r.currency] = {"orders": int(r.orders), "revenue": _num(r.revenue)}
    return {
        "period": {"from": start.isoformat(), "to": end.isoformat(), "days": length},
        "currency": "BRL",  # the cards; sales in any other currency are apart, never added
        "otherCurrencies": [{"currency": k, **v} for k, v in cur_rows.items()],
        "otherListings": {  # sales of items that are not synced listings, inside the cards
            "orders": sum(r.other_orders for r in current),
            "revenue": float(sum((Decimal(str(r.other_revenue)) for r in current), Decimal(0))),
        },
        "previousPeriod": {"from": prev_start.isoformat(), "to": prev_end.isoformat()},
        "cards": {
            k: {"value": cur[k], "previous": prev[k], "changePct": _change(cur[k], prev[k])}
            for k in cur
        },
        "series": series,
        "topListings": [
            {
                "listingId": r.listing_id,
                "externalId": r.external_id,
                "title": r.title,
                "revenue": _num(r.revenue),
                "orders": r.orders,
                "units": r.units,
            }
            for r in top_rows
        ],
    }


def listings_table(engine: Engine, tenant_id: str, start: date, end: date) -> list[dict]:
    lm = listing_metrics_daily
    figures = (
        select(
            lm.c.listing_id,
            func.sum(lm.c.revenue).label("revenue"),
            func.sum(lm.c.orders).label("orders"),
            func.sum(lm.c.units_sold).label("units"),
            func.sum(lm.c.visits).label("visits"),
            func.count(lm.c.visits).label("visit_days"),
        )
        .where(lm.c.tenant_id == tenant_id, lm.c.date.between(start, end))
        .group_by(lm.c.listing_id)
        .subquery()
    )
    stmt = (
        select(
            listings,
            figures.c.revenue,
            figures.c.orders,
            figures.c.units,
            figures.c.visits,
            figures.c.visit_days,
        )
        .outerjoin(figures, figures.c.listing_id == listings.c.id)
        .where(listings.c.tenant_id == tenant_id)
        .order_by(func.coalesce(figures.c.revenue, 0).desc(), listings.c.id)
    )
    out = []
    with engine.connect() as conn:
        for r in conn.execute(stmt):
            visits = r.visits if r.visit_days else None
            out.append(
                {
                    "id": r.id,
                    "externalId": r.external_id,
                    "title": r.title,
                    "status": r.status,
                    "price": _num(r.price),
                    "permalink": r.permalink,
                    "thumbnail": r.thumbnail,
                    "picturesCount": r.pictures_count,
                    "hasClips": r.has_clips_override
                    if r.has_clips_override is not None
                    else r.has_clips,
                    "revenue": _num(r.revenue),
                    "orders": r.orders or 0,
                    "units": r.units or 0,
                    "visits": visits,
                    "conversion": (r.orders or 0) / visits if visits else None,
                    "score": r.score,
                    "grade": (r.score_breakdown or {}).get("grade"),
                    "action": next(iter((r.score_breakdown or {}).get("actions") or []), {}).get(
                        "text"
                    ),
                    "breakdown": r.score_breakdown,
                }
            )
    return out


LISTING_SORTS = ("revenue", "orders", "units", "visits", "conversion", "score", "title")


def sort_listings(rows: list[dict], key: str, descending: bool = True) -> list[dict]:
    """Order the listings table; unknown values (None) always last."""
    known = [r for r in rows if r[key] is not None]
    unknown = [r for r in rows if r[key] is None]
    known.sort(
        key=lambda r: r[key].casefold() if isinstance(r[key], str) else r[key], reverse=descending
    )
    return known + unknown


def _as_date(v) -> date:
    return date.fromisoformat(v) if isinstance(v, str) else v
