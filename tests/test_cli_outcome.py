"""Commands that run a job report its real outcome, whoever runs it, and leave no queue
of their own behind."""

import json
import os
import signal
import subprocess
import sys

import httpx
from sqlalchemy import select

from superseller.cli.inline import CLI_QUEUE, outcome, wait_for_job
from superseller.config import Settings
from superseller.db.schema import jobs
from superseller.jobs.queue import Queue
from superseller.sandbox.server import free_port
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.cli import cli
from tests.support.inproc import running_worker
from tests.support.procs import ROOT
from tests.support.waiting import wait_until


def _serve_with_worker(db_url):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "superseller.cli", "serve", "--with-worker", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": db_url},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )

    def up():
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        except httpx.TransportError:
            return proc.poll() is not None  # died: stop waiting, the test fails below

    wait_until(up, timeout=60, message="the server")
    assert proc.poll() is None, proc.stdout.read()
    return proc


def test_cli_jobs_report_their_outcome_while_a_server_worker_runs(db_url, engine):
    mk.tenant(engine, "t1")
    server = _serve_with_worker(db_url)
    try:
        for _ in range(3):  # the server's worker or the command's own: same outcome
            done = cli(
                db_url, "rebuild", "--tenant", "t1", "--from", "2026-01-01", "--to", "2026-01-03"
            )
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["daysProcessed"] == 3
        # A job that fails: exit 1 and its error, on one line.
        failed = cli(db_url, "sync", "--tenant", "t1")
        assert failed.returncode == 1
        assert "has no Mercado Livre account" in failed.stderr
        assert "None" not in failed.stderr and "Traceback" not in failed.stderr
        errors = [x for x in failed.stderr.splitlines() if x.startswith("error:")]
        assert len(errors) == 1 and "has no Mercado Livre account" in errors[0]
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)
    with engine.connect() as conn:
        queues = set(conn.execute(select(jobs.c.queue).distinct()).scalars())
    assert not [q for q in queues if q.startswith("cli-")]  # no private queue per run
    assert CLI_QUEUE in queues


def test_waits_on_the_job_by_id_when_another_worker_runs_it(engine, tmp_path):
    mk.tenant(engine, "t1")
    reg = build_registry(Settings(data_dir=tmp_path))
    payload = {"tenantId": "t1", "from": "2026-01-01", "to": "2026-01-02"}
    jid = Queue(engine, reg).enqueue("metrics_aggregation", payload, tenant_id="t1").id
    with running_worker(engine, reg):  # another worker, on the job's own queue
        job = wait_for_job(engine, reg, jid, "rebuilding", run_here=False, timeout_s=60)
    assert outcome(job, "rebuild")["daysProcessed"] == 2
    ghost = Queue(engine, reg).enqueue("metrics_aggregation", {"tenantId": "ghost"}).id
    with running_worker(engine, reg):
        job = wait_for_job(engine, reg, ghost, "rebuilding", run_here=False, timeout_s=60)
    try:
        outcome(job, "rebuild")
    except Exception as exc:  # noqa: BLE001
        assert str(exc).startswith(f"rebuild failed (job {ghost}, failed): ")
        assert str(exc).endswith("tenant 'ghost' not found")
    else:
        raise AssertionError("a failed job must raise")
