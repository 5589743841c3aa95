"""The audit trail: who did what to which job, schedule, queue or the engine, and when.

The actor is a user's email, `cli:<OS user>` for a command run at a shell (`cli_actor`),
or one of the non-person actors below. Actions are recorded by whoever acts (the admin
API, the CLI, the internal endpoints), in the same transaction as the change when one is
given. Rows are kept as long as job_logs
(the `cleanup` job deletes older ones).
"""

from __future__ import annotations

import getpass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select

from superseller.db.rows import row_dict
from superseller.db.schema import audit_log, schedule_occurrences
from superseller.jobs.clock import Clock, SystemClock

CLI, INTERNAL_KEY, SCHEDULER = "cli", "internal-key", "scheduler"
TARGETS = ("job", "jobs", "schedule", "engine", "queue")


def cli_actor() -> str:
    """Who acts from the command line: `cli:<the OS user running it>` (`cli` alone when
    the system names no user), what every CLI command records its actions as."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        return CLI
    return f"{CLI}:{user}" if user else CLI


def record(
    target: Engine | Connection,
    actor: str,
    action: str,
    target_type: str,
    target_id: Any = None,
    detail: dict[str, Any] | None = None,
    clock: Clock | None = None,
) -> None:
    """Append one entry (in the caller's transaction when given a connection)."""
    if target_type not in TARGETS:
        raise ValueError(f"unknown audit target {target_type!r}")
    values = {
        "at": (clock or SystemClock()).now(),
        "actor": actor[:254],
        "action": action,
        "target_type": target_type,
        "target_id": None if target_id is None else str(target_id)[:100],
        "detail": detail,
    }
    if isinstance(target, Connection):
        target.execute(insert(audit_log).values(**values))
        return
    with target.begin() as conn:
        conn.execute(insert(audit_log).values(**values))


# What the scheduler did with a tick (its ledger's outcome) -> the audit action.
SCHEDULER_ACTIONS = {
    "enqueued": "schedule.enqueue",
    "skipped": "schedule.skip",
    "missed": "schedule.miss",
}


def scheduler_ticks(conn: Connection, schedule_id: int, schedule_name: str, now: datetime) -> int:
    """Record, as the `scheduler` actor, what the scheduler's pass at `now` did with each
    tick of one schedule (enqueued, skipped, missed), from the ledger rows that pass wrote,
    in its transaction. Returns how many entries were written."""
    rows = conn.execute(
        select(
            schedule_occurrences.c.fire_time,
            schedule_occurrences.c.outcome,
            schedule_occurrences.c.reason,
            schedule_occurrences.c.job_id,
        )
        .where(
            schedule_occurrences.c.schedule_id == schedule_id,
            schedule_occurrences.c.created_at == now,
        )
        .order_by(schedule_occurrences.c.fire_time)
    ).all()
    values = [
        {
            "at": now,
            "actor": SCHEDULER,
            "action": SCHEDULER_ACTIONS.get(r.outcome, f"schedule.{r.outcome}"),
            "target_type": "schedule",
            "target_id": schedule_name[:100],
            "detail": {"fireTime": r.fire_time.isoformat(), "jobId": r.job_id, "reason": r.reason},
        }
        for r in rows
    ]
    if values:
        conn.execute(insert(audit_log), values)
    return len(values)


def entries(
    engine: Engine,
    *,
    actor: str | None = None,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[dict[str, Any]]:
    """Newest first; keyset pages with `before_id`."""
    stmt = select(audit_log).order_by(audit_log.c.id.desc()).limit(max(1, min(limit, 500)))
    for column, value in (
        (audit_log.c.actor, actor),
        (audit_log.c.action, action),
        (audit_log.c.target_type, target_type),
        (audit_log.c.target_id, target_id),
    ):
        if value:
            stmt = stmt.where(column == value)
    if since is not None:
        stmt = stmt.where(audit_log.c.at >= since)
    if until is not None:
        stmt = stmt.where(audit_log.c.at < until)
    if before_id is not None:
        stmt = stmt.where(audit_log.c.id < before_id)
    with engine.connect() as conn:
        return [row_dict(r) for r in conn.execute(stmt)]


def delete_before(conn: Connection, cutoff: datetime) -> int:
    """Retention: drop entries older than `cutoff`."""
    return conn.execute(delete(audit_log).where(audit_log.c.at < cutoff)).rowcount
