"""Test fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL tests create their own database (cloned from a migrated template)
and drop it afterwards. Without a reachable server they skip, except in CI
(`CI=true`), where a missing PostgreSQL is a failure.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine

from superseller.db import migrate
from superseller.db.engine import make_engine
from tests.support.env import IN_CI, PG_ADMIN_URL

# httpx waits 5 s by default for an answer: on a loaded two-core CI machine (four xdist
# workers, argon2 logins, servers starting beside) a test's request to its own server can
# take longer, and failed as "ReadTimeout" though nothing was wrong. A test's requests wait
# up to 60 s unless they say otherwise; its own deadline stays pytest-timeout's. (httpx binds
# this one Timeout object as the default of httpx.get/post/... and Client: changed in place.)
_HTTPX_DEFAULT = httpx._config.DEFAULT_TIMEOUT_CONFIG
_HTTPX_DEFAULT.connect = _HTTPX_DEFAULT.read = _HTTPX_DEFAULT.write = _HTTPX_DEFAULT.pool = 60.0

pytest_plugins = [
    "tests.support.aws",  # the `mocked_aws` fixture
    "tests.support.browser",  # the real-Chromium `browser` fixture
]


def _pg_admin() -> Engine:
    return make_engine(PG_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_available() -> str | None:
    """None if PostgreSQL answers, else the reason it does not."""
    try:
        eng = _pg_admin()
        with eng.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {str(exc).splitlines()[0]}"


def _pg_url(name: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def pg_template(pg_available) -> Iterator[str | None]:
    if pg_available:
        yield None
        return
    name = f"ss_tmpl_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    eng = make_engine(_pg_url(name))
    migrate.upgrade(eng)
    eng.dispose()
    yield name
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("tmpl") / "template.db"
    eng = make_engine(f"sqlite:///{path}")
    migrate.upgrade(eng)
    eng.dispose()  # closing the last connection checkpoints the WAL into the file
    assert not path.with_name(path.name + "-wal").exists()
    return str(path)


def require_pg(pg_available: str | None) -> None:
    if pg_available:
        if IN_CI:
            pytest.fail(f"CI=true requires PostgreSQL: {pg_available}")
        pytest.skip(pg_available)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@contextlib.contextmanager
def _pg_database(prefix: str, template: str | None = None) -> Iterator[str]:
    """A PostgreSQL database made for one test and dropped after it."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(
            f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        )
    try:
        yield _pg_url(name)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def db_url(backend, request, tmp_path) -> Iterator[str]:
    """A migrated, empty database of the current backend, private to this test."""
    if backend == "sqlite":
        path = tmp_path / "superseller.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    require_pg(request.getfixturevalue("pg_available"))
    with _pg_database("ss_test", request.getfixturevalue("pg_template")) as url:
        yield url


@pytest.fixture
def empty_db_url(backend, request, tmp_path) -> Iterator[str]:
    """An unmigrated database of the current backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    require_pg(request.getfixturevalue("pg_available"))
    with _pg_database("ss_empty") as url:
        yield url


@pytest.fixture
def engine(db_url) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()
