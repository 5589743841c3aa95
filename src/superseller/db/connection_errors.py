"""Which errors mean the database is away, and which mean a connection to it was lost.

Two rules, one home (the `db` layer, so that the job engine and the API share them):

- `DB_ERRORS`: the database is unreachable or stalled. Lost or refused connections, a
  terminated backend, SQLite's "database is locked" (OperationalError, wrapped by
  SQLAlchemy or raw from psycopg), pool time-outs, socket errors. Not IntegrityError,
  DataError and the like: those are bugs or bad data. The API answers these with 503
  `database_unavailable`; the worker and scheduler loops retry them with back-off.
- `connection_lost(exc)`: narrower, a *server's* connection went away under the caller
  (a PostgreSQL restart, `pg_terminate_backend`, a network cut, a refused reconnect). The
  worker does not count such an attempt against the job (docs/jobs.md, "When the database
  goes away during a job"). SQLite is never in it: an embedded file has no server to lose,
  and its OperationalErrors ("database is locked", "disk I/O error") say nothing about an
  outage the job merely happened to meet.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc as sa_exc

DB_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    OSError,
)
try:  # the LISTEN connection talks psycopg directly
    import psycopg

    DB_ERRORS = (*DB_ERRORS, psycopg.OperationalError, psycopg.InterfaceError)
except ImportError:  # pragma: no cover - psycopg is a dependency
    psycopg = None

# PostgreSQL SQLSTATEs of a session ended or refused by the server: class 08 (connection
# exception) and the shutdown family (57P01 admin shutdown: pg_terminate_backend or a fast
# shutdown; 57P02 crash shutdown; 57P03 cannot connect now: starting up or shutting down).
# Not 57014 (a statement time-out or a cancel), 53xxx (out of resources, too many
# connections) nor 40xxx (deadlock, serialization): the server is there, the work failed.
_SERVER_GONE = ("57P01", "57P02", "57P03")


def connection_lost(exc: BaseException) -> bool:
    """Whether `exc` (or what it was raised from or while handling) is a lost or refused
    connection to a database server."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 16:
        seen.add(id(current))
        if _lost(current):
            return True
        # `raise X from None` hides the context on purpose: respect it.
        suppressed = current.__suppress_context__
        current = current.__cause__ or (None if suppressed else current.__context__)
    return False


def _lost(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DisconnectionError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if isinstance(exc.orig, sqlite3.Error):
            return False
        # SQLAlchemy asked the dialect: the connection is closed or broken (psycopg's state
        # after a terminated backend, a reset socket, a server gone mid-statement).
        if exc.connection_invalidated:
            return True
        return exc.orig is not None and _lost_psycopg(exc.orig)
    return _lost_psycopg(exc)


def _lost_psycopg(exc: BaseException) -> bool:
    if psycopg is None or not isinstance(exc, psycopg.OperationalError):
        return False
    if isinstance(exc, psycopg.errors.PipelineAborted):
        return False  # an earlier statement of the pipeline failed; the connection is fine
    state = exc.sqlstate
    # No SQLSTATE: libpq's own errors (connection refused, server closed the connection
    # unexpectedly, connect time-out), raised before or instead of any server answer.
    return state is None or state.startswith("08") or state in _SERVER_GONE
