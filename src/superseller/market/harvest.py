"""Job `harvest`: collect what each enabled harvest source points at.

Search sources: up to SEARCH_LIMIT competitor items (id, title, price, currency, seller,
sold quantity where public); trends sources: the category's trending keywords. Rows are
unique per (source, item, UTC day): a second harvest on the same day adds nothing. Rows
older than the job-log retention are deleted. Every request goes through the sync's
rate-limited, retrying client.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, delete, select, update

from superseller.db.schema import harvest_sources, harvested_content, listings
from superseller.db.upsert import insert_on_conflict
from superseller.jobs import JobContext
from superseller.market.sources import ensure_defaults
from superseller.mercadolivre.errors import MLError

SEARCH_LIMIT = 50


def insert_ignore(engine: Engine, table, rows: list[dict], keys: list[str]) -> int:
    """Insert rows, skipping those that collide on `keys`; returns how many were new."""
    if not rows:
        return 0
    with engine.begin() as conn:
        stmt = insert_on_conflict(conn, table).on_conflict_do_nothing(index_elements=keys)
        # Parameters apart (SQLAlchemy batches them: "insertmanyvalues"), not compiled into
        # one statement per call; rowcount is not reliable here, so count what came back.
        return len(conn.execute(stmt.returning(*table.primary_key.columns), rows).all())


def _source_rows(engine: Engine, tenant_id: str) -> list:
    with engine.connect() as conn:
        return conn.execute(
            select(harvest_sources)
            .where(harvest_sources.c.tenant_id == tenant_id, harvest_sources.c.enabled)
            .order_by(harvest_sources.c.id)
        ).all()


def _own_items(engine: Engine, tenant_id: str) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(
                select(listings.c.external_id).where(listings.c.tenant_id == tenant_id)
            ).scalars()
        )


async def harvest_tenant(
    ctx: JobContext, client, tenant_id: str, retention_days: int
) -> dict[str, Any]:
    engine = ctx.engine
    now = ctx.clock.now()
    day = now.date()
    created = ensure_defaults(engine, tenant_id, ctx.clock)
    sources = _source_rows(engine, tenant_id)
    own = _own_items(engine, tenant_id)
    counts = {"sources": len(sources), "sourcesCreated": created, "items": 0, "trends": 0}

    errors: list[dict] = []

    async def one(src) -> list[dict]:
        try:
            return await fetch(src)
        except MLError as exc:
            if exc.retryable or exc.status in (0, 401, 403):
                raise  # the grant, the network or a throttle: the whole run fails and retries
            errors.append({"source": src.id, "status": exc.status, "error": exc.code})
            return []  # one source the API refuses (e.g. an unknown category) spoils no other

    async def fetch(src) -> list[dict]:
        if src.kind == "trends":
            answer = await client.get(f"/trends/MLB/{src.category_id}")
            return [
                dict(
                    kind="trend",
                    item_id=t["keyword"][:300],
                    title=t["keyword"][:300],
                    rank=n,
                )
                for n, t in enumerate(answer or [])
                if t.get("keyword")
            ]
        params = {"limit": SEARCH_LIMIT, "offset": 0}
        if src.category_id:
            params["category"] = src.category_id
        if src.query:
            params["q"] = src.query
        answer = await client.get("/sites/MLB/search", params)
        out = []
        for n, r in enumerate(answer.get("results") or []):
            if not r.get("id") or r["id"] in own:  # the seller's own listings are no competitor
                continue
            price = r.get("price")
            out.append(
                dict(
                    kind="item",
                    item_id=str(r["id"]),
                    title=(r.get("title") or "")[:300],
                    category_id=r.get("category_id") or src.category_id,
                    price=Decimal(str(price)) if price is not None else None,
                    currency=r.get("currency_id"),
                    seller_id=(r.get("seller") or {}).get("id"),
                    sold_quantity=r.get("sold_quantity"),
                    rank=n,
                )
            )
        return out

    answers = await asyncio.gather(*(one(s) for s in sources))
    for src, rows in zip(sources, answers, strict=True):
        ctx.raise_if_cancelled()
        full = [
            {
                "category_id": src.category_id,
                "price": None,
                "currency": None,
                "seller_id": None,
                "sold_quantity": None,
                **r,
                "tenant_id": tenant_id,
                "source_id": src.id,
                "captured_at": now,
                "captured_day": day,
            }
            for r in rows
        ]
        new = await asyncio.to_thread(
            insert_ignore,
            engine,
            harvested_content,
            full,
            ["source_id", "item_id", "captured_day"],
        )
        counts["items" if src.kind == "search" else "trends"] += new
        ctx.add_records(new)
        with engine.begin() as conn:
            conn.execute(
                update(harvest_sources)
                .where(harvest_sources.c.id == src.id)
                .values(last_harvested_at=now)
            )
    with engine.begin() as conn:
        counts["expired"] = conn.execute(
            delete(harvested_content).where(
                harvested_content.c.tenant_id == tenant_id,
                harvested_content.c.captured_day < day - timedelta(days=retention_days),
            )
        ).rowcount
    counts["requests"] = client.requests
    counts["sourceErrors"] = errors[:20]
    return counts
