"""`superseller simulate` run by an operator: it never touches a database that holds data,
uses exactly the database it is given, gives the database back however it ends, and never
leaves processes or a silent hang behind. Small and fast: no simulated day is run here
(the driver's set-up and loop are stubbed where a whole run is not the point)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine
from sqlalchemy import text as sql
from sqlalchemy.engine import make_url

from superseller.db import migrate
from superseller.db.engine import is_postgres
from superseller.simulation import guard, runner
from superseller.simulation.faults import SAO_PAULO, Fault
from superseller.simulation.proc import engine_settings
from superseller.tenants import create_tenant
from tests.support.procs import ROOT
from tests.support.waiting import wait_until


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "superseller.cli", "simulate", *args],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_error(proc: subprocess.CompletedProcess, code: int) -> str:
    assert proc.returncode == code, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def with_password(url: str) -> str:
    """The same database with a password in its URL (trust auth ignores it)."""
    u = make_url(url)
    return u.set(password="s3cret").render_as_string(hide_password=False) if u.host else url


# -- 1. the database is given back ---------------------------------------------------
def test_an_interrupted_database_outage_gives_the_database_back(
    backend, db_url, tmp_path, monkeypatch
):
    """Ctrl-C (or SIGTERM, which the command turns into it) in the middle of a database
    outage: the operator's database accepts connections again, and the last line says so."""

    def setup(self):  # only what an outage needs
        self.engine = guard.sim_engine(self.url)
        self.pg = is_postgres(self.engine)

    def run(self):
        start = datetime(2026, 3, 3, 2, tzinfo=SAO_PAULO)
        self._outage(Fault("db_outage", start, start + timedelta(minutes=10)))

    def interrupted(_s):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner.Simulation, "setup", setup)
    monkeypatch.setattr(runner.Simulation, "run", run)
    monkeypatch.setattr(runner.time, "sleep", interrupted)
    opts = runner.SimOptions(database_url=db_url, workdir=tmp_path / "sim")
    with pytest.raises(guard.SimError) as err:
        runner.simulate(opts)
    assert err.value.code == 130
    assert "the database restored" in str(err.value)
    assert str(tmp_path / "sim") in str(err.value)
    if backend == "postgresql":
        name = make_url(db_url).database
        admin = create_engine(make_url(db_url).set(database="postgres"))
        with admin.connect() as conn:
            allowed = conn.execute(
                sql("SELECT datallowconn FROM pg_database WHERE datname = :d"), {"d": name}
            ).scalar()
        admin.dispose()
        assert allowed is True
    else:
        conn = sqlite3.connect(make_url(db_url).database, timeout=1, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")  # the outage's exclusive lock is gone
        conn.execute("ROLLBACK")
        conn.close()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_the_admin_engines_errors_never_show_bound_values(backend, db_url):
    """The engines that take the database's connections away and give them back (the
    guard's, the runner's) are made like the product's: a statement that fails names its
    SQL, never the values bound to it (a password, a token)."""
    secret = "s3cr3t-bound-value"
    failing = sql("SELECT 1 / (CAST(:secret AS text) = '')::int")  # division by zero
    stub = SimpleNamespace(url=with_password(db_url))
    for make in (runner.Simulation._pg_admin, lambda s: guard.pg_admin_engine(s.url)):
        admin = make(stub)
        try:
            with admin.connect() as conn:
                # ALTER DATABASE runs outside a transaction block.
                assert conn.connection.driver_connection.autocommit
                with pytest.raises(Exception) as err:
                    conn.execute(failing, {"secret": secret})
        finally:
            admin.dispose()
        assert "division by zero" in str(err.value)
        assert secret not in str(err.value) and secret not in repr(err.value)
        assert "s3cret" not in str(err.value)  # nor the URL's password
    guard.restore_connections(db_url)  # still gives a database back (a no-op here)


# -- 2. a database holding data is refused ----------------------------------------------
def test_a_database_holding_data_is_refused_before_anything_is_written(backend, db_url, tmp_path):
    eng = guard.sim_engine(db_url)
    create_tenant(eng, "Loja do operador", tenant_id="operator-1")
    with eng.connect() as conn:
        version = conn.execute(sql("SELECT version_num FROM alembic_version")).scalar()
    url = with_password(db_url)
    proc = cli("--days", "1", "--tenants", "1", "--database", url, "--workdir", str(tmp_path / "w"))
    line = one_line_error(proc, 2)
    assert "not empty" in line and "tenants" in line
    assert make_url(db_url).database in line
    assert "s3cret" not in proc.stderr + proc.stdout
    with eng.connect() as conn:  # untouched: no migration, no schedules, no tenant added
        assert conn.execute(sql("SELECT version_num FROM alembic_version")).scalar() == version
        assert conn.execute(sql("SELECT COUNT(*) FROM job_schedules")).scalar() == 0
        assert conn.execute(sql("SELECT id FROM tenants")).scalars().all() == ["operator-1"]
    eng.dispose()


def test_a_new_or_migrated_empty_database_is_accepted_and_a_foreign_table_is_not(
    backend, empty_db_url
):
    guard.refuse_used(empty_db_url)  # new
    eng = guard.sim_engine(empty_db_url)
    migrate.upgrade(eng)
    guard.refuse_used(empty_db_url)  # migrated, with its seeded state rows only
    with eng.begin() as conn:
        conn.execute(sql("CREATE TABLE invoices (id INTEGER)"))
        conn.execute(sql("INSERT INTO invoices VALUES (1)"))
    eng.dispose()
    with pytest.raises(guard.SimError, match="invoices"):
        guard.refuse_used(empty_db_url)
    if backend == "postgresql":  # another schema's rows are somebody's data too
        eng = guard.sim_engine(empty_db_url)
        with eng.begin() as conn:
            conn.execute(sql("DELETE FROM invoices"))
            conn.execute(sql("CREATE SCHEMA billing"))
            conn.execute(sql("CREATE TABLE billing.notes (id INTEGER)"))
            conn.execute(sql("INSERT INTO billing.notes VALUES (1)"))
        eng.dispose()
        with pytest.raises(guard.SimError, match="billing.notes"):
            guard.refuse_used(empty_db_url)


def test_a_previous_runs_workdir_is_refused(tmp_path):
    for left in (guard.CONFIG, "sim.db"):  # a run that got as far as either
        work = tmp_path / left
        work.mkdir()
        (work / left).write_text("")
        line = one_line_error(cli("--days", "1", "--workdir", str(work)), 2)
        assert "previous simulation" in line


# -- 3. exactly the database given -------------------------------------------------------
def test_the_environments_database_settings_are_ignored(backend, db_url, monkeypatch):
    nowhere = "postgresql://nobody@127.0.0.1:1/nowhere"
    monkeypatch.setenv("DATABASE_POOLER_URL", nowhere)
    monkeypatch.setenv("DATABASE_URL", nowhere)
    eng = guard.sim_engine(db_url)  # the driver's engine
    with eng.connect() as conn:
        assert conn.execute(sql("SELECT 1")).scalar() == 1
    eng.dispose()
    cfg = {"data_dir": "/x", "database_url": db_url, "ml_url": "http://127.0.0.1:1"}
    cfg |= {"backfill_days": 1, "token_key": "k", "heartbeat_s": 1, "rescue_after_s": 1}
    assert engine_settings(cfg).database_pooler_url == ""  # the children's settings
    env = guard.child_env()  # the children's environment
    assert "DATABASE_POOLER_URL" not in env and "DATABASE_URL" not in env


# -- 4. no process outlives a SIGKILLed driver --------------------------------------------
def children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_children_die_with_a_sigkilled_driver(tmp_path):
    work = tmp_path / "w"
    args = ["--days", "1", "--tenants", "1", "--large-listings", "10", "--faults", "none"]
    driver = subprocess.Popen(
        [sys.executable, "-m", "superseller.cli", "simulate", *args, "--workdir", str(work)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    kids: set[int] = set()
    try:

        def first_children() -> set[int]:  # the first child, still importing
            assert driver.poll() is None, "the driver ended before starting its processes"
            return children(driver.pid)

        kids = wait_until(first_children, timeout=120, message="the driver's first child")
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        wait_until(
            lambda: not any(alive(k) for k in kids),
            timeout=30,
            interval=0.1,
            message=f"children {kids} to die with their SIGKILLed driver",
        )
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        for k in kids:
            if alive(k):  # a failed run leaves no orphan to the machine
                os.kill(k, signal.SIGKILL)
    # The config (the database URL and the token key) is its owner's only.
    assert stat.S_IMODE((work / guard.CONFIG).stat().st_mode) == 0o600


# -- 5. a dead child ends the run --------------------------------------------------------
@pytest.mark.timeout(60)
def test_a_child_that_dies_ends_the_run_naming_it(tmp_path):
    sim = runner.Simulation(runner.SimOptions(workdir=tmp_path / "sim"))
    sim.procs["worker"] = subprocess.Popen([sys.executable, "-c", "raise SystemExit(7)"])
    far = datetime.now(UTC) + timedelta(days=1)
    sim.events = [(far, 0, "check", None)]
    sim._last_state = (1, None, None)  # one job running, nothing else due
    sim._next_engine_time = lambda: (sim.clock.now(), True, None)  # busy: nothing due yet
    with pytest.raises(guard.SimError) as err:
        sim.run()
    assert err.value.code == guard.EXIT_FAILED
    assert "worker died (exit code 7)" in str(err.value)
    assert str(tmp_path / "sim" / "worker.err") in str(err.value)


# -- 6. the temporary directory -----------------------------------------------------------
def test_a_temporary_workdir_is_removed_after_a_fresh_run_and_kept_after_a_miss_or_failure(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(runner.Simulation, "setup", lambda self: None)
    fresh = SimpleNamespace(misses=0, kept_dir=None)
    monkeypatch.setattr(runner.Simulation, "run", lambda self: fresh)
    assert runner.simulate(runner.SimOptions()) is fresh
    assert not list(tmp_path.glob("superseller-sim-*"))

    missed = SimpleNamespace(misses=2, kept_dir=None)  # its logs say why: kept
    monkeypatch.setattr(runner.Simulation, "run", lambda self: missed)
    assert runner.simulate(runner.SimOptions()) is missed
    (kept,) = tmp_path.glob("superseller-sim-*")
    assert missed.kept_dir == kept
    shutil.rmtree(kept)

    def crash(self):
        raise RuntimeError("boom")

    monkeypatch.setattr(runner.Simulation, "run", crash)
    with pytest.raises(guard.SimError) as err:
        runner.simulate(runner.SimOptions())
    (kept,) = tmp_path.glob("superseller-sim-*")
    assert err.value.code == guard.EXIT_FAILED
    assert "RuntimeError: boom" in str(err.value) and str(kept) in str(err.value)


def test_bad_arguments_are_one_line_usage_errors(tmp_path):
    a_file = tmp_path / "f"
    a_file.write_text("")
    for args, says in (
        (["--database", "sqlite:///:memory:"], "in-memory"),
        (["--database", "postgresql+psycopg2://u@h/d"], "psycopg 3"),
        (["--faults", ""], '"none"'),
        (["--seed", "10000000000000000000"], "--seed"),
        (["--workdir", str(a_file)], "is a file"),
        (["--database", "postgresql://u:s3cret@127.0.0.1:54x2/db"], "not a valid"),
    ):
        proc = cli(*args)
        assert says in one_line_error(proc, 2), args
        assert "s3cret" not in proc.stdout + proc.stderr


def test_refusing_an_operators_sqlite_file_leaves_it_as_it_was(tmp_path):
    """Looking is not touching: the operator's file keeps its permissions, its journal mode
    and its bytes (the product's own engine would have made it private and WAL)."""
    path = tmp_path / "erp.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.execute("INSERT INTO invoices VALUES (1)")
    conn.commit()
    conn.close()
    os.chmod(path, 0o644)
    before = (path.stat().st_mode, path.read_bytes())
    with pytest.raises(guard.SimError, match="invoices") as err:
        guard.refuse_used(f"sqlite:///{path}")
    assert err.value.code == guard.EXIT_USAGE
    assert (path.stat().st_mode, path.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["erp.db"]  # no -wal, no -shm


def test_postgres_urls_are_accepted_as_the_product_accepts_them():
    assert guard.database_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert guard.database_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
