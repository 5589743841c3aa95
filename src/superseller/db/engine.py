"""Engines for the two supported databases.

PostgreSQL: a process holds at most DB_POOL_SIZE + DB_MAX_OVERFLOW pooled connections
(SQLAlchemy's QueuePool refuses more: a caller waits up to DB_POOL_TIMEOUT_S), each named
`<DB_APPLICATION_NAME>/<pid>` in pg_stat_activity; a worker adds its one LISTEN connection
(docs/OPERATIONS.md, "Connection budget"). With DATABASE_POOLER_URL set (PgBouncer in
transaction mode) the pooled connections go through the pooler, without server-side
prepared statements, while the engine's URL, which the LISTEN connection uses, stays
DATABASE_URL, the direct address.

SQLite (embedded default) runs in WAL mode with a busy timeout, and every
transaction starts with `BEGIN IMMEDIATE` so that concurrent writers queue on
the busy timeout instead of failing with a lock-upgrade deadlock. Read-only
work can opt out with `conn.execution_options(sqlite_deferred=True)`.

Both hide bound parameters in errors (`hide_parameters=True`): a failed statement's
message names its SQL, never the values (tokens, e-mail addresses) it was given.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_MS = 60_000
PG_CONNECT_ARGS = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def normalize_url(url: str) -> str:
    """Accept the usual spellings of a PostgreSQL URL and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@dataclass(frozen=True)
class PoolBudget:
    pool_size: int = 5
    max_overflow: int = 5
    timeout_s: float = 30.0
    pooler_url: str = ""
    application_name: str = "superseller"
    idle_in_transaction_timeout_s: float = 60.0

    @classmethod
    def from_settings(cls) -> PoolBudget:
        from superseller.config import Settings  # the settings of this process's environment

        s = Settings()
        return cls(
            s.db_pool_size,
            s.db_max_overflow,
            s.db_pool_timeout_s,
            s.database_pooler_url,
            s.db_application_name,
            s.db_idle_in_transaction_timeout_s,
        )

    @property
    def connections(self) -> int:
        """Pooled connections at most (a worker adds its LISTEN connection)."""
        return self.pool_size + self.max_overflow


def make_engine(url: str, *, budget: PoolBudget | None = None) -> Engine:
    url = normalize_url(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend == "postgresql":
        return _pg_engine(url, budget or PoolBudget.from_settings())
    raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def _pg_engine(url: str, budget: PoolBudget) -> Engine:
    parsed = make_url(url)
    if "application_name" not in parsed.query:  # in the URL: the LISTEN connection gets it too
        name = f"{budget.application_name}/{os.getpid()}"
        parsed = parsed.update_query_dict({"application_name": name})
    connect_args = dict(PG_CONNECT_ARGS)
    if budget.idle_in_transaction_timeout_s and not budget.pooler_url:
        # A client cut off mid-transaction must not hold its locks for hours.
        ms = int(budget.idle_in_transaction_timeout_s * 1000)
        connect_args["options"] = f"-c idle_in_transaction_session_timeout={ms}"
    engine = create_engine(
        parsed,
        pool_size=budget.pool_size,
        max_overflow=budget.max_overflow,
        pool_timeout=budget.timeout_s,
        pool_pre_ping=True,
        hide_parameters=True,  # errors and logs never show bound values (tokens, PII)
        # A server that vanished without a word (a partition, not a restart) must fail
        # calls, not hang them: the loops retry what fails.
        connect_args=connect_args,
    )
    if budget.pooler_url:
        pooler = make_url(normalize_url(budget.pooler_url))

        @event.listens_for(engine, "do_connect")
        def _through_pooler(_dialect, _record, _cargs, cparams):
            cparams.update(host=pooler.host, port=pooler.port or 5432)
            if pooler.database:
                cparams["dbname"] = pooler.database
            if pooler.username:
                cparams["user"] = pooler.username
            if pooler.password:
                cparams["password"] = pooler.password
            # A transaction pooler hands each transaction any server connection: a statement
            # prepared on one is unknown on the next (PgBouncer before 1.21).
            cparams["prepare_threshold"] = None

    return engine


def _private_sqlite_file(url: str) -> None:
    """The database file readable by its owner only (0600); SQLite gives its -wal and -shm
    files the database file's mode. An existing file (and its -wal/-shm) is tightened."""
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    with contextlib.suppress(OSError):  # a directory we cannot write: SQLite will say so
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):  # absent, or not ours
            os.chmod(path + suffix, 0o600)


def _sqlite_engine(url: str) -> Engine:
    _private_sqlite_file(url)
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        hide_parameters=True,  # errors and logs never show bound values (tokens, PII)
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        deferred = conn.get_execution_options().get("sqlite_deferred", False)
        conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

    return engine


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@contextlib.contextmanager
def write_transaction(engine: Engine, sqlite_lock_wait_s: float | None = None):
    """A write transaction; on SQLite waiting at most `sqlite_lock_wait_s` for the write
    lock (an OperationalError after it) instead of the engine's long busy timeout.
    PostgreSQL's row locks are not waited on differently."""
    if sqlite_lock_wait_s is None or is_postgres(engine):
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        raw.execute(f"PRAGMA busy_timeout={int(sqlite_lock_wait_s * 1000)}")
        try:
            with conn.begin():
                yield conn
        finally:
            raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
