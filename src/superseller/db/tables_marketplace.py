"""Marketplace tables: tenants, Mercado Livre accounts, listings, orders, visits."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from superseller.db.tables_base import BigId, metadata
from superseller.db.types import JSONType, UTCDateTime

Money = Numeric(14, 2)

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("timezone", String(64), nullable=False, server_default="America/Sao_Paulo"),
    Column("status", String(16), nullable=False, server_default="active"),
    # Freshness facts, written by the sync and rebuild jobs.
    Column("last_sync_ok_at", UTCDateTime, nullable=True),
    Column("last_sync_error", Text, nullable=True),
    Column("last_sync_error_at", UTCDateTime, nullable=True),
    Column("last_rebuild_ok_at", UTCDateTime, nullable=True),
    Column("last_rebuild_error", Text, nullable=True),
    Column("last_rebuild_error_at", UTCDateTime, nullable=True),
    # Listings whose visits the last successful sync could not fetch (both passes failed):
    # the tenant's freshness is "partial" while it is above 0. `last_syncs_partial`: successful
    # syncs in a row that left such listings (the self-heal re-runs only the first).
    Column("last_sync_missing_visits", Integer, nullable=True),
    Column("last_syncs_partial", Integer, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
)

marketplace_accounts = Table(
    "marketplace_accounts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("ml_user_id", BigInteger, nullable=False),
    Column("nickname", String(200), nullable=True),
    # Tokens are encrypted at rest (Fernet, key from settings).
    Column("access_token_enc", Text, nullable=True),
    Column("refresh_token_enc", Text, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    # Bumped on every refresh: the compare-and-swap that makes refresh single-flight.
    Column("token_version", Integer, nullable=False, server_default="0"),
    Column("status", String(20), nullable=False, server_default="connected"),
    Column("status_reason", Text, nullable=True),
    Column("last_refresh_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "ml_user_id"),
)

listings = Table(
    "listings",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column(
        "account_id",
        BigInteger,
        ForeignKey("marketplace_accounts.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("external_id", String(32), nullable=False),
    Column("title", String(300), nullable=False),
    Column("price", Money, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("status", String(20), nullable=False),
    Column("available_quantity", Integer, nullable=True),
    Column("sold_quantity", Integer, nullable=True),
    Column("permalink", Text, nullable=True),
    Column("thumbnail", Text, nullable=True),
    Column("pictures_count", Integer, nullable=True),
    Column("listing_type", String(40), nullable=True),
    Column("category_id", String(40), nullable=True),
    Column("health", Float, nullable=True),
    Column("attributes_count", Integer, nullable=True),
    # Clips: True / False / None (unknown); a manual override wins.
    Column("has_clips", Boolean, nullable=True),
    Column("has_clips_override", Boolean, nullable=True),
    Column("video_id", String(100), nullable=True),  # legacy only
    Column("date_created", UTCDateTime, nullable=True),
    # Local (tenant time zone) day the listing came to exist: metrics start there.
    Column("created_local_date", Date, nullable=True),
    Column("raw", JSONType, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Mercado Livre's `last_updated` of the body stored: an older body never overwrites
    # it (mercadolivre.upsert.save_listings). NULL: unknown.
    Column("ml_updated_at", UTCDateTime, nullable=True),
    # The listing score (superseller.scoring): 0-100, its breakdown, when computed.
    Column("score", Integer, nullable=True),
    Column("score_breakdown", JSONType, nullable=True),
    Column("scored_at", UTCDateTime, nullable=True),
    UniqueConstraint("tenant_id", "external_id"),
)
Index("ix_listings_tenant_id_score", listings.c.tenant_id, listings.c.score)

# Model-worded score explanations, cached by the fingerprint of the facts they word.
score_texts = Table(
    "score_texts",
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("model", String(100), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("external_id", String(32), nullable=False),
    Column("status", String(30), nullable=False),
    Column("date_created", UTCDateTime, nullable=False),
    Column("date_created_raw", String(40), nullable=True),  # as sent, with its UTC offset
    Column("date_closed", UTCDateTime, nullable=True),
    # Local (tenant time zone) day of creation: the day the metrics count it on.
    Column("created_local_date", Date, nullable=False),
    Column("total_amount", Money, nullable=True),
    Column("paid_amount", Money, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("buyer_id", BigInteger, nullable=True),
    Column("last_updated", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "external_id"),
)
Index("ix_orders_tenant_id_created_local_date", orders.c.tenant_id, orders.c.created_local_date)

order_items = Table(
    "order_items",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("order_id", BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("line", Integer, nullable=False),
    Column("listing_external_id", String(32), nullable=False),
    Column("listing_id", BigInteger, ForeignKey("listings.id", ondelete="SET NULL"), nullable=True),
    Column("title", String(300), nullable=True),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Money, nullable=False),
    Column("currency", String(3), nullable=True),  # the item's currency_id (NULL: the order's)
    UniqueConstraint("order_id", "line"),
)
Index("ix_order_items_listing_id", order_items.c.listing_id)

listing_visits_daily = Table(
    "listing_visits_daily",
    metadata,
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("listing_id", BigInteger, ForeignKey("listings.id", ondelete="CASCADE"), nullable=False),
    Column("date", Date, nullable=False),
    # NULL or absent = not fetched; 0 = a real zero.
    Column("visits", Integer, nullable=True),
    Column("fetched_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("tenant_id", "listing_id", "date"),
)


# The app-wide Mercado Livre request rate (mercadolivre/ratelimit.py): one token bucket per
# limit ("app", "seller:<user id>"), shared by every process and host. Times are epoch
# seconds of the taking process's clock.
ml_rate_buckets = Table(
    "ml_rate_buckets",
    metadata,
    Column("name", String(96), primary_key=True),
    Column("rate", Float, nullable=False),  # current rate: the setting, or less after a 429
    Column("tokens", Float, nullable=False),
    Column("refilled_at", Float, nullable=False),
    Column("decreased_at", Float, nullable=False, server_default="0"),
    Column("version", BigInteger, nullable=False, server_default="0"),
)

# Progress of one sync run (a `sync_mercadolivre` job), so that a run cut short (a killed
# worker, a lost host) resumes where it stopped instead of fetching everything again: one
# row per finished part ("run", "ids", "items:<n>", "orders", "visits:<n>"). Removed with
# the job, and when the run succeeds.
sync_checkpoints = Table(
    "sync_checkpoints",
    metadata,
    Column("job_id", BigId, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("part", String(32), nullable=False),
    Column("data", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("job_id", "part"),
)

# Mercado Livre notifications (webhooks) of our app for connected sellers: one row per ML
# `_id`, so a retry or duplicate delivery is a no-op. `processed_at` is set when the
# resource was fetched (or the topic ignored); `outcome` says which.
ml_notifications = Table(
    "ml_notifications",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("notification_id", String(64), nullable=False),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("ml_user_id", BigInteger, nullable=False),
    Column("topic", String(60), nullable=False),
    Column("resource", String(200), nullable=False),
    Column("attempts", Integer, nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("processed_at", UTCDateTime, nullable=True),
    Column("outcome", String(40), nullable=True),
    UniqueConstraint("notification_id"),
)
Index(
    "ix_ml_notifications_tenant_id_received_at",
    ml_notifications.c.tenant_id,
    ml_notifications.c.received_at,
)
# The work still to do: unprocessed rows of a tenant.
Index(
    "ix_ml_notifications_tenant_id_topic",
    ml_notifications.c.tenant_id,
    ml_notifications.c.topic,
    sqlite_where=text("processed_at IS NULL"),
    postgresql_where=text("processed_at IS NULL"),
)
