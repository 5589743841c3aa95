"""per-queue pause; console indexes for rare states and queues

`paused_queues`: one row per queue paused on its own (reason, who, when). Workers read
the set with the engine pause (at most once a second) and leave those queues out of
their claim; jobs enqueued there wait, running ones finish, other queues go on.

The console at a million jobs (bench/console.py), all partial: none is written for a
job of the default queue that completes, the engine's common case.

- `ix_jobs_unsuccessful_id (status, id, created_at)`, failed and cancelled jobs only:
  their counts over a creation window are index-only id ranges (they read the window's
  every row from the heap, 30-60 ms for a day at 1M jobs), and a failed list is a range.
- `ix_jobs_queue_id (queue, id)` and `ix_jobs_queue_finished (queue, status,
  finished_at)`, jobs outside the `default` queue only: a queue's newest page and its
  per-state counts over a window (a 0.01% queue's page walked the whole primary key,
  276 ms; a 5% queue's 24 h counts read 24k rows from the heap, 89 ms).

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
    _create("ix_jobs_unsuccessful_id", ["status", "id", "created_at"], UNSUCCESSFUL)
    _create("ix_jobs_queue_id", ["queue", "id"], OTHER_QUEUES)
    _create(
        "ix_jobs_queue_finished",
        ["queue", "status", "finished_at"],
        f"{OTHER_QUEUES} AND {FINISHED}",
    )


def downgrade() -> None:
    for name in ("ix_jobs_queue_finished", "ix_jobs_queue_id", "ix_jobs_unsuccessful_id"):
        op.drop_index(name, table_name="jobs")
    op.drop_table("paused_queues")


UNSUCCESSFUL = "status IN ('failed', 'cancelled')"
OTHER_QUEUES = "queue <> 'default'"
FINISHED = "status IN ('completed', 'failed', 'cancelled')"


def _create(name: str, columns: list[str], where: str) -> None:
    op.create_index(
        name,
        "jobs",
        columns,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )
