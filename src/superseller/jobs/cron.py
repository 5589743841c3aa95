"""Cron expressions in a local time zone (cronsim), including AWS EventBridge's 6-field form.

Fire times are computed in local wall time and returned in UTC. DST follows
cronsim (like Debian's cron): a tick that falls in a spring-forward gap fires
at the end of the gap; a fixed-time tick in a repeated fall-back hour fires
once; expressions with a wildcard hour (`*/30 * * * *`) follow real time and
fire in both copies of the repeated hour.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from superseller.jobs.errors import JobError


class InvalidSchedule(JobError):
    """A cron expression or time zone that cannot be used."""


_EPSILON = timedelta(microseconds=1)
_AWS = re.compile(r"^\s*cron\((?P<body>[^)]*)\)\s*$", re.IGNORECASE)
_DOW_NUMBER = re.compile(r"\d+")


def normalize_cron(expr: str) -> str:
    """Return a standard 5-field expression; accept AWS `cron(m h dom mon dow year)`.

    AWS numbers days of the week 1-7 from Sunday (cron: 0-6), writes `?` for
    "no specific value", and has a year field, which must be `*` here.
    """
    if not isinstance(expr, str) or not expr.strip():
        raise InvalidSchedule("cron expression is empty")
    match = _AWS.match(expr)
    if match is None:
        fields = expr.split()
        if len(fields) != 5:
            raise InvalidSchedule(
                f"cron expression {expr!r} must have 5 fields (minute hour day month weekday) "
                "or be AWS-style cron(minute hour day month weekday year)"
            )
        result = " ".join(fields)
    else:
        fields = match.group("body").split()
        if len(fields) != 6:
            raise InvalidSchedule(f"AWS cron expression {expr!r} must have 6 fields")
        minute, hour, dom, month, dow, year = fields
        if year not in ("*", "?"):
            raise InvalidSchedule(f"AWS cron year field {year!r} is not supported (use *)")
        dom = "*" if dom == "?" else dom
        dow = "*" if dow == "?" else _DOW_NUMBER.sub(lambda m: _aws_dow(m.group(), expr), dow)
        result = " ".join((minute, hour, dom, month, dow))
    try:
        CronSim(result, datetime(2026, 1, 1, tzinfo=UTC))
    except (CronSimError, ValueError) as exc:
        raise InvalidSchedule(f"invalid cron expression {expr!r}: {exc}") from None
    return result


def _aws_dow(number: str, expr: str) -> str:
    n = int(number)
    if not 1 <= n <= 7:
        raise InvalidSchedule(f"AWS day of week {n} in {expr!r} is out of range 1-7")
    return str(n - 1)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(
            f"unknown time zone {name!r} (use an IANA name such as America/Sao_Paulo)"
        ) from None


def fire_times(expr: str, tz: str, after: datetime) -> Iterator[datetime]:
    """Fire times strictly after `after`, in UTC, in order."""
    local_after = after.astimezone(zone(tz))
    for local in CronSim(expr, local_after):
        fire = local.astimezone(UTC)
        if fire > after:
            yield fire


def next_fire(expr: str, tz: str, after: datetime) -> datetime:
    return next(fire_times(expr, tz, after))


def fire_times_between(
    expr: str, tz: str, start: datetime, end: datetime, limit: int = 100_000
) -> list[datetime]:
    """Fire times t with start <= t <= end (UTC), at most `limit` of them."""
    out: list[datetime] = []
    for fire in fire_times(expr, tz, start - _EPSILON):
        if fire > end or len(out) >= limit:
            break
        out.append(fire)
    return out
