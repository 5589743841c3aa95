"""Database outages and stalls, with the product's loops as real processes.

A standalone worker, a standalone scheduler and a `serve --role all` process (API +
supervised worker + scheduler) run against one database. On PostgreSQL they reach it
through a TCP proxy that the test cuts (every connection dropped, new ones closed at
once) while it also terminates the database's backends; on SQLite the outage is a held
write lock (`BEGIN IMMEDIATE` on a connection of the test's own). During the outage
`/readyz` answers 503 naming what is wrong; after it, 200; no process exits, and every
job enqueued before, during and after it runs exactly once.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from superseller.db.schema import job_logs, job_schedules, jobs, schedule_occurrences
from superseller.jobs.queue import JobSpec, Queue
from superseller.jobs.schedules import Schedules
from superseller.sandbox.server import free_port
from tests.support.faultproxy import FaultProxy
from tests.support.handlers import build_registry
from tests.support.pgfault import terminate_backends
from tests.support.procs import ROOT
from tests.support.waiting import wait_until

ENV = {
    "JOB_HEARTBEAT_S": "0.3",
    "JOB_RESCUE_AFTER_S": "2",  # shorter than the outages: a naive rescue would re-run jobs
    "JOB_SHUTDOWN_GRACE_S": "10",
    "LOG_FORMAT": "text",
}


class PgFault:
    """PostgreSQL behind the proxy; `down()` cuts it and kills the database's backends."""

    def __init__(self, db_url: str):
        self.db_url = db_url
        self.proxy = FaultProxy.for_url(db_url)
        self.url = self.proxy.url(db_url)
        self.db_name = db_url.rsplit("/", 1)[1]

    @contextlib.contextmanager
    def down(self):
        self.proxy.cut()
        terminate_backends(self.db_name)
        try:
            yield
        finally:
            self.proxy.restore()

    def close(self) -> None:
        self.proxy.close()


class SqliteFault:
    """SQLite; `down()` holds the write lock from a connection of the test's own."""

    can_write_during = False

    def __init__(self, db_url: str):
        self.url = db_url
        self.path = db_url.removeprefix("sqlite:///")

    @contextlib.contextmanager
    def down(self):
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()

    def close(self) -> None:
        pass


PgFault.can_write_during = True


@pytest.fixture
def fault(backend, db_url):
    f = PgFault(db_url) if backend == "postgresql" else SqliteFault(db_url)
    yield f
    f.close()


def _python(log_file, *args: str, **env) -> subprocess.Popen:
    """A process whose output goes to `log_file` (a pipe could fill up and block it)."""
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **ENV, **{k: str(v) for k, v in env.items()}},
        stdout=open(log_file, "w"),  # noqa: SIM115 - the child owns it
        stderr=subprocess.STDOUT,
        text=True,
    )


class Readiness:
    """Polls /readyz every 50 ms in a thread, keeping (time, status, body)."""

    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/readyz"
        self.seen: list[tuple[float, int, dict]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def status(self) -> int | None:
        try:
            return httpx.get(self.url, timeout=5).status_code
        except httpx.TransportError:
            return None

    def _poll(self) -> None:
        while not self._stop.wait(0.05):
            try:
                r = httpx.get(self.url, timeout=5)
                self.seen.append((time.monotonic(), r.status_code, r.json()))
            except (httpx.TransportError, json.JSONDecodeError):
                pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)


def _enqueue(engine, n: int, tag: str) -> list[int]:
    specs = [JobSpec("trace", {"holdMs": 40, "tag": tag}) for _ in range(n)]
    return [r.id for r in Queue(engine, build_registry()).enqueue_many(specs)]


def _completed(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(jobs).where(jobs.c.status == "completed")
        ).scalar()


def _stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return -9


