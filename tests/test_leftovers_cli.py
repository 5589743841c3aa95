"""Leftovers of the command line and the Mercado Livre connection, on both databases: an
interrupted `superseller sync` leaves its job where a worker runs it; a store marked
connected whose tokens are gone asks to be reconnected (no traceback)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from superseller.db.schema import job_logs, jobs, marketplace_accounts
from superseller.jobs import audit
from superseller.jobs.admin import JobAdmin
from superseller.jobs.queue import Queue
from superseller.mercadolivre.account_state import account_state
from superseller.tenant_jobs import sync_key
from superseller.wiring import build_registry
from tests.support.cli import cli
from tests.support.inproc import running_worker, wait_status
from tests.support.ml import connected_tenant, run_sync, sandbox, settings_for
from tests.support.procs import ROOT
from tests.support.waiting import wait_until


def _account(engine, tid="t1"):
    with engine.connect() as conn:
        return conn.execute(
            select(marketplace_accounts).where(marketplace_accounts.c.tenant_id == tid)
        ).one()


def _sync_jobs(engine):
    with engine.connect() as conn:
        return (
            conn.execute(select(jobs.c.id).where(jobs.c.type == "sync_mercadolivre"))
            .scalars()
            .all()
        )


def _errors(engine, job_id):
    with engine.connect() as conn:
        return (
            conn.execute(select(job_logs.c.error_message).where(job_logs.c.job_id == job_id))
            .scalars()
            .all()
        )


@pytest.mark.parametrize("gone", [None, ""], ids=["null", "empty"])
def test_a_store_marked_connected_without_tokens_asks_to_reconnect(engine, db_url, tmp_path, gone):
    """A half-finished manual fix left the account row `connected` with its token columns
    NULL (or empty): the sync ends with the revoked grant's outcome — a permanent failure
    saying the seller must connect again, the store `reauth_required` ("Reconectar"), for
    good — and `superseller sync` says so in one line, never an AttributeError."""
    with sandbox(listings=2, orders_per_day=1) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings, "t1")
        with engine.begin() as conn:
            conn.execute(
                update(marketplace_accounts)
                .where(marketplace_accounts.c.tenant_id == "t1")
                .values(access_token_enc=gone, refresh_token_enc=gone)
            )
        assert account_state(engine, "t1") == "never_synced"  # still looks connected

        env = {
            "DATA_DIR": str(tmp_path),
            "ML_API_URL": sb.url,
            "ML_CLIENT_ID": "sandbox-app",
            "ML_CLIENT_SECRET": "sandbox-secret",
            "ML_REQUESTS_PER_S": "0",
        }
        run = cli(db_url, "sync", "--tenant", "t1", "--days-back", "3", env=env)
        assert run.returncode == 1, run.stderr
        # The command's error is its last line (the worker's log lines come before it),
        # the revoked grant's: no traceback, no AttributeError.
        said = run.stderr.strip().splitlines()[-1]
        assert said.startswith("error: sync failed (job ") and "re-authorization" in said, said
        assert "connect again" in said and "AttributeError" not in run.stderr
        assert "Traceback" not in run.stderr and 'File "' not in run.stderr, run.stderr
        [first] = [j for j in _sync_jobs(engine)]
        logged = _errors(engine, first)
        assert logged and not any("AttributeError" in (e or "") for e in logged), logged
        assert not any("Traceback" in (e or "") for e in logged), logged

        acct = _account(engine)
        assert acct.status == "reauth_required"  # the store shows "Reconectar"
        assert acct.status_reason and "connect" in acct.status_reason
        assert account_state(engine, "t1") == "reauth_required"

        # Lasting: the next sync (a worker's) stops at once with the same outcome.
        done = run_sync(engine, build_registry(settings), days_back=3)
    assert done["status"] == "failed"
    error = done["last_error"]
    assert error.startswith("PermanentJobError: ") and "re-authorization" in error, error
    assert len(error.splitlines()) == 1
    assert _account(engine).status == "reauth_required"


# -- an interrupted `superseller sync` -------------------------------------------------
def _ml_env(sb, tmp_path) -> dict[str, str]:
    return {
        "DATA_DIR": str(tmp_path),
        "ML_API_URL": sb.url,
        "ML_CLIENT_ID": "sandbox-app",
        "ML_CLIENT_SECRET": "sandbox-secret",
        "ML_REQUESTS_PER_S": "0",
    }


def _start_sync(db_url, sb, tmp_path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": db_url, **_ml_env(sb, tmp_path)}
    return subprocess.Popen(
        [sys.executable, "-m", "superseller.cli", "sync", "--tenant", "t1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _interrupt(proc: subprocess.Popen, sig=signal.SIGINT) -> str:
    """Send `sig` (Ctrl-C's SIGINT by default); the command exits 130 with one line."""
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"the interrupted command did not exit: {err}") from None
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]


def _alive(proc: subprocess.Popen, what):
    """`what()` once it holds, failing at once (with its stderr) if the command ended."""

    def check():
        if proc.poll() is not None:
            raise AssertionError(f"the command ended ({proc.returncode}): {proc.stderr.read()}")
        return what()

    return check


def _moves(engine, job_id) -> list[tuple[str, str]]:
    """The job's `job.move` audit entries, oldest first: (actor, queue)."""
    found = audit.entries(engine, action="job.move", target_id=str(job_id))
    return [(e["actor"], (e["detail"] or {}).get("queue")) for e in reversed(found)]


