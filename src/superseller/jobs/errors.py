"""Errors the job engine raises or understands, and how an attempt's error is written down.

`error_text(exc)` is the one rule for the text a failed attempt records (the job's
`last_error`, its `job_logs.error_message`, the console's Erro column, the runs log line):
a database error is one short line, its driver's first line ("OperationalError: server
closed the connection unexpectedly"), never the statement nor its parameters; any other
error is "Type: message", with SQL an error quoted cut off. `one_line(exc)` is the short
form the loops log.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc as sa_exc

from superseller.errors import UserFacingError

MAX_ERROR_CHARS = 1000  # a message longer than this is cut (a handler's own long text)
_SQL_MARKERS = ("[SQL:", "[parameters:", "[SQL parameters hidden")
_DB_ERROR_TYPES: tuple[type[BaseException], ...] = (sa_exc.SQLAlchemyError, sqlite3.Error)
try:
    import psycopg

    _DB_ERROR_TYPES = (*_DB_ERROR_TYPES, psycopg.Error)
except ImportError:  # pragma: no cover - psycopg is a dependency
    pass


def _driver_error(exc: BaseException) -> BaseException:
    """What the driver raised, when SQLAlchemy wrapped it (its message has the SQL too)."""
    if isinstance(exc, sa_exc.StatementError) and exc.orig is not None:
        return exc.orig
    return exc


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def _without_sql(text: str) -> str:
    cut = min((i for i in (text.find(m) for m in _SQL_MARKERS) if i >= 0), default=len(text))
    return text[:cut].rstrip()


def one_line(exc: BaseException) -> str:
    """A short, single-line description of `exc` for a log line (a database error: the
    driver's first line, without the SQL)."""
    inner = _driver_error(exc)
    return _without_sql(_first_line(str(inner))) or type(inner).__name__


def error_text(exc: BaseException) -> str:
    """The error a failed attempt records: one short line for a database error
    ("OperationalError: server closed the connection unexpectedly"), "Type: message"
    otherwise; never SQL nor bound parameters, at most MAX_ERROR_CHARS."""
    inner = _driver_error(exc)
    if isinstance(exc, _DB_ERROR_TYPES):
        text = f"{type(inner).__name__}: {one_line(inner)}"
    else:
        text = _without_sql(f"{type(exc).__name__}: {exc}")
    return text[:MAX_ERROR_CHARS]


class JobError(UserFacingError):
    """Base class for job engine errors shown to users (the API maps each subclass)."""


class UnknownJobType(JobError):
    def __init__(self, job_type: str, known: list[str]):
        names = ", ".join(sorted(known)) or "none"
        super().__init__(f"unknown job type {job_type!r} (registered: {names})")
        self.job_type = job_type


class InvalidPayload(JobError):
    def __init__(self, job_type: str, detail: str):
        super().__init__(f"invalid payload for {job_type!r}: {detail}")
        self.job_type = job_type
        self.detail = detail


class JobNotFound(JobError):
    def __init__(self, job_id: int):
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class InvalidTransition(JobError):
    """An admin action that does not apply to the job's current state."""


class JobCancelled(Exception):
    """Raised inside a handler (by `ctx.raise_if_cancelled()`) when cancel was requested."""


class JobTimeout(Exception):
    """The attempt ran past its timeout."""


class PermanentJobError(Exception):
    """A handler failure that retrying cannot fix: the job fails at once, no retry."""
