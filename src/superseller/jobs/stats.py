"""Job statistics that stay fast on millions of rows: maintained hourly counters.

`fold()` adds the job_logs rows past a watermark to `job_stats_hourly`
(per job type, UTC hour and status: runs, total duration, records) and moves
the watermark, in one transaction, so a row is counted exactly once however
many processes fold at the same time. Only rows older than `SETTLE_S` are
folded: a job_logs id handed out just before another, but committed just after
it, is still in the live tail and not skipped by the watermark.

Readers never write: they add the rollup (a few rows per type and hour) to the
live tail past the watermark, summed by the database, all read in one snapshot
(`Backend.snapshot`) so that a fold committing meanwhile is counted once, not twice
or never. The tail is bounded by how often the `update_stats` job folds (the
`hourly-stats-fold` and `weekly-stats` schedules). Nothing counts over the whole history.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, literal_column, select, update

from superseller.db.rows import row_dict
from superseller.db.schema import (
    JOB_STATES,
    job_logs,
    job_schedules,
    job_stats_hourly,
    job_stats_state,
    jobs,
)
from superseller.jobs.backend import backend_for
from superseller.jobs.clock import Clock, SystemClock
from superseller.jobs.context import JobContext
from superseller.jobs.registry import JobType, NoPayload, Registry

SETTLE_S = 60

# What a job_logs status says about the attempt. A failure: the handler failed or ran out of
# time. An interruption: the attempt did not fail, it was cut off (its database connection
# lost and given back, its worker lost and rescued, its worker shut down). Neither: success,
# cancelled. Every failure count (per type, per hour) uses this one rule.
FAILURE_STATUSES = frozenset({"error", "timeout"})
INTERRUPTED_STATUSES = frozenset({"disconnected", "lost", "interrupted"})
FOLD_BATCH = 50_000


def _as_hour(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def fold(engine: Engine, clock: Clock | None = None, batch: int = FOLD_BATCH) -> int:
    """Fold up to `batch` settled job_logs rows into the hourly counters; returns how many."""
    now = (clock or SystemClock()).now()
    backend = backend_for(engine)
    with engine.begin() as conn:
        # Take the watermark row's lock first: concurrent folds queue here.
        conn.execute(
            update(job_stats_state)
            .where(job_stats_state.c.id == 1)
            .values(last_log_id=job_stats_state.c.last_log_id)
        )
        mark = conn.execute(
            select(job_stats_state.c.last_log_id).where(job_stats_state.c.id == 1)
        ).scalar_one()
        upper = conn.execute(
            select(func.max(literal_column("id"))).select_from(
                select(job_logs.c.id)
                .where(
                    job_logs.c.id > mark,
                    job_logs.c.completed_at < now - timedelta(seconds=SETTLE_S),
                )
                .order_by(job_logs.c.id)
                .limit(batch)
                .subquery()
            )
        ).scalar()
        if upper is None:
            return 0
        hour = backend.hour_bucket(job_logs.c.started_at).label("hour")
        groups = conn.execute(
            select(
                job_logs.c.job_type,
                hour,
                job_logs.c.status,
                func.count().label("runs"),
                func.coalesce(func.sum(job_logs.c.duration_ms), 0).label("ms"),
                func.coalesce(func.sum(job_logs.c.records_processed), 0).label("records"),
                func.count().filter(job_logs.c.attempt > 1).label("retries"),
            )
            .where(job_logs.c.id > mark, job_logs.c.id <= upper)
            .group_by(job_logs.c.job_type, hour, job_logs.c.status)
        ).all()
        rows = [
            {
                "job_type": g.job_type,
                "hour": _as_hour(g.hour),
                "status": g.status,
                "runs": g.runs,
                "total_duration_ms": int(g.ms),
                "records": int(g.records),
                "retries": g.retries,
            }
            for g in groups
        ]
        backend.upsert_stats(conn, job_stats_hourly, rows)
        conn.execute(
            update(job_stats_state)
            .where(job_stats_state.c.id == 1)
            .values(last_log_id=upper, folded_at=now)
        )
        return sum(r["runs"] for r in rows)


@dataclass
class _TypeStats:
    runs: int = 0
    runs_24h: int = 0
    failures_24h: int = 0
    interrupted_24h: int = 0
    total_ms: int = 0
    retries: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add_totals(self, status: str, runs: int, ms: int, recent_runs: int, retries: int) -> None:
        """Counters already summed per (type, status); `recent_runs` of the last 24 h."""
        self.runs += runs
        self.total_ms += ms
        self.retries += retries
        self.by_status[status] += runs
        self.runs_24h += recent_runs
        if status in FAILURE_STATUSES:
            self.failures_24h += recent_runs
        elif status in INTERRUPTED_STATUSES:
            self.interrupted_24h += recent_runs


def job_type_stats(
    engine: Engine, clock: Clock | None = None, tenant_id: str | None = None
) -> dict[str, Any]:
    """Per job type: runs (all kept history, and the last 24 h), average duration, outcome
    counts, the last run, and the last 10 errors. Global stats come from the counters;
    a tenant's from its own job_logs (a tenant has few runs)."""
    now = (clock or SystemClock()).now()
    day_ago = now - timedelta(hours=24)
    per_type: dict[str, _TypeStats] = defaultdict(_TypeStats)
    t = job_logs.c
    with backend_for(engine).snapshot(engine) as conn:
        tail = select(
            t.job_type,
            t.status,
            func.count().label("runs"),
            func.coalesce(func.sum(t.duration_ms), 0).label("ms"),
            func.count().filter(t.attempt > 1).label("retries"),
            func.count().filter(t.started_at >= day_ago).label("recent"),
        ).group_by(t.job_type, t.status)
        if tenant_id is None:
            mark = conn.execute(select(job_stats_state.c.last_log_id)).scalar() or 0
            h = job_stats_hourly
            recent = h.c.hour >= day_ago.replace(minute=0, second=0, microsecond=0)
            for r in conn.execute(
                select(
                    h.c.job_type,
                    h.c.status,
                    func.sum(h.c.runs).label("runs"),
                    func.sum(h.c.total_duration_ms).label("ms"),
                    func.sum(h.c.retries).label("retries"),
                    func.coalesce(func.sum(h.c.runs).filter(recent), 0).label("recent"),
                ).group_by(h.c.job_type, h.c.status)
            ):
                per_type[r.job_type].add_totals(
                    r.status, int(r.runs), int(r.ms), int(r.recent), int(r.retries)
                )
            tail = tail.where(t.id > mark)
        else:
            tail = tail.where(t.tenant_id == tenant_id)
        for r in conn.execute(tail):
            per_type[r.job_type].add_totals(
                r.status, int(r.runs), int(r.ms), int(r.recent), int(r.retries)
            )
        out = []
        for name in sorted(per_type):
            s = per_type[name]
            last = select(job_logs).where(job_logs.c.job_type == name)
            if tenant_id is not None:
                last = last.where(job_logs.c.tenant_id == tenant_id)
            last_run = conn.execute(last.order_by(job_logs.c.started_at.desc()).limit(1)).first()
            out.append(
                {
                    "jobType": name,
                    "totalRuns": s.runs,
                    "runs24h": s.runs_24h,
                    "failures24h": s.failures_24h,
                    "interrupted24h": s.interrupted_24h,
                    "avgDurationMs": round(s.total_ms / s.runs) if s.runs else None,
                    "totalDurationMs": s.total_ms,
                    "retries": s.retries,
                    "byStatus": dict(s.by_status),
                    "lastRun": row_dict(last_run) if last_run else None,
                }
            )
        errors = select(job_logs).where(job_logs.c.status != "success")
        if tenant_id is not None:
            errors = errors.where(job_logs.c.tenant_id == tenant_id)
        recent_errors = [
            row_dict(r) for r in conn.execute(errors.order_by(job_logs.c.id.desc()).limit(10))
        ]
    return {"types": out, "recentErrors": recent_errors}


