"""tenant metrics rollup

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from superseller.db.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_metrics_daily",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("units_sold", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=True),
        sa.Column("orders_with_visits", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "date", name=op.f("pk_tenant_metrics_daily")),
    )
    op.create_index(
        "ix_listing_metrics_daily_sales",
        "listing_metrics_daily",
        ["tenant_id", "date", "listing_id", "revenue", "orders", "units_sold"],
        unique=False,
        sqlite_where=sa.text("orders > 0"),
        postgresql_where=sa.text("orders > 0"),
    )


def downgrade() -> None:
    op.drop_index("ix_listing_metrics_daily_sales", table_name="listing_metrics_daily")
    op.drop_table("tenant_metrics_daily")
