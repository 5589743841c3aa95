"""Why revenue changed: an exact additive decomposition, and the listings behind it.

Revenue is visits x conversion x ticket (R = V · O/V · R/O). Between the previous period (0)
and the current one (1) the change splits with the logarithmic mean Divisia index (LMDI-I):

    effect_x = L(R1, R0) · ln(x1 / x0),   L(a, b) = (a − b) / (ln a − ln b),  L(a, a) = a

and the effects add up to R1 − R0 exactly (the logs of the factors add up to ln(R1/R0)).
Rounded to cents, the rounding residue goes to the largest effect, so the parts a seller
reads sum to the change they read. When visits are unknown on any day of either period, the
split is orders x ticket instead (R = O · R/O): no visits effect is invented from gaps. A
period with zero revenue has no logarithm: the change is given, its split is not.

The listings that moved revenue most are ranked by their own change (the listing changes add
up to the total). Every sentence is built only from the figures returned beside it.
"""

from __future__ import annotations

import math
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Engine, func, select

from superseller.db.schema import listing_metrics_daily, listings
from superseller.metrics.queries import overview, previous_period
from superseller.ptbr import brl, number, signed_brl, signed_pct

CENT = Decimal("0.01")
LABELS = {
    "visits": ("mais visitas", "menos visitas"),
    "conversion": ("conversão maior", "conversão menor"),
    "orders": ("mais pedidos", "menos pedidos"),
    "ticket": ("ticket médio maior", "ticket médio menor"),
}
NAMES = {"visits": "visitas", "conversion": "conversão", "orders": "pedidos", "ticket": "ticket"}


def logmean(a: float, b: float) -> float:
    if a == b:
        return a
    return (a - b) / (math.log(a) - math.log(b))


