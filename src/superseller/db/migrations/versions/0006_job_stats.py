"""job stats counters

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from superseller.db.types import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_stats_hourly",
        sa.Column("job_type", sa.String(length=100), nullable=False),
        sa.Column("hour", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.Column("total_duration_ms", sa.BigInteger(), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("retries", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("job_type", "hour", "status", name=op.f("pk_job_stats_hourly")),
    )
    op.create_index("ix_job_stats_hourly_hour", "job_stats_hourly", ["hour"])
    op.create_table(
        "job_stats_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_log_id", sa.BigInteger(), nullable=False),
        sa.Column("folded_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_stats_state")),
    )
    op.execute("INSERT INTO job_stats_state (id, last_log_id) VALUES (1, 0)")
    op.create_index(
        "ix_job_logs_errors",
        "job_logs",
        ["id"],
        sqlite_where=sa.text("status <> 'success'"),
        postgresql_where=sa.text("status <> 'success'"),
    )


def downgrade() -> None:
    op.drop_index("ix_job_logs_errors", table_name="job_logs")
    op.drop_table("job_stats_state")
    op.drop_index("ix_job_stats_hourly_hour", table_name="job_stats_hourly")
    op.drop_table("job_stats_hourly")
