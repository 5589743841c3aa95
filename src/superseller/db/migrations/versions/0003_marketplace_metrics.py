"""marketplace and metrics tables

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from superseller.db.types import JSONType, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "timezone", sa.String(length=64), server_default="America/Sao_Paulo", nullable=False
        ),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("last_sync_ok_at", UTCDateTime(), nullable=True),
        sa.Column("last_sync_error", sa.Text(), nullable=True),
        sa.Column("last_sync_error_at", UTCDateTime(), nullable=True),
        sa.Column("last_rebuild_ok_at", UTCDateTime(), nullable=True),
        sa.Column("last_rebuild_error", sa.Text(), nullable=True),
        sa.Column("last_rebuild_error_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
    )
    op.create_table(
        "marketplace_accounts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("ml_user_id", sa.BigInteger(), nullable=False),
        sa.Column("nickname", sa.String(length=200), nullable=True),
        sa.Column("access_token_enc", sa.Text(), nullable=True),
        sa.Column("refresh_token_enc", sa.Text(), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("token_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("status", sa.String(length=20), server_default="connected", nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("last_refresh_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_marketplace_accounts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_marketplace_accounts")),
        sa.UniqueConstraint(
            "tenant_id", "ml_user_id", name=op.f("uq_marketplace_accounts_tenant_id_ml_user_id")
        ),
    )
    op.create_table(
        "orders",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("external_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("date_created", UTCDateTime(), nullable=False),
        sa.Column("date_created_raw", sa.String(length=40), nullable=True),
        sa.Column("date_closed", UTCDateTime(), nullable=True),
        sa.Column("created_local_date", sa.Date(), nullable=False),
        sa.Column("total_amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("paid_amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("buyer_id", sa.BigInteger(), nullable=True),
        sa.Column("last_updated", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_orders_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint(
            "tenant_id", "external_id", name=op.f("uq_orders_tenant_id_external_id")
        ),
    )
    op.create_index(
        "ix_orders_tenant_id_created_local_date",
        "orders",
        ["tenant_id", "created_local_date"],
        unique=False,
    )
    op.create_table(
        "listings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("external_id", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("price", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("available_quantity", sa.Integer(), nullable=True),
        sa.Column("sold_quantity", sa.Integer(), nullable=True),
        sa.Column("permalink", sa.Text(), nullable=True),
        sa.Column("thumbnail", sa.Text(), nullable=True),
        sa.Column("pictures_count", sa.Integer(), nullable=True),
        sa.Column("listing_type", sa.String(length=40), nullable=True),
        sa.Column("category_id", sa.String(length=40), nullable=True),
        sa.Column("health", sa.Float(), nullable=True),
        sa.Column("attributes_count", sa.Integer(), nullable=True),
        sa.Column("has_clips", sa.Boolean(), nullable=True),
        sa.Column("has_clips_override", sa.Boolean(), nullable=True),
        sa.Column("video_id", sa.String(length=100), nullable=True),
        sa.Column("date_created", UTCDateTime(), nullable=True),
        sa.Column("created_local_date", sa.Date(), nullable=True),
        sa.Column("raw", JSONType, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["marketplace_accounts.id"],
            name=op.f("fk_listings_account_id_marketplace_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_listings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listings")),
        sa.UniqueConstraint(
            "tenant_id", "external_id", name=op.f("uq_listings_tenant_id_external_id")
        ),
    )
    op.create_table(
        "listing_metrics_daily",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("listing_id", sa.BigInteger(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=True),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("units_sold", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("conversion", sa.Float(), nullable=True),
        sa.Column("avg_ticket", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "listing_id", "date", name=op.f("pk_listing_metrics_daily")
        ),
    )
    op.create_index(
        "ix_listing_metrics_daily_tenant_id_date",
        "listing_metrics_daily",
        ["tenant_id", "date"],
        unique=False,
    )
    op.create_table(
        "listing_visits_daily",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("listing_id", sa.BigInteger(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=True),
        sa.Column("fetched_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["listing_id"],
            ["listings.id"],
            name=op.f("fk_listing_visits_daily_listing_id_listings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_listing_visits_daily_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "listing_id", "date", name=op.f("pk_listing_visits_daily")
        ),
    )
    op.create_table(
        "order_items",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("listing_external_id", sa.String(length=32), nullable=False),
        sa.Column("listing_id", sa.BigInteger(), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["listing_id"],
            ["listings.id"],
            name=op.f("fk_order_items_listing_id_listings"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_items_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_items")),
        sa.UniqueConstraint("order_id", "line", name=op.f("uq_order_items_order_id_line")),
    )
    op.create_index("ix_order_items_listing_id", "order_items", ["listing_id"], unique=False)


def downgrade() -> None:
    for table in (
        "listing_metrics_daily",
        "listing_visits_daily",
        "order_items",
        "orders",
        "listings",
        "marketplace_accounts",
        "tenants",
    ):
        op.drop_table(table)
