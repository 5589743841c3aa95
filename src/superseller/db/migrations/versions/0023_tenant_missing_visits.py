"""Tenants remember how many listings' visits their last successful sync could not fetch, and
how many syncs in a row left some: freshness says "partial" until a sync gets them all

Revision ID: 0023
Revises: 0022
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("last_sync_missing_visits", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("last_syncs_partial", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("last_syncs_partial")
        batch.drop_column("last_sync_missing_visits")
