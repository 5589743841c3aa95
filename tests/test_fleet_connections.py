"""The PostgreSQL connection budget of a process (docs/OPERATIONS.md, "Connection budget"):
a process running the API, a worker and the scheduler holds at most DB_POOL_SIZE +
DB_MAX_OVERFLOW pooled connections plus the worker's LISTEN connection, however much work
it has; and the engine works behind PgBouncer in transaction mode, LISTEN kept direct.
PostgreSQL only (SQLite has no connections to count)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from superseller.db.schema import jobs
from superseller.jobs.queue import JobSpec, Queue
from superseller.sandbox.server import free_port
from superseller.wiring import build_registry
from tests.support.env import IN_CI
from tests.support.fleet import cli_process, cli_worker, log_of
from tests.support.ml import connected_tenant, sandbox, settings_for
from tests.support.procs import stop
from tests.support.waiting import wait_until

TENANTS = 8


def _backends(db_url: str, pid: int) -> list[tuple]:
    """(client port, query) of each backend of process `pid`, by its application_name."""
    conninfo = make_url(db_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute(
            "SELECT client_port, query FROM pg_stat_activity WHERE application_name = %s",
            (f"superseller/{pid}",),
        ).fetchall()


def _enqueue_syncs(engine, settings) -> list[int]:
    made = Queue(engine, build_registry(settings)).enqueue_many(
        [
            JobSpec("sync_mercadolivre", {"tenantId": f"t{i}", "daysBack": 2}, tenant_id=f"t{i}")
            for i in range(TENANTS)
        ]
    )
    return [m.id for m in made]


def _all_done(engine) -> bool:
    with engine.connect() as conn:
        states = set(conn.execute(select(jobs.c.status)).scalars())
    return bool(states) and states <= {"completed", "failed", "cancelled"}


def _tenants(engine, sb, tmp_path):
    settings = settings_for(sb, tmp_path)
    for i in range(TENANTS):
        httpx.post(f"{sb.url}/_sandbox/login-as", json={"user_id": 9000 + i})
        connected_tenant(engine, settings, f"t{i}")
    return settings


@pytest.mark.parametrize("backend", ["postgresql"])  # a PostgreSQL matter
def test_a_process_stays_within_its_declared_connection_budget(backend, engine, db_url, tmp_path):
    pool, overflow = 2, 1
    with sandbox(listings=120, history_days=3, orders_per_day=20) as sb:
        settings = _tenants(engine, sb, tmp_path)
        ids = _enqueue_syncs(engine, settings)
        port = free_port()
        proc = cli_process(
            db_url,
            sb.url,
            tmp_path,
            ["serve", "--role", "all", "--port", str(port), "--concurrency", "8"],
            ML_REQUESTS_PER_S=0,
            JOB_TENANT_MAX_RUNNING=0,
            DB_POOL_SIZE=pool,
            DB_MAX_OVERFLOW=overflow,
        )
        seen: list[list[tuple]] = []
        stop_sampling = threading.Event()

        def sample():
            while not stop_sampling.is_set():
                seen.append(_backends(db_url, proc.pid))
                stop_sampling.wait(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            wait_until(lambda: _all_done(engine), timeout=180, interval=0.2, message="the syncs")
        finally:
            stop_sampling.set()
            sampler.join()
            code = stop(proc)
        assert code == 0, log_of(tmp_path)
    with engine.connect() as conn:
        states = conn.execute(select(jobs.c.status).where(jobs.c.id.in_(ids))).scalars().all()
    assert set(states) == {"completed"}, log_of(tmp_path)
    most = max(len(s) for s in seen)
    assert most <= pool + overflow + 1, f"{most} connections, budget {pool + overflow + 1}"
    assert any(q.startswith("LISTEN") for s in seen for _, q in s)  # the +1 is the LISTEN
    assert most >= 2  # the pool was really used while the LISTEN connection was open


PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


@pytest.fixture
def pgbouncer(backend, db_url):
    """PgBouncer in transaction mode in front of the test's database; its URL."""
    if not shutil.which(PGBOUNCER):
        if IN_CI:  # .ci/run installs it
            pytest.fail("CI=true requires pgbouncer (Debian: apt-get install -y pgbouncer)")
        pytest.skip("pgbouncer is not installed (Debian: apt-get install -y pgbouncer)")
    url = make_url(db_url)
    port = free_port()
    # Its own directory: as root, pgbouncer must run as another user (-u), who must reach it.
    home = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    ini = home / "pgbouncer.ini"
    ini.write_text(
        f"[databases]\n{url.database} = host={url.host} port={url.port or 5432}\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n"
        f"unix_socket_dir =\nauth_type = trust\nauth_file = {home / 'users.txt'}\n"
        f"admin_users = {url.username}\npool_mode = transaction\ndefault_pool_size = 4\n"
        f"ignore_startup_parameters = extra_float_digits,options\n"
    )
    (home / "users.txt").write_text(f'"{url.username}" ""\n')
    user = []
    if os.geteuid() == 0:
        user = ["-u", "postgres"]
        for path in (home, *home.iterdir()):
            shutil.chown(path, "postgres")
    proc = subprocess.Popen([PGBOUNCER, *user, str(ini)], stderr=subprocess.PIPE, text=True)
    via = url.set(host="127.0.0.1", port=port).render_as_string(False)

    def answers():
        try:
            with psycopg.connect(via.replace("+psycopg", ""), connect_timeout=2) as c:
                return c.execute("SELECT 1").fetchone()
        except psycopg.OperationalError:
            assert proc.poll() is None, proc.stderr.read()
            return None

    try:
        wait_until(answers, timeout=15, message="pgbouncer to answer")
        yield via
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(home, ignore_errors=True)


