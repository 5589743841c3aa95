"""Metrics tables: listing_metrics_daily, what the seller sees."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    text,
)

from superseller.db.tables_base import metadata
from superseller.db.tables_marketplace import Money
from superseller.db.types import UTCDateTime

listing_metrics_daily = Table(
    "listing_metrics_daily",
    metadata,
    # No foreign keys on derived tables: their checks cost more than the rebuild's
    # own work (1.9 s of 6 s at 300k rows); rows are removed with their tenant.
    Column("tenant_id", String(36), nullable=False),
    Column("listing_id", BigInteger, nullable=False),
    Column("date", Date, nullable=False),  # local day in the tenant's time zone
    Column("visits", Integer, nullable=True),  # NULL = not known; 0 = a real zero
    Column("orders", Integer, nullable=False),  # distinct paid orders
    Column("units_sold", Integer, nullable=False),
    Column("revenue", Money, nullable=False),  # sum of quantity x unit price
    Column("conversion", Float, nullable=True),  # orders / visits, 0..1; NULL if visits unknown/0
    Column("avg_ticket", Money, nullable=True),
    Column("source", String(20), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("tenant_id", "listing_id", "date"),
)
# Tenant-wide daily sums for the overview: (tenant, date) range scans.
Index(
    "ix_listing_metrics_daily_tenant_id_date",
    listing_metrics_daily.c.tenant_id,
    listing_metrics_daily.c.date,
)

# Tenant-wide daily totals, maintained by the rebuild: the overview reads these.
tenant_metrics_daily = Table(
    "tenant_metrics_daily",
    metadata,
    Column("tenant_id", String(36), nullable=False),
    Column("date", Date, nullable=False),
    Column("orders", Integer, nullable=False),  # distinct paid orders that day
    Column("units_sold", Integer, nullable=False),
    Column("revenue", Money, nullable=False),
    Column("visits", Integer, nullable=True),  # sum of known visits; NULL if none known
    # Listing-level orders on listing-days whose visits are known: conversion's numerator.
    Column("orders_with_visits", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # The "other listings" bucket: sales of items that are not (or no longer) synced
    # listings (deleted, 403), inside `orders`/`revenue` above, shown apart.
    Column("other_orders", Integer, nullable=False, server_default="0"),
    Column("other_revenue", Money, nullable=False, server_default="0"),
    PrimaryKeyConstraint("tenant_id", "date"),
)

# Sales in currencies other than the tenant's own (BRL): never added into the BRL
# totals above; one row per (tenant, day, currency) with sales.
tenant_currency_daily = Table(
    "tenant_currency_daily",
    metadata,
    Column("tenant_id", String(36), nullable=False),
    Column("date", Date, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("orders", Integer, nullable=False),
    Column("units_sold", Integer, nullable=False),
    Column("revenue", Money, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("tenant_id", "date", "currency"),
)

# Top listings by revenue: only listing-days with sales matter.
Index(
    "ix_listing_metrics_daily_sales",
    listing_metrics_daily.c.tenant_id,
    listing_metrics_daily.c.date,
    listing_metrics_daily.c.listing_id,
    listing_metrics_daily.c.revenue,
    listing_metrics_daily.c.orders,
    listing_metrics_daily.c.units_sold,
    sqlite_where=text("orders > 0"),
    postgresql_where=text("orders > 0"),
)
