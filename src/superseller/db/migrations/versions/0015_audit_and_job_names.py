"""audit trail; one name per job type

`audit_log`: who (a user's email, `cli`, `internal-key`, `scheduler`) did what to which
job, schedule or the engine, and when.

One name per job type, the seed's where it has one: the rebuild is `metrics_aggregation`
(its job_logs name already; jobs and schedules called it `rebuild_daily_metrics`), the
sync is `sync_mercadolivre` (its job_logs rows and counters said `mercadolivre_sync`).
The former names stay accepted as aliases by the registry.

Revision ID: 0015
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from superseller.db.types import JSONType, UTCDateTime

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None

# (table, column, former name, the one name)
_RENAMES = (
    ("jobs", "type", "rebuild_daily_metrics", "metrics_aggregation"),
    ("job_schedules", "job_type", "rebuild_daily_metrics", "metrics_aggregation"),
    ("job_logs", "job_type", "mercadolivre_sync", "sync_mercadolivre"),
    ("job_stats_hourly", "job_type", "mercadolivre_sync", "sync_mercadolivre"),
)


def _rename(old_index: int, new_index: int) -> None:
    for table, column, *names in _RENAMES:
        op.execute(
            sa.text(f"UPDATE {table} SET {column} = :new WHERE {column} = :old").bindparams(
                old=names[old_index], new=names[new_index]
            )
        )


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=100), nullable=True),
        sa.Column("detail", JSONType, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_target", "audit_log", ["target_type", "target_id"])
    _rename(0, 1)


def downgrade() -> None:
    _rename(1, 0)
    op.drop_index("ix_audit_log_target", table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
