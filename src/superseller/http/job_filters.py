"""Job filters from query strings, shared by the admin API and the console pages: state,
type, tenant, queue, and created/finished windows (a local day in São Paulo or an ISO
date-time with an offset), validated into a `JobFilter` (422 with the field otherwise)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal

from fastapi import Depends, Query

from superseller.config import DEFAULT_TIMEZONE
from superseller.http.errors import ApiError
from superseller.jobs.admin import JOB_STATES, JobFilter
from superseller.jobs.cron import zone
from superseller.limits import DATE_MAX, DATE_MIN, JOB_TYPE_MAX_LEN, QUEUE_MAX_LEN

CONSOLE_TZ = DEFAULT_TIMEZONE  # local days in filters are the sellers' days


def moment(value: str | None, name: str, end: bool = False) -> datetime | None:
    """`YYYY-MM-DD` (a local day in São Paulo; as an upper bound, the whole day) or an ISO
    date-time with an offset."""
    if value is None or value == "":
        return None
    bad = ApiError(
        422,
        "invalid_request",
        f"{name} must be a date YYYY-MM-DD or a date-time with an offset",
        [{"field": name, "problem": "not a date or date-time with offset"}],
    )
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            if end:
                day += timedelta(days=1)
            at = datetime.combine(day, time.min, zone(CONSOLE_TZ))
        else:
            at = datetime.fromisoformat(value)
    except ValueError:
        raise bad from None
    if at.tzinfo is None:
        raise bad
    if not DATE_MIN <= at.date() <= DATE_MAX + timedelta(days=1):
        raise ApiError(
            422,
            "invalid_request",
            f"{name} must be between {DATE_MIN} and {DATE_MAX}",
            [{"field": name, "problem": "out of range"}],
        )
    return at.astimezone(UTC)


def job_filter(
    state: Literal[JOB_STATES] | None = None,  # type: ignore[valid-type]
    type: str | None = Query(None, max_length=JOB_TYPE_MAX_LEN),
    tenantId: str | None = Query(None, max_length=64),
    queue: str | None = Query(None, max_length=QUEUE_MAX_LEN),
    createdFrom: str | None = Query(None, max_length=40, description="YYYY-MM-DD or date-time"),
    createdTo: str | None = Query(None, max_length=40, description="inclusive day, or date-time"),
    finishedFrom: str | None = Query(None, max_length=40),
    finishedTo: str | None = Query(None, max_length=40),
) -> JobFilter:
    f = JobFilter(
        status=state,
        job_type=type or None,
        tenant_id=tenantId or None,
        queue=queue or None,
        created_from=moment(createdFrom, "createdFrom"),
        created_to=moment(createdTo, "createdTo", end=True),
        finished_from=moment(finishedFrom, "finishedFrom"),
        finished_to=moment(finishedTo, "finishedTo", end=True),
    )
    for lo, hi, name in (
        (f.created_from, f.created_to, "createdTo"),
        (f.finished_from, f.finished_to, "finishedTo"),
    ):
        if lo is not None and hi is not None and hi <= lo:
            raise ApiError(
                422,
                "invalid_request",
                f"{name} is before its start",
                [{"field": name, "problem": "before the start"}],
            )
    return f


def next_page(rows: list[dict], limit: int, sort: str) -> dict | None:
    if len(rows) < limit:
        return None
    last = rows[-1]
    return {
        "before": last["id"],
        "beforeFinished": last["finished_at"] if sort == "finished" else None,
    }


Filter = Annotated[JobFilter, Depends(job_filter)]
