"""A throw-away PostgreSQL database for a benchmark: created, migrated to head, yielded as an
engine, and dropped on the way out (also after Ctrl-C or a failure)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine

from superseller.db import migrate
from superseller.db.engine import make_engine

SERVER = "postgresql://postgres@127.0.0.1:5432"


@contextmanager
def scratch_postgres(prefix: str, server: str = SERVER) -> Iterator[Engine]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(f"{server}/postgres").execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = make_engine(f"{server}/{name}")
    try:
        migrate.upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
