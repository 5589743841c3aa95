"""The job engine's database backends, behind one interface (`Backend`, in `base`).

`backend_for(engine)` picks the backend once from the engine's dialect; nothing else in
`jobs/` asks which database it is on. To add a database, see docs/jobs.md ("Adding a
backend").
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import Connection, Engine

from superseller.jobs.backend.base import LOST_MESSAGE, Backend, ClaimedJob, Outcome

__all__ = ["LOST_MESSAGE", "Backend", "ClaimedJob", "Outcome", "backend_for"]


@cache
def _backend(dialect: str) -> Backend:
    if dialect == "postgresql":
        from superseller.jobs.backend.postgres import PostgresBackend

        return PostgresBackend()
    if dialect == "sqlite":
        from superseller.jobs.backend.sqlite import SQLiteBackend

        return SQLiteBackend()
    raise ValueError(f"no job engine backend for database {dialect!r}")


def backend_for(bind: Engine | Connection) -> Backend:
    """The backend of an engine's (or connection's) database; one instance per dialect."""
    return _backend(bind.dialect.name)