def hourly(
    engine: Engine, hours: int = 24, job_type: str | None = None, clock: Clock | None = None
) -> dict[str, Any]:
    """Runs and failures (attempts that failed: `FAILURE_STATUSES`) per UTC hour and job type over the
    last `hours`: the hourly counters, plus the live tail past the watermark."""
    now = (clock or SystemClock()).now()
    since = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    buckets: dict[tuple[datetime, str], list[int]] = defaultdict(lambda: [0, 0])
    h = job_stats_hourly
    t = job_logs.c
    backend = backend_for(engine)
    with backend.snapshot(engine) as conn:
        mark = conn.execute(select(job_stats_state.c.last_log_id)).scalar() or 0
        counted = select(h.c.hour, h.c.job_type, h.c.status, h.c.runs).where(h.c.hour >= since)
        hour = backend.hour_bucket(t.started_at).label("hour")
        tail = (
            select(
                hour,
                t.job_type,
                func.count().label("runs"),
                func.count().filter(t.status.in_(FAILURE_STATUSES)).label("failures"),
            )
            .where(t.id > mark, t.started_at >= since)
            .group_by(hour, t.job_type)
        )
        if job_type:
            counted = counted.where(h.c.job_type == job_type)
            tail = tail.where(t.job_type == job_type)
        for r in conn.execute(counted):
            b = buckets[(_as_hour(r.hour), r.job_type)]
            b[0] += r.runs
            b[1] += r.runs if r.status in FAILURE_STATUSES else 0
        for r in conn.execute(tail):
            b = buckets[(_as_hour(r.hour), r.job_type)]
            b[0] += r.runs
            b[1] += r.failures
    return {
        "hours": hours,
        "since": since.isoformat(),
        "buckets": [
            {"hour": hour.isoformat(), "jobType": jt, "runs": runs, "failures": failures}
            for (hour, jt), (runs, failures) in sorted(buckets.items())
        ],
    }


