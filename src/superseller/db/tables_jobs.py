"""Job engine tables: jobs, job_logs, job_schedules, schedule_occurrences."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from superseller.db.tables_base import BigId, metadata
from superseller.db.tables_base import partial as _where
from superseller.db.types import JSONType, UTCDateTime

JOB_STATES = ("pending", "running", "completed", "failed", "cancelled")
UNFINISHED = "('pending', 'running')"
FINISHED_STATES = ("completed", "failed", "cancelled")
FINISHED = "('completed', 'failed', 'cancelled')"  # the same, as SQL for index predicates


jobs = Table(
    "jobs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("type", String(100), nullable=False),
    Column("queue", String(100), nullable=False, server_default="default"),
    Column("tenant_id", String(64), nullable=True),
    Column("payload", JSONType, nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("run_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("max_attempts", Integer, nullable=False, server_default="3"),
    Column("unique_key", String(255), nullable=True),
    Column("lock_key", String(255), nullable=True),
    Column("timeout_s", Float, nullable=True),
    Column("cancel_requested", Boolean, nullable=False, server_default=text("false")),
    Column("last_error", Text, nullable=True),
    Column("result", JSONType, nullable=True),
    Column("worker_id", String(128), nullable=True),
    Column("heartbeat_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("schedule_id", BigId, nullable=True),
    Column("scheduled_for", UTCDateTime, nullable=True),
    # A private run (migration 0024): the job was lent to a runner's own queue (`queue`,
    # e.g. a command line's) and belongs on `home_queue`, with `home_max_attempts` there
    # (NULL: its own). A rescue of the vanished runner, a retry, a move by hand send it
    # home; NULL for every job that is where it belongs.
    Column("home_queue", String(100), nullable=True),
    Column("home_max_attempts", Integer, nullable=True),
)

# The claim path: pending jobs, best priority first, oldest first (queue is a filter).
Index(
    "ix_jobs_claim",
    jobs.c.priority.desc(),
    jobs.c.run_at,
    jobs.c.id,
    **_where("status = 'pending'"),
)
# At most one unfinished job per unique_key.
Index(
    "uq_jobs_unique_key_active",
    jobs.c.unique_key,
    unique=True,
    **_where(f"status IN {UNFINISHED} AND unique_key IS NOT NULL"),
)
# The database, not timing, guarantees one running job per lock_key.
Index(
    "uq_jobs_lock_key_running",
    jobs.c.lock_key,
    unique=True,
    **_where("status = 'running' AND lock_key IS NOT NULL"),
)
Index("ix_jobs_finished_at", jobs.c.finished_at, **_where(f"status IN {FINISHED}"))
# Partial indexes: a job changes status twice, and each change writes an entry into every
# index the row belongs to. Completed jobs (the bulk of the table) are listed through the
# primary key, and jobs without a tenant or schedule are never looked up by them. The
# few running jobs (heartbeat, rescue) are found through (status, type).
Index("ix_jobs_status_type", jobs.c.status, jobs.c.type, **_where("status <> 'completed'"))
Index(
    "ix_jobs_tenant_status",
    jobs.c.tenant_id,
    jobs.c.status,
    jobs.c.finished_at,  # a tenant's counts over a window stay in the index
    **_where("tenant_id IS NOT NULL"),
)
# The operator console at a million jobs (migration 0019): a type's newest page, and the
# per-state counts of finished jobs over a window (index-only).
Index("ix_jobs_type_id", jobs.c.type, jobs.c.id)
Index(
    "ix_jobs_status_finished", jobs.c.status, jobs.c.finished_at, **_where(f"status IN {FINISHED}")
)
# Migration 0021, partial so that a default-queue job that completes writes none of them:
# failed and cancelled jobs by id (their counts over a creation window are index-only), and
# the jobs of other queues by id and by state and finish (a queue's page and counts).
Index(
    "ix_jobs_unsuccessful_id",
    jobs.c.status,
    jobs.c.id,
    jobs.c.created_at,
    **_where("status IN ('failed', 'cancelled')"),
)
Index("ix_jobs_queue_id", jobs.c.queue, jobs.c.id, **_where("queue <> 'default'"))
Index(
    "ix_jobs_queue_finished",
    jobs.c.queue,
    jobs.c.status,
    jobs.c.finished_at,
    **_where(f"queue <> 'default' AND status IN {FINISHED}"),
)
Index(
    "ix_jobs_schedule_status",
    jobs.c.schedule_id,
    jobs.c.status,
    **_where("schedule_id IS NOT NULL"),
)

job_logs = Table(
    "job_logs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    # No foreign key: logs are kept longer than the jobs they describe.
    Column("job_id", BigInteger, nullable=False),
    Column("job_type", String(100), nullable=False),
    Column("tenant_id", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("records_processed", Integer, nullable=False, server_default="0"),
    Column("error_message", Text, nullable=True),
    Column("metadata", JSONType, nullable=True),
    # The seed's "Ver Logs" query orders by `timestamp`: the database keeps it equal to
    # started_at (a stored generated column), so no writer can let the two drift.
    Column("timestamp", UTCDateTime, Computed("started_at", persisted=True), nullable=True),
)
Index("ix_job_logs_job_id", job_logs.c.job_id)
Index("ix_job_logs_job_type_started_at", job_logs.c.job_type, job_logs.c.started_at)
Index("ix_job_logs_tenant_id_started_at", job_logs.c.tenant_id, job_logs.c.started_at)
Index("ix_job_logs_started_at", job_logs.c.started_at)

job_schedules = Table(
    "job_schedules",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("job_type", String(100), nullable=False),
    Column("payload", JSONType, nullable=False),
    Column("cron", String(120), nullable=False),
    Column("timezone", String(64), nullable=False, server_default="America/Sao_Paulo"),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    # Why a schedule is off when the system turned it off (e.g. its job type is not installed).
    Column("disabled_reason", String(200), nullable=True),
    Column("misfire_policy", String(16), nullable=False, server_default="latest"),
    Column("misfire_grace_s", Integer, nullable=False, server_default="300"),
    Column("misfire_window_s", Integer, nullable=False, server_default="604800"),
    Column("overlap_policy", String(16), nullable=False, server_default="skip"),
    Column("deadline_s", Integer, nullable=True),
    Column("queue", String(100), nullable=True),
    Column("priority", Integer, nullable=True),
    Column("max_attempts", Integer, nullable=True),
    Column("next_run_at", UTCDateTime, nullable=True),
    Column("last_fired_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_job_schedules_due", job_schedules.c.next_run_at, **_where("enabled"))

schedule_occurrences = Table(
    "schedule_occurrences",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "schedule_id", BigId, ForeignKey("job_schedules.id", ondelete="CASCADE"), nullable=False
    ),
    Column("fire_time", UTCDateTime, nullable=False),
    Column("outcome", String(16), nullable=False),  # enqueued | skipped | missed | backfilled
    Column("reason", Text, nullable=True),
    Column("job_id", BigInteger, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Exactly once per tick comes from this constraint, not from leader election.
    UniqueConstraint("schedule_id", "fire_time"),
)
Index("ix_schedule_occurrences_job_id", schedule_occurrences.c.job_id)

# Maintained counters for the stats API: job_logs folded into hourly buckets, so that
# stats never count over the whole history. `job_stats_state.last_log_id` is the fold's
# watermark (one row, id = 1).
job_stats_hourly = Table(
    "job_stats_hourly",
    metadata,
    Column("job_type", String(100), primary_key=True),
    Column("hour", UTCDateTime, primary_key=True),
    Column("status", String(16), primary_key=True),
    Column("runs", BigInteger, nullable=False),
    Column("total_duration_ms", BigInteger, nullable=False),
    Column("records", BigInteger, nullable=False),
    Column("retries", BigInteger, nullable=False),  # runs that were a second or later attempt
)
Index("ix_job_stats_hourly_hour", job_stats_hourly.c.hour)

job_stats_state = Table(
    "job_stats_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_log_id", BigInteger, nullable=False),
    Column("folded_at", UTCDateTime, nullable=True),
)
# The stats API's "last errors": found without scanning the successful runs.
Index("ix_job_logs_errors", job_logs.c.id, **_where("status <> 'success'"))

# One row (id = 1): whether the engine is paused ("power" off, the seeds' cost routine).
# Paused workers claim nothing and schedulers enqueue nothing; nothing is lost.
engine_state = Table(
    "engine_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    Column("reason", Text, nullable=True),
    Column("changed_at", UTCDateTime, nullable=True),
)

# Queues paused on their own (migration 0021): workers claim nothing from them while the
# rest of the engine runs; their jobs wait. Few rows, read with the engine pause.
paused_queues = Table(
    "paused_queues",
    metadata,
    Column("queue", String(100), primary_key=True),
    Column("reason", Text, nullable=True),
    Column("actor", String(254), nullable=True),
    Column("paused_at", UTCDateTime, nullable=False),
)

# Who did what to which job, schedule or the engine (the operator console's audit trail).
# `actor` is a user's email, or `cli`, `internal-key`, `scheduler`. Kept as long as job_logs.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(254), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target_type", String(16), nullable=False),  # job | jobs | schedule | engine | queue
    Column("target_id", String(100), nullable=True),
    Column("detail", JSONType, nullable=True),
)
Index("ix_audit_log_at", audit_log.c.at)
Index("ix_audit_log_target", audit_log.c.target_type, audit_log.c.target_id)
