"""Mercado Livre as it is: item currency, the "other listings" bucket, per-currency totals

`order_items.currency` keeps each item's `currency_id`; `tenant_metrics_daily` gains the
"other listings" bucket (sales of items that are not synced listings, counted in the
totals and shown apart); `tenant_currency_daily` holds sales in currencies other than
the tenant's own, which are never added into its BRL totals.

Revision ID: 0013
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from superseller.db.types import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("order_items") as batch:
        batch.add_column(sa.Column("currency", sa.String(length=3), nullable=True))
    with op.batch_alter_table("tenant_metrics_daily") as batch:
        batch.add_column(
            sa.Column("other_orders", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column(
                "other_revenue",
                sa.Numeric(precision=14, scale=2),
                nullable=False,
                server_default="0",
            )
        )
    op.create_table(
        "tenant_currency_daily",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("units_sold", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "date", "currency", name=op.f("pk_tenant_currency_daily")
        ),
    )


def downgrade() -> None:
    op.drop_table("tenant_currency_daily")
    with op.batch_alter_table("tenant_metrics_daily") as batch:
        batch.drop_column("other_revenue")
        batch.drop_column("other_orders")
    with op.batch_alter_table("order_items") as batch:
        batch.drop_column("currency")
