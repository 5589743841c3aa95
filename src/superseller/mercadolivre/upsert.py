"""Writing synced data: upserts that leave unchanged rows untouched (a second sync
changes nothing), and that never turn a known visit count into an unknown one."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update

from superseller.db.schema import listing_visits_daily, listings, order_items, orders
from superseller.db.upsert import insert_on_conflict
from superseller.jobs.cron import zone

CHUNK = 500


def upsert(
    conn: Connection,
    table,
    rows: list[dict],
    keys: list[str],
    columns: list[str],
    newer: str | None = None,
) -> int:
    """Insert or update `columns` where they differ; returns rows written.

    `newer`: a column holding the source's own update time; a row whose time is older
    than the stored one is not written (either one unknown, NULL: written)."""
    if not rows:
        return 0
    insert = functools.partial(insert_on_conflict, conn)
    written = 0
    for i in range(0, len(rows), CHUNK):
        stmt = insert(table).values(rows[i : i + CHUNK])
        where = or_(*[table.c[c].is_distinct_from(stmt.excluded[c]) for c in columns])
        if newer is not None:
            where = and_(
                where,
                or_(
                    table.c[newer].is_(None),
                    stmt.excluded[newer].is_(None),
                    stmt.excluded[newer] >= table.c[newer],
                ),
            )
        stmt = stmt.on_conflict_do_update(
            index_elements=keys,
            set_={c: stmt.excluded[c] for c in columns + ["updated_at"] if c in table.c},
            where=where,
        )
        written += max(conn.execute(stmt).rowcount, 0)
    return written


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def lenient_time(value: Any) -> datetime | None:
    """A timestamp from a loosely typed body: missing, garbled or zone-less is unknown."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else None


def _money(v) -> Decimal | None:
    return None if v is None else Decimal(str(v)).quantize(Decimal("0.01"))


LISTING_COLUMNS = [
    "title",
    "price",
    "currency",
    "status",
    "available_quantity",
    "sold_quantity",
    "permalink",
    "thumbnail",
    "pictures_count",
    "listing_type",
    "category_id",
    "health",
    "attributes_count",
    "video_id",
    "date_created",
    "created_local_date",
    "account_id",
    "ml_updated_at",
]


def listing_rows(
    bodies: list[dict], tenant_id: str, account_id: int, tz: str, now: datetime
) -> list[dict]:
    rows = []
    for b in bodies:
        created = parse_time(b.get("date_created") or b.get("start_time"))
        rows.append(
            {
                "tenant_id": tenant_id,
                "account_id": account_id,
                "external_id": b["id"],
                "title": (b.get("title") or "")[:300],
                "price": _money(b.get("price")),
                "currency": b.get("currency_id"),
                "status": b.get("status") or "unknown",
                "available_quantity": b.get("available_quantity"),
                "sold_quantity": b.get("sold_quantity"),
                "permalink": b.get("permalink"),
                "thumbnail": b.get("thumbnail"),
                # Absent (an `attributes=` projection, the cross-border item shape) is
                # unknown, NULL: never "no pictures".
                "pictures_count": _count(b, "pictures"),
                "listing_type": b.get("listing_type_id"),
                "category_id": b.get("category_id"),
                "health": b.get("health"),
                "attributes_count": _count(b, "attributes"),
                "video_id": b.get("video_id"),
                "date_created": created,
                "created_local_date": created.astimezone(zone(tz)).date() if created else None,
                "ml_updated_at": lenient_time(b.get("last_updated")),
                "created_at": now,
                "updated_at": now,
            }
        )
    return rows


def save_listings(conn: Connection, rows: list[dict]) -> int:
    """Upsert listing rows (from `listing_rows`); a body older than the stored one (by
    Mercado Livre's `last_updated`) is not written: an out-of-order notification or a
    sync page fetched before an edit never rolls a listing back. Returns rows written."""
    return upsert(
        conn, listings, rows, ["tenant_id", "external_id"], LISTING_COLUMNS, newer="ml_updated_at"
    )


ORDER_COLUMNS = [
    "status",
    "date_created",
    "date_created_raw",
    "date_closed",
    "created_local_date",
    "total_amount",
    "paid_amount",
    "currency",
    "buyer_id",
    "last_updated",
]