def _queued_sync(engine, registry, run_at=None) -> tuple[int, str]:
    """The sync "Atualizar dados" queued for a worker (its queue: the type's own)."""
    made = Queue(engine, registry).enqueue(
        "sync_mercadolivre",
        {"tenantId": "t1", "daysBack": 3},
        tenant_id="t1",
        unique_key=sync_key("t1"),
        priority=10,
        run_at=run_at,
    )
    job = JobAdmin(engine).get(made.id)
    assert job["queue"] != "cli"
    return made.id, job["queue"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_an_interrupted_sync_puts_the_joined_pending_job_back_on_its_queue(
    engine, db_url, tmp_path, sig
):
    """The store's sync waits (a retry's back-off: due in an hour) on the queue its workers
    serve; `superseller sync` joins it and moves it to `cli`; Ctrl-C (or a SIGTERM) before
    it runs puts it back where it came from, audited, and a worker serving only that queue
    runs it."""
    with sandbox(listings=2, orders_per_day=1) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings, "t1")
        registry = build_registry(settings)
        later = datetime.now(UTC) + timedelta(hours=1)
        jid, origin = _queued_sync(engine, registry, run_at=later)

        proc = _start_sync(db_url, sb, tmp_path)
        wait_until(
            _alive(proc, lambda: JobAdmin(engine).get(jid)["queue"] == "cli"),
            timeout=60,
            message="the command to move the joined job to the cli queue",
        )
        said = _interrupt(proc, sig)
        assert said == (
            f"error: interrupted; job {jid} put back on queue {origin}, "
            "where a worker serving it runs it"
        ), said
        job = JobAdmin(engine).get(jid)
        assert (job["status"], job["queue"], job["attempts"]) == ("pending", origin, 0)
        actor = _moves(engine, jid)[0][0]
        assert actor.startswith("cli:")
        assert _moves(engine, jid) == [(actor, "cli"), (actor, origin)]

        JobAdmin(engine).run_now(jid)  # its back-off over
        with running_worker(engine, registry, queues=[origin]):
            done = wait_status(engine, jid, "completed", "failed", timeout=120)
    assert done["status"] == "completed", done["last_error"]


def test_an_interrupted_sync_gives_back_the_joined_job_it_was_running(engine, db_url, tmp_path):
    """The command runs the joined sync itself (no worker up) and Ctrl-C comes mid-run: its
    worker gives the job back at once (the attempt not counted, `interrupted` in the job's
    log) and the job goes back to its own queue, not left `running` or on `cli`."""
    with sandbox(listings=2, orders_per_day=1) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings, "t1")
        registry = build_registry(settings)
        jid, origin = _queued_sync(engine, registry)
        sb.state.faults.latency_ms = 5_000  # every Mercado Livre answer takes 5 s

        proc = _start_sync(db_url, sb, tmp_path)
        ours = f":{proc.pid}:"  # worker ids read host:pid:suffix

        def running_here():
            job = JobAdmin(engine).get(jid)
            return job["status"] == "running" and ours in (job["worker_id"] or "")

        wait_until(_alive(proc, running_here), timeout=60, message="the command to run it")
        said = _interrupt(proc)
        assert said.startswith(f"error: interrupted; job {jid} put back on queue {origin},"), said
        job = JobAdmin(engine).get(jid)
        assert (job["status"], job["queue"], job["attempts"]) == ("pending", origin, 0)
        assert [r["status"] for r in JobAdmin(engine).logs(jid)] == ["interrupted"]
        actor = _moves(engine, jid)[0][0]
        assert _moves(engine, jid) == [(actor, "cli"), (actor, origin)]

        sb.state.faults.latency_ms = 0
        with running_worker(engine, registry, queues=[origin]):
            done = wait_status(engine, jid, "completed", "failed", timeout=120)
    assert done["status"] == "completed", done["last_error"]


def test_an_interrupted_sync_cancels_the_job_it_created(engine, db_url, tmp_path):
    """Nobody else asked for the sync the command created: Ctrl-C cancels it (audited)
    instead of leaving it on `cli` holding the store's sync key, where a named-queue
    deployment would never run it and "Atualizar dados" would join it forever."""
    with sandbox(listings=2, orders_per_day=1) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings, "t1")
        registry = build_registry(settings)
        sb.state.faults.latency_ms = 5_000

        proc = _start_sync(db_url, sb, tmp_path)
        ours = f":{proc.pid}:"

        def running_here():
            ids = _sync_jobs(engine)
            job = JobAdmin(engine).get(ids[0]) if ids else None
            return job and job["status"] == "running" and ours in (job["worker_id"] or "") and job

        jid = wait_until(_alive(proc, running_here), timeout=60, message="its sync to run")["id"]
        said = _interrupt(proc)
        sb.state.faults.latency_ms = 0
    assert said == f"error: interrupted; job {jid} cancelled", said
    assert JobAdmin(engine).get(jid)["status"] == "cancelled"
    [cancel] = audit.entries(engine, action="job.cancel", target_id=str(jid))
    assert cancel["actor"].startswith("cli:")
    # The store's sync key is free: "Atualizar dados" queues a new sync.
    assert (
        Queue(engine, registry)
        .enqueue("sync_mercadolivre", {"tenantId": "t1"}, tenant_id="t1", unique_key=sync_key("t1"))
        .created
    )
