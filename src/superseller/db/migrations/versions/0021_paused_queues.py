"""per-queue pause

`paused_queues`: one row per queue paused on its own (reason, who, when). Workers read
the set with the engine pause (at most once a second) and leave those queues out of
their claim; jobs enqueued there wait, running ones finish, other queues go on.

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

from superseller.db.types import UTCDateTime

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "paused_queues",
        sa.Column("queue", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=254), nullable=True),
        sa.Column("paused_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("queue"),
    )


def downgrade() -> None:
    op.drop_table("paused_queues")
