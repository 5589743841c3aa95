"""A small harvested market for the market tests: items of one search source, on a day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import insert

from superseller.db.schema import harvested_content
from superseller.market import sources
from tests.support import marketplace as mk


def put_items(engine, source_id, items, day, category="MLB1010"):
    """items: (item id, title, price)."""
    with engine.begin() as conn:
        conn.execute(
            insert(harvested_content),
            [
                dict(
                    tenant_id="t1",
                    source_id=source_id,
                    kind="item",
                    item_id=i,
                    title=t,
                    category_id=category,
                    price=Decimal(str(p)),
                    currency="BRL",
                    captured_at=datetime.combine(day, datetime.min.time(), UTC),
                    captured_day=day,
                )
                for i, t, p in items
            ],
        )


def market(engine, n_items=8, price=100.0):
    mk.tenant(engine)
    src = sources.add(engine, "t1", "search", "MLB1010", "garrafa termica")["id"]
    titles = ["Garrafa Térmica Inox 1L", "Garrafa Termica Inox 1 Litro", "Garrafa Térmica 1L Inox"]
    put_items(
        engine,
        src,
        [(f"MLB9{k:03d}", titles[k % 3] + f" cor {k}", price + k % 3) for k in range(n_items)],
        date(2026, 3, 9),
    )
    # the same words in another category: never a comparable
    put_items(engine, src, [("MLB8000", "Garrafa Térmica Inox", 10.0)], date(2026, 3, 9), "MLB1020")
    return src
