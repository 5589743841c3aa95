"""engine pause state

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from superseller.db.types import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "engine_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("paused", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("changed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_engine_state")),
    )
    op.execute("INSERT INTO engine_state (id, paused) VALUES (1, false)")


def downgrade() -> None:
    op.drop_table("engine_state")
