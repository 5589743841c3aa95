"""Insert marketplace rows directly, for tests that need exact fixtures."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import Engine, insert

from superseller.db.schema import (
    listing_visits_daily,
    listings,
    marketplace_accounts,
    order_items,
    orders,
)
from superseller.jobs.cron import zone
from superseller.tenants import create_tenant

NOW = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)


def tenant(engine: Engine, tid: str = "t1", tz: str = "America/Sao_Paulo") -> str:
    return create_tenant(engine, f"Loja {tid}", tz, tenant_id=tid)["id"]


def account(engine: Engine, tid: str, status: str = "connected", ml_user_id: int = 1) -> int:
    """A Mercado Livre account row (no tokens): the tenant counts as connected."""
    row = {
        "tenant_id": tid,
        "ml_user_id": ml_user_id,
        "status": status,
        "created_at": NOW,
        "updated_at": NOW,
    }
    with engine.begin() as conn:
        stmt = insert(marketplace_accounts).values(**row).returning(marketplace_accounts.c.id)
        return conn.execute(stmt).scalar()


def listing(engine: Engine, tid: str, ext: str, created: date | None, **extra) -> int:
    row = {
        "tenant_id": tid,
        "external_id": ext,
        "title": extra.pop("title", f"Produto {ext}"),
        "status": extra.pop("status", "active"),
        "created_local_date": created,
        "created_at": NOW,
        "updated_at": NOW,
        **extra,
    }
    with engine.begin() as conn:
        return conn.execute(insert(listings).values(**row).returning(listings.c.id)).scalar()


def order(
    engine: Engine,
    tid: str,
    ext: str,
    created: str,
    status: str,
    items: list[tuple[int, int, str]],
    tz: str = "America/Sao_Paulo",
) -> int:
    """`created` is ISO with offset, as Mercado Livre sends it; items are
    (listing id, quantity, unit price)."""
    when = datetime.fromisoformat(created)
    with engine.begin() as conn:
        oid = conn.execute(
            insert(orders)
            .values(
                tenant_id=tid,
                external_id=ext,
                status=status,
                date_created=when.astimezone(UTC),
                date_created_raw=created,
                created_local_date=when.astimezone(zone(tz)).date(),
                total_amount=sum(Decimal(p) * q for _, q, p in items),
                currency="BRL",
                created_at=NOW,
                updated_at=NOW,
            )
            .returning(orders.c.id)
        ).scalar()
        conn.execute(
            insert(order_items),
            [
                {
                    "order_id": oid,
                    "line": i,
                    "listing_external_id": f"L{lid}",
                    "listing_id": lid,
                    "quantity": q,
                    "unit_price": Decimal(p),
                }
                for i, (lid, q, p) in enumerate(items)
            ],
        )
    return oid


def visits(engine: Engine, tid: str, lid: int, day: date, n: int | None) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(listing_visits_daily).values(
                tenant_id=tid, listing_id=lid, date=day, visits=n, fetched_at=NOW
            )
        )