def _pgbouncer_admin(via: str, command: str) -> list[tuple]:
    admin = make_url(via).set(drivername="postgresql", database="pgbouncer")
    with psycopg.connect(admin.render_as_string(False), autocommit=True) as conn:
        cur = conn.execute(command)
        names = [d.name for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@pytest.mark.parametrize("backend", ["postgresql"])  # a PostgreSQL matter
def test_the_engine_works_behind_pgbouncer_in_transaction_mode_listen_direct(
    backend, engine, db_url, tmp_path, pgbouncer
):
    with sandbox(listings=60, history_days=3, orders_per_day=20) as sb:
        settings = _tenants(engine, sb, tmp_path)
        ids = _enqueue_syncs(engine, settings)
        # DATABASE_URL direct (the LISTEN connection), the pooled connections through PgBouncer.
        worker = cli_worker(
            db_url,
            sb.url,
            tmp_path,
            ML_REQUESTS_PER_S=0,
            DATABASE_POOLER_URL=pgbouncer,
        )
        try:
            wait_until(lambda: _all_done(engine), timeout=180, interval=0.2, message="syncs")
            clients = _pgbouncer_admin(pgbouncer, "SHOW CLIENTS")
            servers = {s["local_port"] for s in _pgbouncer_admin(pgbouncer, "SHOW SERVERS")}
            listening = [p for p, q in _backends(db_url, worker.pid) if q.startswith("LISTEN")]
        finally:
            code = stop(worker)
        assert code == 0, log_of(tmp_path)
        with engine.connect() as conn:
            states = conn.execute(select(jobs.c.status).where(jobs.c.id.in_(ids))).scalars()
            assert set(states) == {"completed"}, log_of(tmp_path)
        assert any(c["application_name"] == f"superseller/{worker.pid}" for c in clients)
        assert len(listening) == 1 and listening[0] not in servers  # LISTEN is direct

        # Only PgBouncer's address (both URLs): LISTEN through it hears nothing reliable, the
        # worker finds its jobs by polling (JOB_POLL_S).
        more = Queue(engine, build_registry(settings)).enqueue(
            "sync_mercadolivre", {"tenantId": "t0", "daysBack": 1}, tenant_id="t0"
        )
        polling = cli_worker(
            pgbouncer, sb.url, tmp_path, ML_REQUESTS_PER_S=0, DATABASE_POOLER_URL=pgbouncer
        )
        try:
            wait_until(lambda: _all_done(engine), timeout=120, interval=0.2, message="a poll")
        finally:
            assert stop(polling) == 0, log_of(tmp_path)
        with engine.connect() as conn:
            assert conn.execute(select(jobs.c.status).where(jobs.c.id == more.id)).scalar() == (
                "completed"
            ), log_of(tmp_path)
