"""listing scores

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from superseller.db.types import JSONType, UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("listings") as batch:
        batch.add_column(sa.Column("score", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("score_breakdown", JSONType, nullable=True))
        batch.add_column(sa.Column("scored_at", UTCDateTime(), nullable=True))
    op.create_index("ix_listings_tenant_id_score", "listings", ["tenant_id", "score"])
    op.create_table(
        "score_texts",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_score_texts")),
    )


def downgrade() -> None:
    op.drop_table("score_texts")
    op.drop_index("ix_listings_tenant_id_score", table_name="listings")
    with op.batch_alter_table("listings") as batch:
        batch.drop_column("scored_at")
        batch.drop_column("score_breakdown")
        batch.drop_column("score")
