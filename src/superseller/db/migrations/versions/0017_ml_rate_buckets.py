"""App-wide Mercado Livre request rate: one token bucket row per limit

Every worker process and host takes request tokens from these rows (refilled by elapsed
time), so the app's rate holds however many processes run; a 429 lowers the row's `rate`
for all of them (AIMD).

Revision ID: 0017
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ml_rate_buckets",
        sa.Column("name", sa.String(length=96), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("refilled_at", sa.Float(), nullable=False),
        sa.Column("decreased_at", sa.Float(), nullable=False, server_default="0"),
        sa.Column("version", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("ml_rate_buckets")
