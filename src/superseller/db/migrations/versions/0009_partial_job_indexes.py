"""partial secondary indexes on jobs

Each status change of a job writes an entry into every index its row belongs to.
Completed jobs leave (status, type); jobs without a tenant or a schedule leave the
tenant and schedule indexes; the running-heartbeat index goes (the few running jobs
are found through (status, type)). A no-tenant job's life (claim + finish) now writes
4 index entries instead of 10.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_jobs_status_type", ["status", "type"], "status <> 'completed'"),
    ("ix_jobs_tenant_status", ["tenant_id", "status"], "tenant_id IS NOT NULL"),
    ("ix_jobs_schedule_status", ["schedule_id", "status"], "schedule_id IS NOT NULL"),
)


def upgrade() -> None:
    op.drop_index("ix_jobs_running_heartbeat", table_name="jobs")
    for name, columns, where in _INDEXES:
        op.drop_index(name, table_name="jobs")
        op.create_index(
            name, "jobs", columns, sqlite_where=sa.text(where), postgresql_where=sa.text(where)
        )


def downgrade() -> None:
    for name, columns, _where in _INDEXES:
        op.drop_index(name, table_name="jobs")
        op.create_index(name, "jobs", columns)
    op.create_index(
        "ix_jobs_running_heartbeat",
        "jobs",
        ["heartbeat_at"],
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )
