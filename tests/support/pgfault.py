"""Cutting a PostgreSQL database's sessions from outside, as a restart or a failover does."""

from __future__ import annotations

from sqlalchemy import text

from superseller.db.engine import make_engine
from tests.support.env import PG_ADMIN_URL


def terminate_backends(db_name: str) -> None:
    """End every session on `db_name` (but this one's): their next statement fails."""
    admin = make_engine(PG_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": db_name},
            )
    finally:
        admin.dispose()
