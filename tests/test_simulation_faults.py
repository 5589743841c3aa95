"""The simulation's faults do what they say, and the morning line says what they did.

The worker SIGKILL lands in the large seller's sync once it has checkpointed a part (so
that its rescue must resume, not restart), or on any running job when that sync does not
come; a PostgreSQL outage refuses connections for its wall time and gives them back (the
SQLite outage, a write lock held past the product's busy timeout, is the audit's test in
test_simulation_oracle_audit.py); the morning's effects count what the sandbox answered,
what was rescued and resumed, and what the product logged. The whole run is
test_simulation.py's.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import OperationalError

from superseller.db.engine import make_engine
from superseller.db.schema import job_logs, jobs, sync_checkpoints
from superseller.jobs.backend import backend_for
from superseller.simulation import runner
from superseller.simulation.clock import SimClock
from superseller.simulation.faults import SAO_PAULO, Fault
from superseller.tenants import create_tenant
from tests.support.waiting import wait_until

NOW = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)  # 02:00 in Sao Paulo


def _sim(engine, tmp_path, tenants=("sim-1-00", "sim-1-01")) -> runner.Simulation:
    sim = runner.Simulation.__new__(runner.Simulation)
    sim.engine, sim.backend, sim.pg = engine, backend_for(engine), engine.dialect.name != "sqlite"
    sim.tenants = [runner.Tenant(t, SimpleNamespace(stats={"429": 0, "500": 0})) for t in tenants]
    sim.dir, sim.procs = tmp_path, {}
    sim.outage_s, sim.kills, sim.ml_seen, sim.log_offsets = 0.0, [], (0, 0), {}
    return sim


def _job(conn, tenant: str, type_: str = "sync_mercadolivre", **values) -> int:
    row = {
        "type": type_,
        "tenant_id": tenant,
        "payload": {},
        "status": "running",
        "run_at": NOW,
        "created_at": NOW,
        **values,
    }
    return conn.execute(insert(jobs).values(**row).returning(jobs.c.id)).scalar_one()


def _mark(engine, job_id: int, part: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(sync_checkpoints).values(job_id=job_id, part=part, data={}, created_at=NOW)
        )


@pytest.fixture
def sim(engine, tmp_path):
    for t in ("sim-1-00", "sim-1-01"):
        create_tenant(engine, t, tenant_id=t)
    return _sim(engine, tmp_path)


def _record_kills(sim, engine) -> list[set[str]]:
    """The checkpointed parts present when the worker is SIGKILLed, per kill."""
    seen: list[set[str]] = []

    def kill(role: str) -> None:
        with engine.connect() as conn:
            seen.append(set(conn.execute(select(sync_checkpoints.c.part)).scalars()))

    sim._kill, sim._spawn = kill, lambda role: None
    return seen


def test_the_worker_is_killed_in_the_large_sellers_sync_after_a_checkpoint(sim, engine):
    with engine.begin() as conn:
        sync = _job(conn, "sim-1-00")
        _job(conn, "sim-1-01")  # a small seller's job runs from the first second
    _mark(engine, sync, "run")
    _mark(engine, sync, "ids")  # the start: a resume would skip nothing worth saying
    kills = _record_kills(sim, engine)
    done: list[str] = []
    killer = threading.Thread(target=lambda: done.append(sim._worker_kill()))
    killer.start()
    time.sleep(0.3)  # a kill that does not wait for the part would come before it
    _mark(engine, sync, "items:0")
    killer.join(30)
    assert kills == [{"run", "ids", "items:0"}]
    assert done == ["sim-1-00's sync after 1 checkpointed part(s), 2 job(s) running"]


def test_without_the_large_sellers_sync_the_kill_hits_a_running_job(sim, engine, monkeypatch):
    monkeypatch.setattr(runner, "KILL_SHOW_S", 0.2)
    with engine.begin() as conn:
        _job(conn, "sim-1-01")
    kills = _record_kills(sim, engine)
    assert sim._worker_kill() == "1 job(s) running, no checkpointed sync of sim-1-00"
    assert kills == [set()]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_postgresql_outage_refuses_connections_for_its_wall_time(db_url, tmp_path):
    product = make_engine(db_url)
    sim = _sim(product, tmp_path)
    sim.url, sim.engine, sim.outage_db = db_url, make_engine(db_url), None
    sim.clock = SimClock(tmp_path / "clock")
    start = datetime(2026, 3, 8, 2, 0, 5, tzinfo=SAO_PAULO)
    sim.clock.set(start.astimezone(UTC))
    fault = Fault("db_outage", start, start + timedelta(minutes=10))  # 10 s of wall
    outage = threading.Thread(target=sim._outage, args=(fault,))
    outage.start()

    def refused() -> bool:
        try:
            with product.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except OperationalError:
            return True
        return False

    wait_until(refused, timeout=10, message="the database to refuse connections")
    outage.join(60)
    assert not outage.is_alive()
    assert not refused()  # given back, and the product reconnects on its own
    assert sim.outage_s >= 10
    assert sim.clock.now() >= fault.end.astimezone(UTC)  # the span ran through
    product.dispose()
    sim.engine.dispose()


def test_the_mornings_effects_count_what_the_faults_did(sim, engine, tmp_path):
    since, until = NOW - timedelta(hours=20), NOW + timedelta(hours=4)
    with engine.begin() as conn:
        _job(conn, "sim-1-00", status="completed", finished_at=NOW, result={"resumedParts": 3})
        _job(
            conn,
            "sim-1-00",
            status="completed",
            finished_at=NOW - timedelta(days=2),
            result={"resumedParts": 9},
        )  # an earlier night's
        conn.execute(
            insert(job_logs).values(
                job_id=1,
                job_type="sync_mercadolivre",
                tenant_id="sim-1-00",
                status="lost",
                attempt=1,
                started_at=NOW,
                completed_at=NOW,
                duration_ms=0,
            )
        )
    sim.tenants[0].state.stats.update({"429": 40, "500": 7})
    sim.outage_s, sim.kills = 75.2, ["sim-1-00's sync after 2 checkpointed part(s)"]
    (tmp_path / "worker.log").write_text("x WARNING database unreachable, retrying: locked\n" * 2)
    (tmp_path / "api.log").write_text("x WARNING database unreachable, retrying: locked\n")
    m = runner.Morning(date(2026, 3, 8))
    sim._effects(m, since, until)
    assert (m.ml_429, m.ml_5xx, m.rescued, m.resumed_parts) == (40, 7, 1, 3)
    assert (round(m.outage_s), m.outage_logged, len(m.kills)) == (75, 3, 1)
    assert m.effects().startswith("429s 40; 5xx 7; rescued 1; resumed parts 3; outage 75 s")
    # The next morning counts only what happened since.
    sim.tenants[1].state.stats["429"] = 5
    with (tmp_path / "worker.log").open("a") as fh:
        fh.write("x WARNING database unreachable, retrying: locked\n")
    nxt = runner.Morning(date(2026, 3, 9))
    sim._effects(nxt, until, until + timedelta(days=1))
    assert (nxt.ml_429, nxt.ml_5xx, nxt.rescued, nxt.resumed_parts) == (5, 0, 0, 0)
    assert (nxt.outage_s, nxt.outage_logged, nxt.kills) == (0.0, 1, [])


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_run_says_what_its_faults_did(db_url, tmp_path):
    """Two days on SQLite with the faults whose effect used to be invisible: the outages
    (one a night, one in the day) are met by the product (it logs "database unreachable")
    and it recovers (every morning fresh); the worker is killed in the large seller's sync
    after a checkpoint and its job is rescued. (That the rescued sync skips finished parts
    is shown in tests/test_fleet_resume.py: `resumedParts` here also counts a retried sync's
    start markers, so it is a weak sign on its own.)"""
    from tests.test_simulation import mornings, simulate

    args = ["--days", "2", "--tenants", "2", "--large-listings", "40", "--small-listings", "10"]
    args += ["--no-notifications", "--seed", "3", "--faults", "db_outage,worker_kill"]
    proc = simulate(db_url, tmp_path, *args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert mornings(proc.stdout) == [(2, 0, 0)] * 2
    lines = re.findall(r"^\d{4}-\d\d-\d\d: .* s wall; effects: (.*)$", proc.stdout, re.M)
    assert len(lines) == 2
    effects = "; ".join(lines)
    kill = re.search(r"kill: sim-3-00's sync after (\d+) checkpointed part", effects)
    assert kill and int(kill.group(1)) >= 1
    assert sum(int(n) for n in re.findall(r"resumed parts (\d+)", effects)) >= 1
    assert sum(int(n) for n in re.findall(r"rescued (\d+)", effects)) >= 1
    outages = re.findall(r"outage (\d+) s wall \((\d+) unreachable logged\)", effects)
    assert sum(int(s) for s, _ in outages) >= 2 * 60  # two outages past the busy timeout
    assert all(int(n) > 0 for s, n in outages if int(s) > 0)  # each met by the product
