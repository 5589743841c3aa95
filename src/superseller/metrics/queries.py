"""Dashboard queries: the tenant overview for a period, today so far, and the listings table.

Periods are local days in the tenant's time zone, both ends inclusive. Every period shown
is made of *complete* days (ending yesterday at the latest: `complete_period` for the last N
days, `complete_days` cuts a chosen one); today is reported on its own, never compared with
full days. Each figure is compared with the previous period of equal length only when that
period is fully covered by synced data: a day is covered when the rebuild wrote its
`tenant_metrics_daily` row (it writes one for every day of the range it rebuilt, zeros for a
quiet day), so a previous period that was never synced gives "no comparison", not +1.720%.
The overview reads that rollup (one row per day), so it costs the same at 10 listings or
10,000.
"""

from __future__ import annotations

import unicodedata
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
from superseller.metrics.freshness import live_until


def period(tz: str, now: datetime, days: int) -> tuple[date, date]:
    """The last `days` local days, today included (today is partial)."""
    end = now.astimezone(zone(tz)).date()
    return end - timedelta(days=days - 1), end


def complete_period(tz: str, now: datetime, days: int) -> tuple[date, date]:
    """The last `days` complete local days: ending yesterday, so no partial day is compared
    with full ones ("Últimos 7 dias completos")."""
    end = now.astimezone(zone(tz)).date() - timedelta(days=1)
    return end - timedelta(days=days - 1), end


class NoCompleteDay(ValueError):
    """A period asked for that starts today or later: it has no complete day to show."""

    def __init__(self, yesterday: date):
        super().__init__(f"the period has no complete day (complete days end {yesterday})")
        self.yesterday = yesterday


def complete_days(tz: str, now: datetime, start: date, end: date) -> tuple[date, date]:
    """A period someone chose, cut to its complete local days: one that reaches today (or
    the days after it) ends yesterday, so that half of today, or days still to come, are
    never compared with full days; today is reported apart (`today_so_far`). A period
    starting today or later has none: NoCompleteDay."""
    yesterday = now.astimezone(zone(tz)).date() - timedelta(days=1)
    if start > yesterday:
        raise NoCompleteDay(yesterday)
    return start, min(end, yesterday)


def previous_period(start: date, end: date) -> tuple[date, date]:
    length = (end - start).days + 1
    return start - timedelta(days=length), start - timedelta(days=1)


def year_before(d: date) -> date:
    try:
        return d.replace(year=d.year - 1)
    except ValueError:  # 29 February
        return d.replace(year=d.year - 1, day=28)


def covered_days(engine: Engine, tenant_id: str, start: date, end: date) -> set[date]:
    """The local days in [start, end] whose figures the rebuild computed from synced data."""
    t = tenant_metrics_daily
    with engine.connect() as conn:
        found = conn.execute(
            select(t.c.date).where(t.c.tenant_id == tenant_id, t.c.date.between(start, end))
        ).scalars()
        return {_as_date(d) for d in found}


def is_covered(engine: Engine, tenant_id: str, start: date, end: date) -> bool:
    return len(covered_days(engine, tenant_id, start, end)) == (end - start).days + 1


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
    prev_start, prev_end = previous_period(start, end)
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
    comparable = len(previous) == length  # every previous day covered by synced data
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
        "coverage": {"days": length, "coveredDays": len(current)},
        "comparison": {
            "available": comparable,
            "reason": None if comparable else "insufficient_history",
            "previousCoveredDays": len(previous),
        },
        "cards": {
            k: {
                "value": cur[k],
                "previous": prev[k] if comparable else None,
                "changePct": _change(cur[k], prev[k]) if comparable else None,
            }
            for k in cur
        },
        "sameLastYear": _last_year(engine, tenant_id, start, end, cur),
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


def _last_year(engine: Engine, tenant_id: str, start: date, end: date, cur: dict) -> dict | None:
    """The same local dates a year earlier, only when every one of them is covered."""
    a, b = year_before(start), year_before(end)
    t = tenant_metrics_daily
    with engine.connect() as conn:
        rows = conn.execute(
            select(t).where(t.c.tenant_id == tenant_id, t.c.date.between(a, b))
        ).all()
    if len(rows) != (b - a).days + 1:
        return None
    then = _totals(rows)
    return {
        "from": a.isoformat(),
        "to": b.isoformat(),
        "cards": {k: {"value": then[k], "changePct": _change(cur[k], then[k])} for k in cur},
    }


