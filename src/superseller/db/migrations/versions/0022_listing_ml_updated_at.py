"""Listings remember Mercado Livre's `last_updated`: an older item body never overwrites a
newer one (an out-of-order notification, a sync page fetched before an edit)

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

from superseller.db.types import UTCDateTime

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("listings") as batch:
        batch.add_column(sa.Column("ml_updated_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("listings") as batch:
        batch.drop_column("ml_updated_at")
