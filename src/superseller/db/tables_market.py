"""Market tables: what SuperSeller collects about competitors and buyers.

harvest_sources (what to collect per tenant) -> harvested_content (what was collected,
one row per source, item and UTC day) -> embeddings (titles as vectors, per model) ->
price_drop_alerts; buyer_questions -> question_drafts (never posted automatically).
"""

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
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from superseller.db.tables_base import BigId, metadata
from superseller.db.tables_marketplace import Money
from superseller.db.types import JSONType, UTCDateTime

harvest_sources = Table(
    "harvest_sources",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),  # search | trends
    Column("category_id", String(40), nullable=True),
    Column("query", String(200), nullable=True),  # search keywords
    # The listing a default source was made for (None for one added by hand).
    Column("listing_id", BigInteger, nullable=True),
    Column("origin", String(16), nullable=False, server_default="default"),  # default | manual
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    # kind:category:query, the identity of a source within a tenant.
    Column("key", String(300), nullable=False),
    Column("last_harvested_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "key"),
)

harvested_content = Table(
    "harvested_content",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(36), nullable=False),
    Column(
        "source_id",
        BigInteger,
        ForeignKey("harvest_sources.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("kind", String(16), nullable=False),  # item | trend
    Column("item_id", String(300), nullable=False),  # competitor item id, or the trend keyword
    Column("title", String(300), nullable=False),
    Column("category_id", String(40), nullable=True),
    Column("price", Money, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("seller_id", BigInteger, nullable=True),
    Column("sold_quantity", Integer, nullable=True),
    Column("rank", Integer, nullable=True),  # position in the answer
    Column("captured_at", UTCDateTime, nullable=False),
    Column("captured_day", Date, nullable=False),  # UTC day: one row per source, item and day
    UniqueConstraint("source_id", "item_id", "captured_day"),
)
Index(
    "ix_harvested_content_tenant_id_item_id",
    harvested_content.c.tenant_id,
    harvested_content.c.item_id,
    harvested_content.c.captured_day,
)
Index("ix_harvested_content_captured_day", harvested_content.c.captured_day)

# One vector per (tenant, subject): a listing's title or a competitor item's title.
embeddings = Table(
    "embeddings",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(36), nullable=False),
    Column("subject", String(16), nullable=False),  # listing | item
    Column("subject_id", String(300), nullable=False),  # listings.id or the item id
    Column("category_id", String(40), nullable=True),
    Column("text_hash", String(64), nullable=False),
    Column("model", String(100), nullable=False),  # name@version
    Column("dim", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),  # float32, little-endian, unit length
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "subject", "subject_id"),
)
Index(
    "ix_embeddings_tenant_id_subject_category_id",
    embeddings.c.tenant_id,
    embeddings.c.subject,
    embeddings.c.category_id,
)

price_drop_alerts = Table(
    "price_drop_alerts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(36), nullable=False),
    Column("listing_id", BigInteger, nullable=False),
    Column("item_id", String(300), nullable=False),
    Column("title", String(300), nullable=False),
    Column("old_price", Money, nullable=False),
    Column("new_price", Money, nullable=False),
    Column("drop_pct", Float, nullable=False),  # 0.2 = 20% lower
    Column("previous_day", Date, nullable=False),
    Column("captured_day", Date, nullable=False),
    Column("similarity", Float, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # One alert per listing, competitor item and capture: re-running changes nothing.
    UniqueConstraint("tenant_id", "listing_id", "item_id", "captured_day"),
)
Index(
    "ix_price_drop_alerts_tenant_id_created_at",
    price_drop_alerts.c.tenant_id,
    price_drop_alerts.c.created_at,
)

buyer_questions = Table(
    "buyer_questions",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),  # Mercado Livre's id
    Column("tenant_id", String(36), nullable=False),
    Column("item_id", String(32), nullable=False),
    Column("listing_id", BigInteger, nullable=True),
    Column("text", Text, nullable=False),
    Column("status", String(32), nullable=False),
    Column("date_created", UTCDateTime, nullable=True),
    Column("fetched_at", UTCDateTime, nullable=False),
)
Index(
    "ix_buyer_questions_tenant_id_listing_id",
    buyer_questions.c.tenant_id,
    buyer_questions.c.listing_id,
)

# Drafts for a group of recurring questions on a listing: shown, never posted.
question_drafts = Table(
    "question_drafts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(36), nullable=False),
    Column("listing_id", BigInteger, nullable=False),
    Column("topic", String(40), nullable=False),
    Column("question_ids", JSONType, nullable=False),
    Column("sample", Text, nullable=False),  # one question of the group, as asked
    Column("answer", Text, nullable=False),
    Column("description_line", Text, nullable=False),
    Column("wording", String(100), nullable=False),  # template | the model's name
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "listing_id", "topic"),
)