def save_orders(
    conn: Connection, tenant_id: str, tz: str, found: list[dict], now: datetime
) -> tuple[int, set[date]]:
    """Upsert orders and their items; returns (orders written, local days touched)."""
    rows, days = [], set()
    for o in found:
        created = parse_time(o["date_created"])
        local_day = created.astimezone(zone(tz)).date()
        days.add(local_day)
        rows.append(
            {
                "tenant_id": tenant_id,
                "external_id": str(o["id"]),
                "status": o["status"],
                "date_created": created,
                "date_created_raw": o["date_created"],
                "date_closed": parse_time(o.get("date_closed")),
                "created_local_date": local_day,
                "total_amount": _money(o.get("total_amount")),
                "paid_amount": _money(o.get("paid_amount")),
                "currency": o.get("currency_id"),
                "buyer_id": _int((o.get("buyer") or {}).get("id")),
                # `date_last_updated` is what `order.date_last_updated.from` filters on.
                "last_updated": parse_time(o.get("date_last_updated") or o.get("last_updated")),
                "created_at": now,
                "updated_at": now,
            }
        )
    written = upsert(conn, orders, rows, ["tenant_id", "external_id"], ORDER_COLUMNS)
    ids = (
        dict(
            conn.execute(
                select(orders.c.external_id, orders.c.id).where(
                    orders.c.tenant_id == tenant_id,
                    orders.c.external_id.in_([r["external_id"] for r in rows]),
                )
            ).all()
        )
        if rows
        else {}
    )
    listing_ids = dict(
        conn.execute(
            select(listings.c.external_id, listings.c.id).where(listings.c.tenant_id == tenant_id)
        ).all()
    )
    items = []
    for o in found:
        for line, it in enumerate(o.get("order_items") or []):
            ext = it["item"]["id"]
            items.append(
                {
                    "order_id": ids[str(o["id"])],
                    "line": line,
                    "listing_external_id": ext,
                    "listing_id": listing_ids.get(ext),
                    "title": (it["item"].get("title") or "")[:300],
                    "quantity": int(it["quantity"]),
                    "unit_price": _money(it["unit_price"]),
                    "currency": it.get("currency_id") or o.get("currency_id"),
                }
            )
    upsert(
        conn,
        order_items,
        items,
        ["order_id", "line"],
        ["listing_external_id", "listing_id", "title", "quantity", "unit_price", "currency"],
    )
    return written, days


def link_order_items(conn: Connection, tenant_id: str) -> int:
    """Attach order lines to listings synced after them (an item fetched because it sold)."""
    match = (
        select(listings.c.id)
        .where(
            listings.c.tenant_id == tenant_id,
            listings.c.external_id == order_items.c.listing_external_id,
        )
        .scalar_subquery()
    )
    stmt = (
        update(order_items)
        .where(
            order_items.c.listing_id.is_(None),
            order_items.c.order_id.in_(select(orders.c.id).where(orders.c.tenant_id == tenant_id)),
            match.is_not(None),
        )
        .values(listing_id=match)
    )
    return max(conn.execute(stmt).rowcount, 0)


def visit_rows(
    tenant_id: str, listing_id: int, counts: dict[str, int], first: date, last: date, now: datetime
) -> list[dict]:
    """One row per day of a successful answer; a day missing from it is a real 0."""
    out = []
    d = first
    while d <= last:
        out.append(
            {
                "tenant_id": tenant_id,
                "listing_id": listing_id,
                "date": d,
                "visits": counts.get(d.isoformat(), 0),
                "fetched_at": now,
            }
        )
        d += timedelta(days=1)
    return out


def save_visits(conn: Connection, rows: list[dict]) -> int:
    return upsert(conn, listing_visits_daily, rows, ["tenant_id", "listing_id", "date"], ["visits"])


def _count(body: dict, key: str) -> int | None:
    value = body.get(key)
    return len(value) if isinstance(value, list) else None


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def drop_older(conn: Connection, tenant_id: str, found: list[dict]) -> list[dict]:
    """The orders that are not older than what is stored (by `date_last_updated`): a late
    answer or an out-of-order notification never overwrites newer data with older."""
    if not found:
        return []
    stored = dict(
        conn.execute(
            select(orders.c.external_id, orders.c.last_updated).where(
                orders.c.tenant_id == tenant_id,
                orders.c.external_id.in_([str(o["id"]) for o in found]),
            )
        ).all()
    )
    kept = []
    for o in found:
        have = stored.get(str(o["id"]))
        new = parse_time(o.get("date_last_updated") or o.get("last_updated"))
        if have is None or new is None or new >= have:
            kept.append(o)
    return kept


def order_pairs(conn: Connection, tenant_id: str, external_ids: list[str]) -> tuple[set, set]:
    """(listing id, local day) pairs of these stored orders' lines, and their local days."""
    if not external_ids:
        return set(), set()
    rows = conn.execute(
        select(order_items.c.listing_id, orders.c.created_local_date)
        .select_from(orders.outerjoin(order_items, order_items.c.order_id == orders.c.id))
        .where(orders.c.tenant_id == tenant_id, orders.c.external_id.in_(external_ids))
    ).all()
    days = {_as_date(d) for _, d in rows}
    return {(lid, _as_date(d)) for lid, d in rows if lid is not None}, days


def _as_date(d) -> date:
    return date.fromisoformat(d) if isinstance(d, str) else d


def stored_listing_ids(engine, tenant_id: str, wanted: set[str]) -> set[str]:
    """Which of these Mercado Livre item ids the tenant already has as listings."""
    if not wanted:
        return set()
    with engine.connect() as conn:
        return set(
            conn.execute(
                select(listings.c.external_id).where(
                    listings.c.tenant_id == tenant_id,
                    listings.c.external_id.in_(sorted(wanted)),
                )
            ).scalars()
        )
