"""Mercado Livre notifications: one row per ML `_id` (retries and duplicates are no-ops)

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

from superseller.db.types import UTCDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ml_notifications",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("notification_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("ml_user_id", sa.BigInteger(), nullable=False),
        sa.Column("topic", sa.String(length=60), nullable=False),
        sa.Column("resource", sa.String(length=200), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("processed_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_ml_notifications_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ml_notifications"),
        sa.UniqueConstraint("notification_id", name="uq_ml_notifications_notification_id"),
    )
    op.create_index(
        "ix_ml_notifications_tenant_id_received_at",
        "ml_notifications",
        ["tenant_id", "received_at"],
    )
    op.create_index(
        "ix_ml_notifications_tenant_id_topic",
        "ml_notifications",
        ["tenant_id", "topic"],
        sqlite_where=sa.text("processed_at IS NULL"),
        postgresql_where=sa.text("processed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("ml_notifications")
