"""jobs remember their home queue while lent to a private runner

`home_queue` and `home_max_attempts`: set when a job is moved to (or created on) a
runner's private queue (the command line's `cli`), cleared when it goes home. A rescue
of a vanished runner (a `superseller sync` killed with SIGKILL) sends the job back to
`home_queue` with those attempts, where the workers serving that queue run it, instead
of leaving it on a queue only a worker of every queue serves. Nullable, no default and
no index: existing rows are where they belong (NULL); nothing reads them by it.

Revision ID: 0024
Revises: 0023
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("home_queue", sa.String(length=100), nullable=True))
    op.add_column("jobs", sa.Column("home_max_attempts", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35 has it): a batch would rebuild the
    # table on SQLite and lose `priority DESC` of ix_jobs_claim on the way.
    op.drop_column("jobs", "home_max_attempts")
    op.drop_column("jobs", "home_queue")