def ride_out(engine, fault, tmp_path, seconds: float, schedule: bool = False) -> dict:
    """The whole scenario; returns what it measured."""
    trace_dir = tmp_path / "trace"
    trace_dir.mkdir()
    if schedule:  # a tick every minute: one falls inside an outage of 60 s
        Schedules(engine, build_registry()).create(
            "minutely",
            "trace",
            "* * * * *",
            misfire_policy="latest",
            misfire_grace_s=10,
            overlap_policy="allow",
        )
    port = free_port()
    trace = {"SS_TEST_TRACE_DIR": str(trace_dir)}
    logs = {name: tmp_path / f"{name}.log" for name in ("worker", "scheduler", "serve")}
    procs = {
        "worker": _python(
            logs["worker"],
            "-m",
            "tests.support.run_worker",
            fault.url,
            SS_WORKER_RESCUE_AFTER=2,
            SS_WORKER_HEARTBEAT=0.3,
            **trace,
        ),
        "scheduler": _python(
            logs["scheduler"], "-m", "tests.support.run_loops", "scheduler", fault.url
        ),
        "serve": _python(
            logs["serve"], "-m", "tests.support.run_loops", "serve", fault.url, str(port), **trace
        ),
    }
    ready = Readiness(port)
    out: dict[str, str] = {}
    try:
        wait_until(lambda: ready.status() == 200, timeout=90, message="/readyz 200 at start")
        with ready:
            before = _enqueue(engine, 200, "before")
            wait_until(lambda: _completed(engine) >= 40, timeout=60, message="work under way")
            during: list[int] = []
            with fault.down():
                cut = time.monotonic()
                cut_wall = datetime.now(UTC)
                if fault.can_write_during:
                    during = _enqueue(engine, 100, "during")
                time.sleep(max(0.0, seconds - (time.monotonic() - cut)))  # the outage itself
            back = time.monotonic()
            back_wall = datetime.now(UTC)
            after = _enqueue(engine, 200 if during else 300, "after")
            ids = before + during + after
            wait_until(
                lambda: _completed(engine) >= len(ids) + _scheduled(engine),
                timeout=120,
                interval=0.2,
                message="every job completed",
            )
            wait_until(lambda: ready.status() == 200, timeout=30, message="/readyz 200 after")
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        alive = {name: p.poll() is None for name, p in procs.items()}
    finally:
        for name, p in procs.items():
            code = _stop(p)
            out[name] = f"exit {code}\n{logs[name].read_text()}"
    assert alive == {"worker": True, "scheduler": True, "serve": True}, out
    assert all(text_.startswith("exit 0\n") for text_ in out.values()), out  # SIGTERM: clean

    # Exactly once: each job completed, ran once (trace) and has one job_logs row of
    # success. (A job may show two attempts: a claim whose answer was lost with the
    # connection is given back unrun, and counted.)
    runs = collections.Counter()
    for f in trace_dir.glob("trace-*.log"):
        for line in f.read_text().splitlines():
            runs[int(line.split()[0])] += 1
    with engine.connect() as conn:
        rows = conn.execute(select(jobs.c.id, jobs.c.status, jobs.c.attempts)).all()
        successes = collections.Counter(
            conn.execute(select(job_logs.c.job_id).where(job_logs.c.status == "success"))
            .scalars()
            .all()
        )
    assert {r.status for r in rows} == {"completed"}
    assert all(runs[r.id] == 1 for r in rows), {k: v for k, v in runs.items() if v != 1}
    assert set(successes.values()) == {1} and len(successes) == len(rows)
    assert set(ids) <= {r.id for r in rows}

    # /readyz: 503 with the project's error body during the outage, 200 after it.
    during_503 = [b for t, s, b in ready.seen if cut <= t and s == 503]
    if fault.can_write_during or seconds >= 5:  # a short SQLite stall may go unnoticed
        assert during_503, "/readyz stayed 200 during the outage"
        err = during_503[0]["error"]
        assert err["code"] == "not_ready" and " since " in err["message"], err
    assert ready.seen[-1][1] == 200
    assert 'superseller_loop_up{loop="worker"} 1.0' in metrics
    assert 'superseller_loop_up{loop="scheduler"} 1.0' in metrics

    if fault.can_write_during:  # a real outage: one line when it starts, one when it ends
        log = out["worker"]
        assert log.count("database unreachable, retrying") == 1, log[-3000:]
        assert log.count("database back after") == 1, log[-3000:]
    assert "Traceback" not in out["serve"] + out["scheduler"], out

    # Recovery: from the database's return to the first job completed after it.
    with engine.connect() as conn:
        first = conn.execute(
            select(func.min(jobs.c.finished_at)).where(jobs.c.finished_at >= back_wall)
        ).scalar()
    return {
        "cut": cut_wall,
        "back": back_wall,
        "recovery_s": (first - back_wall).total_seconds() if first else None,
        "outage_s": back - cut,
    }


def _scheduled(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(jobs).where(jobs.c.schedule_id.isnot(None))
        ).scalar()


