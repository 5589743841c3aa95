"""Sync checkpoints: a big seller's sync resumes where it stopped after a crash

One row per finished part of a `sync_mercadolivre` run (the listing ids, each range of
item details and of visits, the orders), removed with the job and when the run succeeds.

Revision ID: 0020
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

from superseller.db.types import JSONType, UTCDateTime

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_checkpoints",
        sa.Column(
            "job_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("jobs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("part", sa.String(length=32), nullable=False),
        sa.Column("data", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("job_id", "part"),
    )


def downgrade() -> None:
    op.drop_table("sync_checkpoints")
