"""What keeps a simulation off an operator's data: the database and work directory it
may use, the environment its processes get, and the database given back as it was found
however the run ends.

A simulation migrates its database, adds tenants, turns schedules off and runs every
pending job: it is only ever pointed at an empty database, and exactly the one given
(never DATABASE_URL / DATABASE_POOLER_URL from the environment or a .env)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sqlite3
import sys
from pathlib import Path

from sqlalchemy import Engine, inspect, literal, select, table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from superseller.db.engine import PoolBudget, make_engine, normalize_url

# Tables a migration fills with their one row of state: present in a new database.
SEEDED = ("alembic_version", "engine_state", "job_stats_state")
SYSTEM_SCHEMAS = ("information_schema",)
# The environment of the product's settings that names a database: the simulation's
# processes get the database in their config file, and nothing else.
DB_ENV = ("DATABASE_URL", "DATABASE_POOLER_URL", "DB_APPLICATION_NAME")
CONFIG = "engine.json"
PR_SET_PDEATHSIG = 1
# Exit codes of `superseller simulate` (docs/OPERATIONS.md, "Proving the promise").
EXIT_MISSED, EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 1, 2, 3, 130
RESTORE_SQL = 'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'


class SimError(Exception):
    """A one-line message for the operator; the command exits with `code`."""

    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.code = code


def database_url(url: str) -> str:
    """The URL a simulation may use, normalized like the product's (postgres:// too)."""
    if url.startswith("sqlite:") and not url.startswith("sqlite:///"):
        raise SimError("--database: use sqlite:///PATH (a file) or postgresql://", EXIT_USAGE)
    if url.startswith("sqlite:///"):
        path = make_url(url).database
        if not path or path == ":memory:" or path.startswith("file:"):
            raise SimError(
                "--database: an in-memory SQLite database cannot be shared with the "
                "simulation's processes; give a file (sqlite:///PATH)",
                EXIT_USAGE,
            )
        return url
    if url.startswith(("postgresql+", "postgres+")) and not url.startswith("postgresql+psycopg:"):
        raise SimError(
            "--database: only the psycopg 3 driver is supported "
            "(postgresql:// or postgresql+psycopg://)",
            EXIT_USAGE,
        )
    if url.startswith(("postgres://", "postgresql://", "postgresql+psycopg://")):
        try:
            make_url(url).port  # noqa: B018 - a bad port only shows when read
        except (ValueError, ArgumentError):
            raise SimError(
                "--database: not a valid postgresql:// URL (user, host, port, database)",
                EXIT_USAGE,
            ) from None
        return normalize_url(url)
    raise SimError("--database must be a sqlite:/// or postgresql:// URL", EXIT_USAGE)


def shown(url: str) -> str:
    """The database as the operator may see it: never its password."""
    return make_url(url).render_as_string(hide_password=True)


def sim_engine(url: str) -> Engine:
    """An engine on exactly `url`: the pool budget's defaults, not the environment's (whose
    DATABASE_POOLER_URL would send the pooled connections to another database)."""
    return make_engine(url, budget=PoolBudget())


def _sqlite_tables_with_rows(path: str) -> list[str]:
    """A SQLite file's tables holding rows, read through a read-only handle: looking must
    not change the operator's file (the product's engine would make it private and WAL)."""
    if not Path(path).exists():
        return []
    try:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        try:
            names = [
                r[0]
                for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if r[0] not in SEEDED and not r[0].startswith("sqlite_")
            ]
            quoted = {n: '"' + n.replace('"', '""') + '"' for n in names}
            return [
                n for n in names if conn.execute(f"SELECT 1 FROM {quoted[n]} LIMIT 1").fetchone()
            ]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise SimError(f"--database: cannot read {path}: {exc}", EXIT_USAGE) from None


def refuse_used(url: str) -> None:
    """Refuse a database that holds anything but a new database's seeded rows: an
    operator's data, or a previous simulation's (its tenants and jobs would run again).
    Each table is probed for one row, not counted (a production database by mistake)."""
    if make_url(url).get_backend_name() == "sqlite":
        _refuse(url, _sqlite_tables_with_rows(make_url(url).database))
        return
    engine = sim_engine(url)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            default = insp.default_schema_name
            used = []
            for schema in insp.get_schema_names():  # every schema, not only the product's
                if schema in SYSTEM_SCHEMAS or schema.startswith("pg_"):
                    continue
                for name in insp.get_table_names(schema=schema):
                    if schema == default and name in SEEDED:
                        continue
                    probe = select(literal(1)).select_from(table(name, schema=schema)).limit(1)
                    if conn.execute(probe).first() is not None:
                        used.append(name if schema == default else f"{schema}.{name}")
    finally:
        engine.dispose()
    _refuse(url, used)


def _refuse(url: str, used: list[str]) -> None:
    if used:
        shown_tables = ", ".join(sorted(used)[:5]) + (", ..." if len(used) > 5 else "")
        raise SimError(
            f"{shown(url)} is not empty ({shown_tables} hold rows): a simulation migrates its "
            "database, adds tenants and runs its jobs; give it a new, empty database",
            EXIT_USAGE,
        )


def claim_workdir(path: Path) -> Path:
    """A work directory that is a directory, creatable, and not a previous run's."""
    if path.exists() and not path.is_dir():
        raise SimError(f"--workdir {path} is a file, not a directory", EXIT_USAGE)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SimError(f"--workdir {path} cannot be created: {exc.strerror}", EXIT_USAGE) from None
    if (path / CONFIG).exists() or (path / "sim.db").exists():
        raise SimError(
            f"--workdir {path} holds a previous simulation ({CONFIG} or sim.db); "
            "give a new directory",
            EXIT_USAGE,
        )
    return path


def write_private(path: Path, text: str) -> None:
    """A file readable by its owner only (0600): the config holds the database URL and
    the token encryption key."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def child_env() -> dict[str, str]:
    """The simulation's processes' environment: this one without the database settings."""
    env = {k: v for k, v in os.environ.items() if k not in DB_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def die_with_parent():
    """A Popen `preexec_fn` (Linux): the kernel SIGKILLs the child when the driver dies,
    even by SIGKILL, before the child has imported anything. None elsewhere (proc.py
    then watches the driver's pid it is given). The signal follows the thread that
    forked: the driver spawns from its main thread only."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def arm() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the driver died before the call: go too
            os._exit(1)

    return arm


def pg_admin_engine(url: str) -> Engine:
    """An AUTOCOMMIT engine on the server's `postgres` database (what takes a database's
    connections away and gives them back), made like the product's: a failed statement's
    error names its SQL, never its bound values; a server that vanished fails the call."""
    admin = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    budget = PoolBudget(pool_size=1, max_overflow=1)
    return make_engine(admin, budget=budget).execution_options(isolation_level="AUTOCOMMIT")


def restore_connections(url: str) -> None:
    """Give a PostgreSQL database its connections back (a database outage fault takes
    them away); a no-op elsewhere or when nothing was taken."""
    u = make_url(url)
    if u.get_backend_name() != "postgresql":
        return
    admin = pg_admin_engine(url)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(RESTORE_SQL.format(name=u.database))
    finally:
        admin.dispose()


@contextlib.contextmanager
def restoring(url: str):
    """Whatever ends the block (an error, Ctrl-C, SIGTERM), the database's connections are
    given back; only a SIGKILL of the driver cannot (docs/OPERATIONS.md)."""
    try:
        yield
    finally:
        restore_connections(url)
