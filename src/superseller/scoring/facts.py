"""Reading what the score needs: listing rows and their last 30 local days of metrics,
with the tenant's medians to compare against."""

from __future__ import annotations

from datetime import date, timedelta
from statistics import median

from sqlalchemy import Engine, func, select

from superseller.db.schema import listing_metrics_daily, listings
from superseller.market.prices import price_bands
from superseller.scoring.criteria import SALES_WINDOW_DAYS, ListingFacts, PriceBand
from superseller.scoring.media import media_verdict

WINDOW_DAYS = SALES_WINDOW_DAYS


def load_facts(
    engine: Engine, tenant_id: str, end: date, listing_ids: list[int] | None = None
) -> list[ListingFacts]:
    """Facts for the tenant's listings (or some of them); medians always over all."""
    m = listing_metrics_daily
    window = (
        m.c.tenant_id == tenant_id,
        m.c.date.between(end - timedelta(days=WINDOW_DAYS - 1), end),
    )
    per_listing = (
        select(
            m.c.listing_id,
            func.sum(m.c.visits).label("visits"),
            func.sum(m.c.orders).label("orders"),
            func.sum(m.c.units_sold).label("units"),
        )
        .where(*window)
        .group_by(m.c.listing_id)
    )
    with engine.connect() as conn:
        sums = {
            r.listing_id: (r.visits, int(r.orders or 0), int(r.units or 0))
            for r in conn.execute(per_listing)
        }
        q = select(listings).where(listings.c.tenant_id == tenant_id).order_by(listings.c.id)
        if listing_ids is not None:
            q = q.where(listings.c.id.in_(listing_ids))
        rows = conn.execute(q).all()
    known = [(v, o) for v, o, _ in sums.values() if v is not None]
    median_visits = median(v for v, _ in known) if known else None
    rates = [o / v for v, o in known if v]
    median_conversion = median(rates) if rates else None
    bands = price_bands(engine, tenant_id, listing_ids)
    out = []
    for r in rows:
        band = bands.get(r.id)
        visits, orders, units = sums.get(r.id, (None, 0, 0))
        out.append(
            ListingFacts(
                listing_id=r.id,
                external_id=r.external_id,
                title=r.title,
                attributes_count=r.attributes_count,
                listing_type=r.listing_type,
                price=float(r.price) if r.price is not None else None,
                media=media_verdict(r.has_clips, r.has_clips_override, r.pictures_count),
                status=r.status,
                stock=r.available_quantity,
                visits_30d=None if visits is None else int(visits),
                orders_30d=orders,
                median_visits=float(median_visits) if median_visits is not None else None,
                median_conversion=median_conversion,
                price_band=PriceBand(band.median, band.q1, band.q3, band.count) if band else None,
                units_30d=units,
            )
        )
    return out
