"""harvest_sources: what to collect per tenant.

By default, for every active listing with a category: Mercado Livre's public search in that
category for the listing's title keywords, and the category's trends. Sources can be added
by hand and disabled (a disabled default stays disabled: it is never re-created)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import Engine, insert, select, update

from superseller.db.schema import harvest_sources, listings
from superseller.jobs.clock import Clock, SystemClock

KINDS = ("search", "trends")
MAX_KEYWORDS = 3
_STOP = {"com", "para", "de", "da", "do", "kit", "sem", "e", "em", "the"}


class SourceError(ValueError):
    """A source that cannot be added or found; the message is shown as is."""


def keywords(title: str) -> str:
    """The first few meaningful words of a title, lower case, as a search query."""
    words = [w for w in re.findall(r"[\w-]+", title.lower()) if len(w) > 2 and w not in _STOP]
    return " ".join(words[:MAX_KEYWORDS])


def source_key(kind: str, category_id: str | None, query: str | None) -> str:
    return f"{kind}:{category_id or ''}:{_fold(query or '')}"


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", " ".join(text.lower().split()))


def ensure_defaults(engine: Engine, tenant_id: str, clock: Clock | None = None) -> int:
    """Create the default sources of the tenant's active listings; returns how many."""
    now = (clock or SystemClock()).now()
    with engine.begin() as conn:
        rows = conn.execute(
            select(listings.c.id, listings.c.title, listings.c.category_id).where(
                listings.c.tenant_id == tenant_id,
                listings.c.status == "active",
                listings.c.category_id.is_not(None),
            )
        ).all()
        have = set(
            conn.execute(
                select(harvest_sources.c.key).where(harvest_sources.c.tenant_id == tenant_id)
            ).scalars()
        )
        new = []
        for r in rows:
            for kind, query in (("search", keywords(r.title)), ("trends", None)):
                key = source_key(kind, r.category_id, query)
                if key in have:
                    continue
                have.add(key)
                new.append(
                    dict(
                        tenant_id=tenant_id,
                        kind=kind,
                        category_id=r.category_id,
                        query=query,
                        listing_id=r.id,
                        origin="default",
                        enabled=True,
                        key=key,
                        created_at=now,
                        updated_at=now,
                    )
                )
        if new:
            conn.execute(insert(harvest_sources), new)
    return len(new)


def add(
    engine: Engine,
    tenant_id: str,
    kind: str,
    category_id: str | None,
    query: str | None,
    clock: Clock | None = None,
) -> dict[str, Any]:
    if kind not in KINDS:
        raise SourceError(f"kind must be one of {', '.join(KINDS)}")
    if kind == "trends" and not category_id:
        raise SourceError("a trends source needs a category")
    if kind == "search" and not (category_id or query):
        raise SourceError("a search source needs a category or a query")
    if query is not None and not 1 <= len(query) <= 200:
        raise SourceError("query must be 1 to 200 characters")
    if category_id is not None and not re.fullmatch(r"[A-Z]{3}\d{1,12}", category_id):
        raise SourceError("category must look like MLB1055")
    now = (clock or SystemClock()).now()
    key = source_key(kind, category_id, query)
    with engine.begin() as conn:
        row = conn.execute(
            select(harvest_sources).where(
                harvest_sources.c.tenant_id == tenant_id, harvest_sources.c.key == key
            )
        ).first()
        if row is not None:
            conn.execute(
                update(harvest_sources)
                .where(harvest_sources.c.id == row.id)
                .values(enabled=True, updated_at=now)
            )
            sid = row.id
        else:
            sid = conn.execute(
                insert(harvest_sources)
                .values(
                    tenant_id=tenant_id,
                    kind=kind,
                    category_id=category_id,
                    query=_fold(query) if query else None,
                    origin="manual",
                    enabled=True,
                    key=key,
                    created_at=now,
                    updated_at=now,
                )
                .returning(harvest_sources.c.id)
            ).scalar()
    return get(engine, tenant_id, sid)


def get(engine: Engine, tenant_id: str, source_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            select(harvest_sources).where(
                harvest_sources.c.id == source_id, harvest_sources.c.tenant_id == tenant_id
            )
        ).first()
    if row is None:
        raise SourceError(f"harvest source {source_id} not found for tenant {tenant_id}")
    return view(row)


def set_enabled(
    engine: Engine, tenant_id: str, source_id: int, enabled: bool, clock: Clock | None = None
) -> dict[str, Any]:
    get(engine, tenant_id, source_id)
    with engine.begin() as conn:
        conn.execute(
            update(harvest_sources)
            .where(harvest_sources.c.id == source_id)
            .values(enabled=enabled, updated_at=(clock or SystemClock()).now())
        )
    return get(engine, tenant_id, source_id)


def list_sources(engine: Engine, tenant_id: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(harvest_sources)
            .where(harvest_sources.c.tenant_id == tenant_id)
            .order_by(harvest_sources.c.id)
        ).all()
    return [view(r) for r in rows]


def view(row) -> dict[str, Any]:
    return {
        "id": row.id,
        "tenantId": row.tenant_id,
        "kind": row.kind,
        "categoryId": row.category_id,
        "query": row.query,
        "listingId": row.listing_id,
        "origin": row.origin,
        "enabled": row.enabled,
        "lastHarvestedAt": row.last_harvested_at.isoformat() if row.last_harvested_at else None,
    }
