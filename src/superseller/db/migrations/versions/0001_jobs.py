"""job engine: jobs and job_logs

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from superseller.db.types import JSONType, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_logs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("job_type", sa.String(length=100), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("records_processed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("metadata", JSONType, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_logs")),
    )
    op.create_index("ix_job_logs_job_id", "job_logs", ["job_id"], unique=False)
    op.create_index(
        "ix_job_logs_job_type_started_at", "job_logs", ["job_type", "started_at"], unique=False
    )
    op.create_index("ix_job_logs_started_at", "job_logs", ["started_at"], unique=False)
    op.create_index(
        "ix_job_logs_tenant_id_started_at", "job_logs", ["tenant_id", "started_at"], unique=False
    )
    op.create_table(
        "jobs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("queue", sa.String(length=100), server_default="default", nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=True),
        sa.Column("payload", JSONType, nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("priority", sa.Integer(), server_default="0", nullable=False),
        sa.Column("run_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default="3", nullable=False),
        sa.Column("unique_key", sa.String(length=255), nullable=True),
        sa.Column("lock_key", sa.String(length=255), nullable=True),
        sa.Column("timeout_s", sa.Float(), nullable=True),
        sa.Column(
            "cancel_requested", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result", JSONType, nullable=True),
        sa.Column("worker_id", sa.String(length=128), nullable=True),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column(
            "schedule_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("scheduled_for", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(
        "ix_jobs_claim",
        "jobs",
        [sa.literal_column("priority DESC"), "run_at", "id"],
        unique=False,
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_jobs_finished_at",
        "jobs",
        ["finished_at"],
        unique=False,
        sqlite_where=sa.text("status IN ('completed', 'failed', 'cancelled')"),
        postgresql_where=sa.text("status IN ('completed', 'failed', 'cancelled')"),
    )
    op.create_index(
        "ix_jobs_running_heartbeat",
        "jobs",
        ["heartbeat_at"],
        unique=False,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_index("ix_jobs_schedule_status", "jobs", ["schedule_id", "status"], unique=False)
    op.create_index("ix_jobs_status_type", "jobs", ["status", "type"], unique=False)
    op.create_index("ix_jobs_tenant_status", "jobs", ["tenant_id", "status"], unique=False)
    op.create_index(
        "uq_jobs_lock_key_running",
        "jobs",
        ["lock_key"],
        unique=True,
        sqlite_where=sa.text("status = 'running' AND lock_key IS NOT NULL"),
        postgresql_where=sa.text("status = 'running' AND lock_key IS NOT NULL"),
    )
    op.create_index(
        "uq_jobs_unique_key_active",
        "jobs",
        ["unique_key"],
        unique=True,
        sqlite_where=sa.text("status IN ('pending', 'running') AND unique_key IS NOT NULL"),
        postgresql_where=sa.text("status IN ('pending', 'running') AND unique_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("jobs")
    op.drop_table("job_logs")
