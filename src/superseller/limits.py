"""The bounds every input is checked against: one home, shared by the CLI, the API and the web.

A value outside these bounds is refused where it enters (a one-line CLI error with exit 2,
a 4xx with the project's error body), never stored and never left to fail later in a job
or at the database. The figures are what both databases and Python represent, with room
for what the domain needs.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

# Dates a seller's figures can be about (sync, rebuild, overview, schedules' backfill).
DATE_MIN = dt.date(2000, 1, 1)
DATE_MAX = dt.date(2100, 12, 31)
# The longest range one request or job may cover (a rebuild, an overview, a backfill).
MAX_RANGE_DAYS = 400

# Row ids (jobs, schedules, job logs): what a 64-bit column holds, with room to spare.
ID_MAX = 2**62

# Jobs
PRIORITY_MIN, PRIORITY_MAX = -1000, 1000
MAX_ATTEMPTS_MAX = 100
PAYLOAD_MAX_BYTES = 64 * 1024
# Lengths as the schema declares them (db/tables_*.py).
TENANT_ID_MAX_LEN = 36  # tenants.id; jobs.tenant_id allows 64
TENANT_NAME_MAX_LEN = 200
REASON_MAX_LEN = 500  # why the engine was paused
EMAIL_MAX_LEN = 254  # users.email (RFC 5321's path limit)
PASSWORD_MAX_LEN = 1024  # hashing a longer one is work for nothing
QUEUE_MAX_LEN = 100
UNIQUE_KEY_MAX_LEN = 255
JOB_TYPE_MAX_LEN = 100
JOB_TENANT_MAX_LEN = 64  # jobs.tenant_id: a tenant id, or "all" and the like
TIMEOUT_MAX_S = 7 * 86400  # a job's time-out
DEADLINE_MAX_S = 31 * 86400  # a schedule's deadline after its tick


class LimitError(ValueError):
    """An input outside its bounds; the message is one line a user can act on."""


class PayloadTooLarge(LimitError):
    """A payload over PAYLOAD_MAX_BYTES (HTTP 413)."""


def check_date(value: dt.date, what: str = "date") -> dt.date:
    if not DATE_MIN <= value <= DATE_MAX:
        raise LimitError(f"{what} {value.isoformat()} is outside {DATE_MIN} .. {DATE_MAX}")
    return value


def check_range(start: dt.date, end: dt.date, max_days: int = MAX_RANGE_DAYS) -> None:
    check_date(start, "start")
    check_date(end, "end")
    if end < start:
        raise LimitError(f"the range ends ({end}) before it starts ({start})")
    days = (end - start).days + 1
    if days > max_days:
        raise LimitError(f"the range covers {days} days; at most {max_days} are allowed")


def check_int(value: int, lo: int, hi: int, what: str) -> int:
    if not lo <= value <= hi:
        raise LimitError(f"{what} must be between {lo} and {hi}, got {value}")
    return value


def check_len(value: str | None, max_len: int, what: str) -> str | None:
    if value is not None and len(value) > max_len:
        raise LimitError(f"{what} is {len(value)} characters long; at most {max_len} are allowed")
    return value


def check_datetime(value: dt.datetime | None, what: str) -> dt.datetime | None:
    if value is not None:
        check_date(value.date(), what)
    return value


def check_payload_size(payload: Any) -> None:
    if not payload:  # the common empty payload: nothing to measure
        return
    size = len(json.dumps(payload, separators=(",", ":"), default=str).encode())
    if size > PAYLOAD_MAX_BYTES:
        raise PayloadTooLarge(
            f"the payload is {size} bytes; at most {PAYLOAD_MAX_BYTES} are allowed"
        )


def check_job(
    *,
    job_type: str,
    payload: Any = None,
    tenant_id: str | None = None,
    queue: str | None = None,
    priority: int = 0,
    max_attempts: int | None = None,
    unique_key: str | None = None,
    lock_key: str | None = None,
    timeout_s: float | None = None,
    run_at: dt.datetime | None = None,
) -> None:
    """Every bound of a job about to be stored (the queue's one check, whoever enqueues)."""
    check_len(job_type, JOB_TYPE_MAX_LEN, "the job type")
    check_len(tenant_id, JOB_TENANT_MAX_LEN, "the tenant id")
    check_len(queue, QUEUE_MAX_LEN, "the queue name")
    check_len(unique_key, UNIQUE_KEY_MAX_LEN, "the unique key")
    check_len(lock_key, UNIQUE_KEY_MAX_LEN, "the lock key")
    check_int(priority, PRIORITY_MIN, PRIORITY_MAX, "priority")
    if max_attempts is not None:
        check_int(max_attempts, 1, MAX_ATTEMPTS_MAX, "max attempts")
    if timeout_s is not None and not 0 < timeout_s <= TIMEOUT_MAX_S:
        raise LimitError(f"the time-out must be between 0 and {TIMEOUT_MAX_S} s, got {timeout_s}")
    check_datetime(run_at, "run at")
    check_payload_size(payload or {})