def lmdi(r1: float, r0: float, factors: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Effects of each factor (current, previous) on r1 − r0; all values must be > 0."""
    weight = logmean(r1, r0)
    return {k: weight * math.log(x1 / x0) for k, (x1, x0) in factors.items()}


def to_cents(effects: dict[str, float], total: Decimal) -> dict[str, Decimal]:
    """Round each effect to cents so that the rounded parts sum exactly to `total`."""
    out = {k: Decimal(str(v)).quantize(CENT, ROUND_HALF_UP) for k, v in effects.items()}
    residue = total - sum(out.values(), Decimal(0))
    if residue and out:
        biggest = max(out, key=lambda k: abs(out[k]))
        out[biggest] += residue
    return out


def _pct(cur: float, prev: float) -> float | None:
    return round((cur - prev) / prev * 100, 1) if prev else None


def _factors(revenue: float, orders: int, visits: int | None) -> dict[str, float] | None:
    if revenue <= 0 or orders <= 0:
        return None
    out = {"orders": float(orders), "ticket": revenue / orders}
    if visits:
        out = {"visits": float(visits), "conversion": orders / visits, "ticket": revenue / orders}
    return out


def decompose(cur: dict, prev: dict, with_visits: bool) -> dict[str, Decimal] | None:
    """cur/prev: {revenue, orders, visits}; None when the split is not defined."""
    f1 = _factors(cur["revenue"], cur["orders"], cur["visits"] if with_visits else None)
    f0 = _factors(prev["revenue"], prev["orders"], prev["visits"] if with_visits else None)
    if f1 is None or f0 is None or f1.keys() != f0.keys():
        return None
    raw = lmdi(cur["revenue"], prev["revenue"], {k: (f1[k], f0[k]) for k in f1})
    total = Decimal(str(cur["revenue"])) - Decimal(str(prev["revenue"]))
    return to_cents(raw, total.quantize(CENT))


def _listing_figures(engine: Engine, tenant_id: str, start: date, end: date) -> dict[int, dict]:
    lm = listing_metrics_daily
    stmt = (
        select(
            lm.c.listing_id,
            listings.c.title,
            listings.c.external_id,
            func.sum(lm.c.revenue).label("revenue"),
            func.sum(lm.c.orders).label("orders"),
            func.sum(lm.c.visits).label("visits"),
            func.count(lm.c.visits).label("visit_days"),
            func.count().label("days"),
        )
        .join(listings, listings.c.id == lm.c.listing_id)
        .where(lm.c.tenant_id == tenant_id, lm.c.date.between(start, end))
        .group_by(lm.c.listing_id, listings.c.title, listings.c.external_id)
    )
    with engine.connect() as conn:
        return {
            r.listing_id: {
                "title": r.title,
                "externalId": r.external_id,
                "revenue": float(r.revenue or 0),
                "orders": int(r.orders or 0),
                # visits count only when known on every day of the listing's rows
                "visits": int(r.visits) if r.visit_days == r.days and r.days else None,
            }
            for r in conn.execute(stmt)
        }


def _driver(effects: dict[str, Decimal], total: Decimal) -> tuple[str, Decimal] | None:
    """The effect that moved revenue most in the direction it went."""
    same = {k: v for k, v in effects.items() if v and (v > 0) == (total > 0)}
    if not same or not total:
        return None
    key = max(same, key=lambda k: abs(same[k]))
    return key, same[key]


def _headline(change_pct: float | None, total: Decimal, effects: dict | None) -> str:
    pct = f" {signed_pct(change_pct)}" if change_pct is not None else ""
    head = f"Receita{pct} ({signed_brl(float(total))})"
    if not total:
        return f"Receita sem variação ({brl(0)})."
    if effects is None:
        return f"{head}: sem base para separar visitas, conversão e ticket (receita zero em um dos períodos)."
    parts = []
    driver = _driver(effects, total)
    if driver:
        key, value = driver
        share = float(value / total * 100)
        word = LABELS[key][0 if value > 0 else 1]
        if share <= 100:
            verb = "explica" if key in ("conversion", "ticket") else "explicam"
            parts.append(f"{word} {verb} {number(share)}% ({signed_brl(float(value))})")
        else:  # the other effects pulled the other way: "explains 1.782%" says nothing
            verb = "pesou" if key in ("conversion", "ticket") else "pesaram"
            parts.append(f"{word} {verb} mais ({signed_brl(float(value))})")
    others = [
        f"{NAMES[k]} {signed_brl(float(v))}"
        for k, v in effects.items()
        if not driver or k != driver[0]
    ]
    return f"{head}: " + "; ".join(parts + others) + "."


def _listing_sentence(item: dict) -> str:
    out = f"{item['title']}: {signed_brl(item['change'])}"
    if item["share"] is not None:
        share = item["share"]
        # Over 100%: other listings moved the other way; a percentage past 100 misleads.
        out += f" ({number(share)}% da variação)" if share <= 100 else " (mais que toda a variação)"
    v1, v0 = item["visits"], item["previousVisits"]
    if v1 is not None and v0:
        pct = (v1 - v0) / v0 * 100
        verb = "perdeu" if pct < 0 else "ganhou"
        out += f"; {verb} {number(abs(pct))}% das visitas ({number(v0)} → {number(v1)})"
    elif item["orders"] != item["previousOrders"]:
        out += f"; pedidos {number(item['previousOrders'])} → {number(item['orders'])}"
    return out + "."


def explain(engine: Engine, tenant_id: str, start: date, end: date, top: int = 5) -> dict[str, Any]:
    base = overview(engine, tenant_id, start, end, top=0)
    prev_start, prev_end = previous_period(start, end)
    out: dict[str, Any] = {
        "period": base["period"],
        "previousPeriod": base["previousPeriod"],
        "available": base["comparison"]["available"],
        "reason": base["comparison"]["reason"],
    }
    if not out["available"]:
        out["sentence"] = (
            "Sem comparação (histórico insuficiente): o período anterior não foi todo sincronizado."
        )
        out["listings"] = []
        return out
    cards = base["cards"]
    cur = {k: cards[k]["value"] for k in ("revenue", "orders", "visits")}
    prev = {k: cards[k]["previous"] for k in ("revenue", "orders", "visits")}
    # visits only when known for every listing on every day of both periods
    with_visits = (
        all(s["visits"] is not None for s in base["series"])
        and bool(prev["visits"])
        and _visits_known_every_day(engine, tenant_id, prev_start, end)
    )
    total = (Decimal(str(cur["revenue"])) - Decimal(str(prev["revenue"]))).quantize(CENT)
    effects = decompose(cur, prev, with_visits)
    out.update(
        {
            "method": "lmdi" if effects else None,
            "factors": ("visits", "conversion", "ticket") if with_visits else ("orders", "ticket"),
            "revenue": {
                "current": cur["revenue"],
                "previous": prev["revenue"],
                "change": float(total),
                "changePct": cards["revenue"]["changePct"],
            },
            "effects": {k: float(v) for k, v in effects.items()} if effects else None,
        }
    )
    if effects:
        out["effectShares"] = {
            k: (float(v / total * 100) if total else None) for k, v in effects.items()
        }
    out["sentence"] = _headline(cards["revenue"]["changePct"], total, effects)

    now_l = _listing_figures(engine, tenant_id, start, end)
    then_l = _listing_figures(engine, tenant_id, prev_start, prev_end)
    items = []
    for lid in now_l.keys() | then_l.keys():
        a = now_l.get(lid) or {**then_l[lid], "revenue": 0.0, "orders": 0, "visits": None}
        b = then_l.get(lid) or {**a, "revenue": 0.0, "orders": 0, "visits": None}
        change = float((Decimal(str(a["revenue"])) - Decimal(str(b["revenue"]))).quantize(CENT))
        if not change:
            continue
        item = {
            "listingId": lid,
            "externalId": a["externalId"],
            "title": a["title"],
            "revenue": a["revenue"],
            "previousRevenue": b["revenue"],
            "change": change,
            "share": round(change / float(total) * 100, 1) if total else None,
            "orders": a["orders"],
            "previousOrders": b["orders"],
            "visits": a["visits"],
            "previousVisits": b["visits"],
        }
        fx = decompose(a, b, with_visits=a["visits"] is not None and b["visits"] is not None)
        item["effects"] = {k: float(v) for k, v in fx.items()} if fx else None
        items.append(item)
    sign = -1 if total < 0 else 1
    items.sort(key=lambda i: (-sign * i["change"], i["listingId"]))
    for item in items[:top]:
        item["sentence"] = _listing_sentence(item)
    out["listings"] = items[:top]
    return out


def _visits_known_every_day(engine: Engine, tenant_id: str, start: date, end: date) -> bool:
    """Every listing-day of the range has known visits (the tenant's daily sum of visits
    skips unknown ones, so it alone cannot tell)."""
    lm = listing_metrics_daily
    with engine.connect() as conn:
        unknown = conn.execute(
            select(lm.c.listing_id)
            .where(
                lm.c.tenant_id == tenant_id, lm.c.date.between(start, end), lm.c.visits.is_(None)
            )
            .limit(1)
        ).first()
    return unknown is None
