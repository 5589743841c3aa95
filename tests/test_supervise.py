"""`serve`'s embedded loops are supervised: a loop that dies is logged with its traceback
and restarted with back-off, and /readyz (503, project error body) and /metrics say so."""

from __future__ import annotations

import logging
import threading

import httpx

from superseller.api.app import create_app
from superseller.api.deps import Services
from superseller.cli.serve_cmd import embedded_loops
from superseller.config import Settings
from superseller.jobs import supervise
from superseller.jobs.clock import SystemClock
from superseller.jobs.dbwatch import DatabaseWatch
from superseller.jobs.queue import Queue
from superseller.jobs.supervise import SupervisedLoop
from superseller.jobs.worker import Worker
from tests.support.api import serving_app
from tests.support.handlers import build_registry
from tests.support.inproc import wait_status
from tests.support.waiting import wait_until


def test_a_dead_worker_loop_is_restarted_and_readyz_names_it(engine, tmp_path, monkeypatch, caplog):
    real_run, calls = Worker.run, []

    def dies_once(self):
        calls.append(self)
        if len(calls) == 1:
            raise RuntimeError("boom: the loop broke")
        return real_run(self)

    monkeypatch.setattr(Worker, "run", dies_once)
    settings = Settings(data_dir=tmp_path, job_heartbeat_s=0.2, job_rescue_after_s=2)
    svc = Services(settings, engine, build_registry(), SystemClock())
    [loop] = embedded_loops(svc, with_worker=True, with_scheduler=False)
    app = create_app(svc)
    app.state.loops = [loop]
    caplog.set_level(logging.ERROR, "superseller.jobs.supervise")
    # The loop dies once it starts and is down for the restart delay: started once the
    # server answers, with a delay a loaded machine cannot miss (it was 1 s from before
    # the server started, and a slow start saw only the restarted, ready loop).
    monkeypatch.setattr(supervise, "RESTART_BASE_S", 5.0)
    try:
        with serving_app(app) as url:
            loop.start()
            api = httpx.Client(base_url=url, timeout=30)
            # Down (waiting for its restart): not ready, and the answer says who and since when.
            down = wait_until(
                lambda: (r := api.get("/readyz")).status_code == 503 and r.json(),
                timeout=10,
                message="/readyz 503 while the worker loop is down",
            )
            assert down["error"]["code"] == "not_ready"
            assert "worker down since" in down["error"]["message"]
            [check] = down["error"]["checks"]
            assert check["loop"] == "worker" and "boom" in check["error"]
            assert "loop died" in caplog.text and "Traceback" in caplog.text

            # Restarted: a fresh worker runs jobs, and the process is ready again.
            job = Queue(engine, build_registry()).enqueue("noop").id
            wait_status(engine, job, "completed", timeout=30)
            wait_until(lambda: api.get("/readyz").status_code == 200, timeout=30, message="ready")
            assert len(calls) == 2 and loop.restarts == 1
            metrics = api.get("/metrics").text
            assert 'superseller_loop_up{loop="worker"} 1.0' in metrics
            assert 'superseller_loop_restarts_total{loop="worker"} 1.0' in metrics
            assert 'superseller_loop_last_progress_timestamp_seconds{loop="worker"}' in metrics
            assert api.get("/healthz").json() == {"status": "ok"}
    finally:
        loop.stop()
        loop.join(30)


class _Loop:
    """A stand-in loop driven by the test: what its database calls do is up to the test."""

    def __init__(self):
        self.watch = DatabaseWatch(logging.getLogger("test.loop"))
        self.stopped = threading.Event()
        self.hang = threading.Event()
        self.release = threading.Event()

    def run(self):
        while not self.stopped.wait(0.01):
            if self.hang.is_set():
                with self.watch.call():  # a call that waits (a held write lock)
                    self.release.wait(30)
                self.hang.clear()

    def stop(self):
        self.release.set()
        self.stopped.set()


def test_loop_states_that_make_readyz_answer_503():
    part = _Loop()
    loop = SupervisedLoop("worker", lambda: part, lambda p: p.run(), 1.0, unresponsive_s=0.2)
    loop.start()
    try:
        state = lambda: loop.status()["state"]  # noqa: E731
        wait_until(lambda: state() == "stalled", timeout=5, message="no progress: stalled")
        part.watch.ok()
        assert state() == "ok"
        part.watch.failed(OSError("connection refused"))
        unreachable = loop.status()
        assert unreachable["state"] == "database_unreachable" and unreachable["since"]
        part.watch.ok()
        part.hang.set()
        wait_until(lambda: state() == "database_unresponsive", timeout=5, message="a call waits")
        part.release.set()
        wait_until(lambda: state() == "ok", timeout=5, message="the call went through")
    finally:
        loop.stop()
        loop.join(5)


def test_a_loop_killed_by_a_database_error_is_named_without_its_sql():
    """/readyz shows the loop's last error to whoever asks: a database error is its one
    short line, never the statement or its parameters."""
    from sqlalchemy.exc import OperationalError

    def factory():
        raise OperationalError(
            "SELECT token FROM marketplace_accounts WHERE id = %(id)s",
            {"id": "APP_USR-secret"},
            Exception("server closed the connection unexpectedly"),
        )

    loop = SupervisedLoop("scheduler", factory, lambda p: None, 1.0).start()
    try:
        error = wait_until(lambda: loop.last_error, timeout=10, message="the loop to die")
    finally:
        loop.stop()
        loop.join(10)
    assert "server closed the connection unexpectedly" in error
    assert "SELECT" not in error and "APP_USR" not in error and "\n" not in error
