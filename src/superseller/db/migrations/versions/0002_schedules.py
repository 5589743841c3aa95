"""scheduler: job_schedules and schedule_occurrences

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from superseller.db.types import JSONType, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_schedules",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("job_type", sa.String(length=100), nullable=False),
        sa.Column("payload", JSONType, nullable=False),
        sa.Column("cron", sa.String(length=120), nullable=False),
        sa.Column(
            "timezone", sa.String(length=64), server_default="America/Sao_Paulo", nullable=False
        ),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("disabled_reason", sa.String(length=200), nullable=True),
        sa.Column("misfire_policy", sa.String(length=16), server_default="latest", nullable=False),
        sa.Column("misfire_grace_s", sa.Integer(), server_default="300", nullable=False),
        sa.Column("misfire_window_s", sa.Integer(), server_default="604800", nullable=False),
        sa.Column("overlap_policy", sa.String(length=16), server_default="skip", nullable=False),
        sa.Column("deadline_s", sa.Integer(), nullable=True),
        sa.Column("queue", sa.String(length=100), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("max_attempts", sa.Integer(), nullable=True),
        sa.Column("next_run_at", UTCDateTime(), nullable=True),
        sa.Column("last_fired_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_schedules")),
        sa.UniqueConstraint("name", name=op.f("uq_job_schedules_name")),
    )
    op.create_index(
        "ix_job_schedules_due",
        "job_schedules",
        ["next_run_at"],
        unique=False,
        sqlite_where=sa.text("enabled"),
        postgresql_where=sa.text("enabled"),
    )
    op.create_table(
        "schedule_occurrences",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "schedule_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("fire_time", UTCDateTime(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["job_schedules.id"],
            name=op.f("fk_schedule_occurrences_schedule_id_job_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_occurrences")),
        sa.UniqueConstraint(
            "schedule_id", "fire_time", name=op.f("uq_schedule_occurrences_schedule_id_fire_time")
        ),
    )
    op.create_index(
        "ix_schedule_occurrences_job_id", "schedule_occurrences", ["job_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("schedule_occurrences")
    op.drop_table("job_schedules")
