"""`superseller serve --role api|worker|scheduler|all`: one image, one role per process."""

import os
import signal
import subprocess
import sys

import httpx

from superseller.config import Settings
from superseller.jobs.queue import Queue
from superseller.sandbox.server import free_port
from superseller.wiring import build_registry
from tests.support.inproc import wait_status
from tests.support.procs import ROOT
from tests.support.waiting import wait_until


def start(db_url, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "superseller.cli", "serve", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": db_url},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out[-2000:]
    assert "Traceback" not in out


def test_unknown_role_is_refused(db_url):
    proc = start(db_url, "--role", "janitor")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "--role must be one of" in out


def test_worker_role_runs_jobs_and_stops_on_sigterm(db_url, engine, tmp_path):
    job = Queue(engine, build_registry(Settings(data_dir=tmp_path))).enqueue("cleanup").id
    proc = start(db_url, "--role", "worker")
    try:
        wait_status(engine, job, "completed", timeout=60)
    finally:
        stop(proc)


def test_all_role_serves_the_api_and_runs_jobs(db_url, engine, tmp_path):
    port = free_port()
    proc = start(db_url, "--role", "all", "--port", str(port))
    try:

        def up():
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, timeout=60, message="the API")
        job = Queue(engine, build_registry(Settings(data_dir=tmp_path))).enqueue("cleanup").id
        wait_status(engine, job, "completed", timeout=60)
    finally:
        stop(proc)
