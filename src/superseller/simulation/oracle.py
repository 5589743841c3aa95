"""What `listing_metrics_daily` must hold, computed from the sandbox's own records.

Independent of the product: no product module is called. The truth is the sandbox's
deterministic order and visit generators (`sandbox.data`) with the orders changed since
(cancellations), counted by the rules the seed states: an order counts on its creation
day in America/Sao_Paulo when its status is `paid` or `partially_refunded`; revenue is
quantity x unit price; visits are the listing's unique visits of the local day. The
product's table is read with plain SQL.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, text

from superseller.sandbox import data
from superseller.sandbox.app import SandboxState

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
COUNTED = ("paid", "partially_refunded")
Figures = tuple[int, int, float, int]  # orders, units, revenue, visits


def expected(state: SandboxState, first: date, last: date, now: datetime) -> dict:
    """{(item id, day): (orders, units, revenue, visits)} for days first..last, non-zero only."""
    spec = state.spec
    start = datetime(first.year, first.month, first.day, tzinfo=SAO_PAULO)
    end = datetime(last.year, last.month, last.day, tzinfo=SAO_PAULO) + timedelta(days=1)
    sales: dict[tuple[str, date], list] = defaultdict(lambda: [set(), 0, 0.0])
    for raw in data.orders_between(spec, start, end, now):
        change = state.order_changes.get(raw["id"])
        status = change[0] if change else raw["status"]
        if status not in COUNTED:
            continue
        day = raw["_created"].astimezone(SAO_PAULO).date()
        for line in raw["order_items"]:
            acc = sales[(line["item"]["id"], day)]
            acc[0].add(raw["id"])
            acc[1] += line["quantity"]
            acc[2] += line["quantity"] * line["unit_price"]
    out: dict[tuple[str, date], Figures] = {}
    n_days = (last - first).days + 1
    for i in range(spec.listings):
        ext = data.item_id(spec, i)
        for k in range(n_days):
            day = first + timedelta(days=k)
            visits = data.visits_on(spec, i, day, now)
            s = sales.get((ext, day))
            if visits or s:
                out[(ext, day)] = (
                    len(s[0]) if s else 0,
                    s[1] if s else 0,
                    round(s[2], 2) if s else 0.0,
                    visits,
                )
    return out


def stored(engine: Engine, tenant_id: str, first: date, last: date) -> dict:
    """The product's figures for the same days, non-zero only (plain SQL)."""
    sql = text(
        "SELECT l.external_id, m.date, m.orders, m.units_sold, m.revenue, m.visits "
        "FROM listing_metrics_daily m JOIN listings l ON l.id = m.listing_id "
        "WHERE m.tenant_id = :t AND m.date BETWEEN :a AND :b"
    )
    out: dict[tuple[str, date], Figures] = {}
    with engine.connect() as conn:
        for ext, day, orders, units, revenue, visits in conn.execute(
            sql, {"t": tenant_id, "a": first, "b": last}
        ):
            if isinstance(day, str):
                day = date.fromisoformat(day)
            fig = (int(orders), int(units), round(float(revenue), 2), int(visits or 0))
            if any(fig):
                out[(ext, day)] = fig
    return out


def max_date(engine: Engine, tenant_id: str) -> date | None:
    with engine.connect() as conn:
        value = conn.execute(
            text("SELECT MAX(date) FROM listing_metrics_daily WHERE tenant_id = :t"),
            {"t": tenant_id},
        ).scalar()
    return date.fromisoformat(value) if isinstance(value, str) else value


@dataclass
class Verdict:
    ok: bool
    cause: str = ""
    wrong: int = 0  # figures that differ from the oracle


def check_tenant(engine: Engine, tenant_id: str, state: SandboxState, now: datetime) -> Verdict:
    """At a morning check: metrics up to today (partial), and the last 30 full days exact."""
    today = now.astimezone(SAO_PAULO).date()
    yesterday = today - timedelta(days=1)
    top = max_date(engine, tenant_id)
    if top is None or top < today:
        return Verdict(False, f"metrics end {top or 'nowhere'}, today's partial day missing")
    first = today - timedelta(days=30)
    want = expected(state, first, yesterday, now)
    have = stored(engine, tenant_id, first, yesterday)
    wrong = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))
    if wrong:
        ext, day = wrong[0]
        return Verdict(
            False,
            f"{len(wrong)} figure(s) differ, first {ext} {day}: "
            f"stored {have.get((ext, day))} expected {want.get((ext, day))}",
            len(wrong),
        )
    return Verdict(True)