def queue_counts(engine: Engine, clock: Clock | None = None) -> dict[str, Any]:
    """Unfinished jobs exactly (a small, indexed set); finished ones over the last 24 h
    (through the finished_at index), by state and by queue."""
    now = (clock or SystemClock()).now()
    by_state = dict.fromkeys(JOB_STATES, 0)
    by_queue: dict[str, dict[str, int]] = {}
    count = select(jobs.c.queue, jobs.c.status, func.count()).group_by(jobs.c.queue, jobs.c.status)
    with engine.connect() as conn:
        rows = conn.execute(count.where(jobs.c.status.in_(("pending", "running")))).all()
        rows += conn.execute(
            count.where(
                jobs.c.status.in_(("completed", "failed", "cancelled")),
                jobs.c.finished_at >= now - timedelta(hours=24),
            )
        ).all()
        due = conn.execute(
            select(func.count()).where(jobs.c.status == "pending", jobs.c.run_at <= now)
        ).scalar_one()
        oldest = conn.execute(
            select(func.min(jobs.c.run_at)).where(jobs.c.status == "pending", jobs.c.run_at <= now)
        ).scalar()
        schedules = conn.execute(
            select(func.count(), func.count().filter(job_schedules.c.enabled))
        ).one()
    for queue, status, n in rows:
        by_state[status] += n
        by_queue.setdefault(queue, dict.fromkeys(JOB_STATES, 0))[status] = n
    return {
        "byState": by_state,
        "byQueue": by_queue,
        "finishedWindowHours": 24,
        "due": due,
        "oldestDueAgeS": round((now - oldest).total_seconds(), 1) if oldest else None,
        "schedules": {"total": schedules[0], "enabled": schedules[1]},
    }


def register(registry: Registry) -> None:
    """Job type `update_stats` (the seed's weekly stats): fold everything settled."""

    def update_stats(ctx: JobContext) -> dict:
        total = 0
        while (n := fold(ctx.engine, ctx.clock)) and not ctx.cancelled:
            total += n
            ctx.add_records(n)
        return {"logsFolded": total}

    registry.add(
        JobType(
            name="update_stats",
            handler=update_stats,
            payload_model=NoPayload,
            lock_key=lambda _p, _t: "update_stats",
            description="Fold job logs into the stats counters.",
        )
    )