def today_so_far(engine: Engine, tenant: dict, now: datetime) -> dict[str, Any]:
    """Today's figures, as far as the last sync saw them ("Hoje até 14:31"). `asOf` is the
    local time of the last successful sync when it happened today; None otherwise (then
    today has no synced data yet)."""
    tz = zone(tenant["timezone"])
    today = now.astimezone(tz).date()
    t = tenant_metrics_daily
    with engine.connect() as conn:
        row = conn.execute(
            select(t).where(t.c.tenant_id == tenant["id"], t.c.date == today)
        ).first()
    # the data is as fresh as the older of the last sync and the last rebuild
    moments = [tenant.get("last_sync_ok_at"), tenant.get("last_rebuild_ok_at")]
    as_of = min(moments).astimezone(tz) if all(moments) else None
    if as_of is None or as_of.date() != today:
        as_of = None
    live = live_until(engine, tenant["id"], now)  # notifications applied since then
    if as_of is not None and live is not None and live.astimezone(tz) > as_of:
        as_of = live.astimezone(tz)
    totals = _totals([row]) if row is not None and as_of is not None else None
    return {
        "date": today.isoformat(),
        "asOf": as_of.strftime("%H:%M") if as_of else None,
        "revenue": totals["revenue"] if totals else None,
        "orders": totals["orders"] if totals else None,
        "visits": totals["visits"] if totals else None,
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
                    "stock": r.available_quantity,
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


GRADE_NAMES = ("Excelente", "Bom", "Regular", "Crítico")
CLIP_FILTERS = {"tem": True, "nao-tem": False, "nao-verificado": None}


def filter_listings(
    rows: list[dict],
    search: str | None = None,
    status: str | None = None,
    grade: str | None = None,
    clip: str | None = None,
) -> list[dict]:
    """The listings table narrowed by a search on title or id (case- and accent-blind),
    status, score grade ("sem-nota" for unscored) and clip status."""
    out = rows
    if search:
        needle = _fold(search)
        out = [r for r in out if needle in _fold(r["title"]) or needle in _fold(r["externalId"])]
    if status:
        out = [r for r in out if r["status"] == status]
    if grade:
        out = [r for r in out if (r["grade"] or "sem-nota") == grade]
    if clip in CLIP_FILTERS:
        out = [r for r in out if r["hasClips"] is CLIP_FILTERS[clip]]
    return out


def paginate(rows: list[dict], page: int, per_page: int = 50) -> dict[str, Any]:
    pages = max(1, -(-len(rows) // per_page))
    page = min(max(1, page), pages)
    return {
        "rows": rows[(page - 1) * per_page : page * per_page],
        "page": page,
        "pages": pages,
        "total": len(rows),
        "perPage": per_page,
    }


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _as_date(v) -> date:
    return date.fromisoformat(v) if isinstance(v, str) else v


def numbers_version(engine: Engine, tenant_id: str, tz: str, now: datetime) -> dict[str, Any]:
    """A cheap token that changes whenever the tenant's daily figures change (the live
    overview polls it), with today's order count for the "novo pedido" cue."""
    today = now.astimezone(zone(tz)).date()
    with engine.connect().execution_options(sqlite_deferred=True) as conn:
        changed = conn.execute(
            select(func.max(tenant_metrics_daily.c.updated_at)).where(
                tenant_metrics_daily.c.tenant_id == tenant_id,
                tenant_metrics_daily.c.date >= today - timedelta(days=400),
            )
        ).scalar()
        orders_today = conn.execute(
            select(tenant_metrics_daily.c.orders).where(
                tenant_metrics_daily.c.tenant_id == tenant_id,
                tenant_metrics_daily.c.date == today,
            )
        ).scalar()
    stamp = changed.isoformat() if hasattr(changed, "isoformat") else changed
    return {
        "version": f"{stamp or '-'}|{orders_today or 0}",
        "ordersToday": int(orders_today or 0),
        "updatedAt": stamp,
    }
