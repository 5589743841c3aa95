"""Comparable items, the reference price band, and competitor price drops.

Comparables of a listing: the COMPARABLE_K harvested items most similar to its title
(cosine >= SIMILARITY_MIN) in its category. Their latest captured prices give the band:
median, interquartile range and count. Below scoring.criteria.MIN_COMPARABLES the score says
"sem referência".
A drop: a comparable whose latest capture is at least DROP_MIN lower than its previous
capture (an earlier day) -> one alert per tenant, listing, item and capture day.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median, quantiles

from sqlalchemy import Engine, func, select

from superseller.db.schema import embeddings, harvested_content, price_drop_alerts
from superseller.jobs.clock import Clock, SystemClock
from superseller.market.embeddings import comparables
from superseller.market.harvest import insert_ignore

COMPARABLE_K = 30
SIMILARITY_MIN = 0.5
DROP_MIN = 0.10


@dataclass(frozen=True)
class Band:
    median: float
    q1: float
    q3: float
    count: int


def _captures(engine: Engine, tenant_id: str, item_ids: list[str]) -> dict[str, list]:
    """Per item, its (day, price) captures, one per day (the lowest that day), latest first."""
    hc = harvested_content
    ids = sorted(set(item_ids))
    rows = []
    with engine.connect() as conn:
        for i in range(0, len(ids), 500):
            rows += conn.execute(
                select(hc.c.item_id, hc.c.captured_day, func.min(hc.c.price).label("price"))
                .where(
                    hc.c.tenant_id == tenant_id,
                    hc.c.item_id.in_(ids[i : i + 500]),
                    hc.c.kind == "item",
                    hc.c.price.is_not(None),
                )
                .group_by(hc.c.item_id, hc.c.captured_day)
            ).all()
    out: dict[str, list] = {}
    for r in rows:
        out.setdefault(r.item_id, []).append((r.captured_day, float(r.price)))
    for caps in out.values():
        caps.sort(key=lambda c: str(c[0]), reverse=True)
    return out


def band_of(prices: list[float]) -> Band | None:
    if not prices:
        return None
    if len(prices) == 1:
        return Band(prices[0], prices[0], prices[0], 1)
    q1, _, q3 = quantiles(prices, n=4, method="inclusive")
    return Band(round(median(prices), 2), round(q1, 2), round(q3, 2), len(prices))


def price_bands(
    engine: Engine, tenant_id: str, listing_ids: list[int] | None = None
) -> dict[int, Band]:
    """The reference band of each listing that has at least one comparable."""
    if not _has_items(engine, tenant_id):
        return {}  # no market data yet: one query
    comps = comparables(engine, tenant_id, COMPARABLE_K, SIMILARITY_MIN, listing_ids)
    caps = _captures(engine, tenant_id, [i for c in comps.values() for i, _ in c])
    out: dict[int, Band] = {}
    for lid, items in comps.items():
        band = band_of([caps[i][0][1] for i, _ in items if caps.get(i)])
        if band is not None:
            out[lid] = band
    return out


def _has_items(engine: Engine, tenant_id: str) -> bool:
    e = embeddings
    with engine.connect() as conn:
        return (
            conn.execute(
                select(e.c.id).where(e.c.tenant_id == tenant_id, e.c.subject == "item").limit(1)
            ).first()
            is not None
        )


def generate_drops(engine: Engine, tenant_id: str, clock: Clock | None = None) -> dict:
    now = (clock or SystemClock()).now()
    if not _has_items(engine, tenant_id):
        return {"drops": 0, "alertsCreated": 0}
    comps = comparables(engine, tenant_id, COMPARABLE_K, SIMILARITY_MIN)
    caps = _captures(engine, tenant_id, [i for c in comps.values() for i, _ in c])
    rows = []
    for lid, items in sorted(comps.items()):
        for item_id, similarity in items:
            c = caps.get(item_id, [])
            if len(c) < 2:
                continue
            (day, new), (prev_day, old) = c[0], c[1]
            if old > 0 and (old - new) / old >= DROP_MIN:
                rows.append(
                    dict(
                        tenant_id=tenant_id,
                        listing_id=lid,
                        item_id=item_id,
                        title="",
                        old_price=old,
                        new_price=new,
                        drop_pct=round((old - new) / old, 4),
                        previous_day=prev_day,
                        captured_day=day,
                        similarity=round(similarity, 4),
                        created_at=now,
                    )
                )
    if rows:
        titles = _titles(engine, tenant_id, [r["item_id"] for r in rows])
        for r in rows:
            r["title"] = titles.get(r["item_id"], r["item_id"])
    created = insert_ignore(
        engine,
        price_drop_alerts,
        rows,
        ["tenant_id", "listing_id", "item_id", "captured_day"],
    )
    return {"drops": len(rows), "alertsCreated": created}


def _titles(engine: Engine, tenant_id: str, item_ids: list[str]) -> dict[str, str]:
    hc = harvested_content
    with engine.connect() as conn:
        return {
            r.item_id: r.title
            for r in conn.execute(
                select(hc.c.item_id, hc.c.title).where(
                    hc.c.tenant_id == tenant_id, hc.c.item_id.in_(set(item_ids))
                )
            )
        }


def alerts(engine: Engine, tenant_id: str, listing_id: int | None = None, limit: int = 100):
    a = price_drop_alerts
    q = select(a).where(a.c.tenant_id == tenant_id).order_by(a.c.created_at.desc(), a.c.id.desc())
    if listing_id is not None:
        q = q.where(a.c.listing_id == listing_id)
    with engine.connect() as conn:
        rows = conn.execute(q.limit(limit)).all()
    return [
        {
            "id": r.id,
            "listingId": r.listing_id,
            "itemId": r.item_id,
            "title": r.title,
            "oldPrice": float(r.old_price),
            "newPrice": float(r.new_price),
            "dropPct": r.drop_pct,
            "previousDay": str(r.previous_day),
            "capturedDay": str(r.captured_day),
            "similarity": r.similarity,
        }
        for r in rows
    ]


def drop_summary(engine: Engine, tenant_id: str, since) -> dict[str, int]:
    """Distinct competitor items that dropped their price since a day, and listings hit."""
    a = price_drop_alerts
    with engine.connect() as conn:
        row = conn.execute(
            select(
                func.count(func.distinct(a.c.item_id)).label("competitors"),
                func.count(func.distinct(a.c.listing_id)).label("listings"),
            ).where(a.c.tenant_id == tenant_id, a.c.captured_day >= since)
        ).one()
    return {"competitors": int(row.competitors or 0), "listings": int(row.listings or 0)}


def drops_by_listing(engine: Engine, tenant_id: str, since) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for d in alerts(engine, tenant_id, limit=500):
        if d["capturedDay"] >= since.isoformat():
            out.setdefault(d["listingId"], []).append(d)
    return out