def _report(backend: str, seconds: float, measured: dict) -> None:
    """Recovery figures, for docs/performance.md (printed with -s, kept in artifacts/)."""
    line = (
        f"{backend} outage {seconds:g}s: recovery {measured['recovery_s']:.2f}s "
        f"(database back -> first job completed)"
    )
    print(line)
    path = ROOT / "artifacts" / "outage-recovery.txt"
    path.parent.mkdir(exist_ok=True)
    with open(path, "a") as f:
        f.write(line + "\n")


@pytest.mark.parametrize("seconds", [1, 5])
def test_processes_ride_out_an_outage(backend, engine, fault, tmp_path, seconds):
    measured = ride_out(engine, fault, tmp_path, seconds)
    _report(backend, seconds, measured)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_60s_outage_and_the_tick_inside_it(backend, engine, fault, tmp_path):
    measured = ride_out(engine, fault, tmp_path, 60, schedule=True)
    _report(backend, 60, measured)
    cut, back = measured["cut"], measured["back"]
    with engine.connect() as conn:
        ticks = conn.execute(
            select(
                schedule_occurrences.c.fire_time,
                schedule_occurrences.c.outcome,
                jobs.c.status,
                jobs.c.created_at,
            )
            .select_from(
                schedule_occurrences.join(job_schedules).outerjoin(
                    jobs, jobs.c.id == schedule_occurrences.c.job_id
                )
            )
            .where(job_schedules.c.name == "minutely")
            .order_by(schedule_occurrences.c.fire_time)
        ).all()
    inside = [t for t in ticks if cut < t.fire_time <= back]
    assert inside, ticks  # 60 s always hold a minute's tick
    # `latest`: the most recent tick of the outage runs once it is over (the others, if
    # any, are recorded as missed), and no minute is left out of the ledger.
    assert inside[-1].outcome == "enqueued" and inside[-1].status == "completed", inside
    assert inside[-1].created_at >= back - timedelta(seconds=1)
    assert all(t.outcome == "missed" for t in inside[:-1]), inside
    times = [t.fire_time for t in ticks]
    assert all(b - a == timedelta(minutes=1) for a, b in zip(times, times[1:], strict=False))


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_write_stall_longer_than_the_rescue_period_reruns_nothing(
    backend, engine, db_url, tmp_path
):
    """Two workers finish jobs while another connection holds SQLite's write lock for
    longer than the rescue period: no job runs twice. A SIGKILLed worker's job is still
    rescued afterwards."""
    trace_dir = tmp_path / "trace"
    trace_dir.mkdir()
    env = {"SS_TEST_TRACE_DIR": trace_dir, "SS_WORKER_RESCUE_AFTER": 1.5}
    workers = [
        _python(tmp_path / f"w{i}.log", "-m", "tests.support.run_worker", db_url, **env)
        for i in range(2)
    ]
    try:
        ids = [
            r.id
            for r in Queue(engine, build_registry()).enqueue_many(
                [JobSpec("trace", {"holdMs": 100}) for _ in range(80)]
            )
        ]
        wait_until(lambda: _completed(engine) >= 10, timeout=60, message="work under way")
        with SqliteFault(db_url).down():
            time.sleep(5)  # the stall: more than three rescue periods
        wait_until(lambda: _completed(engine) == len(ids), timeout=60, message="all done")

        marker = tmp_path / "started"
        victim_job = (
            Queue(engine, build_registry())
            .enqueue("sleepy", {"seconds": 2, "startedFile": str(marker)})
            .id
        )
        wait_until(marker.exists, timeout=30, message="the sleepy job started")
        victim = next(w for w in workers if w.pid == int(marker.read_text()))
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        wait_until(
            lambda: _status(engine, victim_job) == "completed",
            timeout=60,
            message="the SIGKILLed worker's job rescued and completed",
        )
        with engine.connect() as conn:
            done = conn.execute(select(jobs.c.attempts).where(jobs.c.id == victim_job)).first()
        assert done.attempts == 2
        survivor = next(w for w in workers if w is not victim)
        assert survivor.poll() is None
    finally:
        for w in workers:
            _stop(w)
    runs = collections.Counter()
    for f in trace_dir.glob("trace-*.log"):
        for line in f.read_text().splitlines():
            runs[int(line.split()[0])] += 1
    assert set(runs) == set(ids)
    assert {k: v for k, v in runs.items() if v != 1} == {}, "a succeeded job ran twice"


def _status(engine, job_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(select(jobs.c.status).where(jobs.c.id == job_id)).scalar()
