"""A `superseller sync` killed with SIGKILL (or whose host dies) mid-run does not strand
its job on the command line's private `cli` queue: the engine remembers the job's home
queue while it is lent to the command, and the rescue of the vanished command sends it
home, where a worker serving only that queue runs it. On both databases."""

from __future__ import annotations

import signal
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from superseller.config import Settings
from superseller.db import migrate
from superseller.db.engine import make_engine
from superseller.db.schema import jobs
from superseller.jobs.admin import JobAdmin
from superseller.jobs.queue import Queue
from superseller.jobs.store import JobStore
from superseller.tenant_jobs import sync_key
from superseller.wiring import build_registry
from tests.support.inproc import logs
from tests.support.ml import connected_tenant, sandbox, sandbox_env, settings_for
from tests.support.procs import start_cli, stop
from tests.support.waiting import wait_until

RESCUE_AFTER_S = "2"


def _env(sb, tmp_path, **extra) -> dict[str, str]:
    return sandbox_env(sb.url, DATA_DIR=tmp_path, ML_REQUESTS_PER_S=0, **extra)


def _sync_job(engine) -> dict | None:
    with engine.connect() as conn:
        ids = (
            conn.execute(select(jobs.c.id).where(jobs.c.type == "sync_mercadolivre"))
            .scalars()
            .all()
        )
    return JobAdmin(engine).get(ids[0]) if ids else None


@pytest.mark.parametrize("how", ["created", "joined"])
def test_a_sync_killed_mid_run_goes_home_and_a_worker_of_that_queue_runs_it(
    engine, db_url, tmp_path, how
):
    """`superseller sync` runs the store's sync on `cli` (one it created, or the pending
    one it joined and moved there) and is killed with SIGKILL mid-run: nothing puts the
    job back. A worker serving only the sync's own queue rescues it once it has been
    silent the rescue period, and it goes pending to that queue (its home), with its
    type's attempts (the one the command created was to run once: the lost attempt must
    not fail it), where that worker runs it to completion. A job an operator put on
    another queue whose worker vanished is rescued where it is: it was never lent."""
    with sandbox(listings=2, orders_per_day=1) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings, "t1")
        registry = build_registry(settings)
        home = registry.get("sync_mercadolivre").queue
        queue = Queue(engine, registry)
        if how == "joined":  # "Atualizar dados" with no worker up
            queue.enqueue(
                "sync_mercadolivre",
                {"tenantId": "t1", "daysBack": 3},
                tenant_id="t1",
                unique_key=sync_key("t1"),
            )
        # Never lent: a job put on a queue of its own, whose worker dies while it runs.
        kept = queue.enqueue("metrics_aggregation", {"tenantId": "t1"}, queue="elsewhere").id
        assert JobStore(engine).claim("gone:1:abcdef", 1, ["elsewhere"])[0].id == kept
        sb.state.faults.latency_ms = 5_000  # every Mercado Livre answer takes 5 s

        env = _env(sb, tmp_path, JOB_RESCUE_AFTER_S=RESCUE_AFTER_S)
        proc = start_cli(db_url, "sync", "--tenant", "t1", env=env)
        ours = f":{proc.pid}:"  # worker ids read host:pid:suffix

        def running_here():
            if proc.poll() is not None:
                raise AssertionError(f"the command ended ({proc.returncode}): {proc.stderr.read()}")
            job = _sync_job(engine)
            return job and job["status"] == "running" and ours in (job["worker_id"] or "") and job

        jid = wait_until(running_here, timeout=60, message="the command to run its sync")["id"]
        lent = JobAdmin(engine).get(jid)
        assert (lent["queue"], lent["home_queue"]) == ("cli", home)
        proc.send_signal(signal.SIGKILL)  # no handler, no clean-up: the job stays running
        proc.communicate(timeout=30)
        assert JobAdmin(engine).get(jid)["status"] == "running"

        sb.state.faults.latency_ms = 0
        worker_log = tmp_path / "worker.log"
        worker = start_cli(
            db_url,
            "worker",
            "--queues",
            home,
            "--concurrency",
            "1",
            env=env,
            stderr=worker_log.open("w"),
        )
        try:
            done = wait_until(
                lambda: (j := JobAdmin(engine).get(jid))["status"] in FINISHED and j,
                timeout=120,
                message=f"job {jid} to be rescued and run by the worker of queue {home}",
            )
            assert done["status"] == "completed", (done["last_error"], worker.poll())
            assert (done["queue"], done["home_queue"], done["home_max_attempts"]) == (
                home,
                None,
                None,
            )
            attempts = registry.get("sync_mercadolivre").max_attempts
            assert (done["attempts"], done["max_attempts"]) == (2, attempts)
            assert [r["status"] for r in logs(engine, jid)] == ["lost", "success"]
            # The worker serving `home` took it: not a worker of every queue.
            [ran] = [r for r in logs(engine, jid) if r["status"] == "success"]
            assert ran["attempt"] == 2

            # Rescued too (by the same worker), but where an operator put it: not moved.
            other = wait_until(
                lambda: (j := JobAdmin(engine).get(kept))["status"] != "running" and j,
                timeout=30,
                message="the other vanished worker's job to be rescued",
            )
            assert (other["status"], other["queue"], other["home_queue"]) == (
                "pending",
                "elsewhere",
                None,
            )
        finally:
            assert stop(worker) == 0, worker_log.read_text()


FINISHED = ("completed", "failed", "cancelled")


def test_a_command_stopped_past_the_rescue_period_still_records_its_run(engine, db_url, tmp_path):
    """The command lives but its worker went silent past the rescue period (stopped with
    SIGSTOP here; a database away from that host only does the same), and another
    worker's rescue sent the job home, where no worker serves. Once the command runs
    again its attempt ends and its outcome is taken (the fence admits a rescued attempt's
    late outcome while nobody has started the job since): the command ends with the job
    completed instead of waiting for a worker of the home queue."""
    with sandbox(listings=2, orders_per_day=1) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings, "t1")
        registry = build_registry(settings)
        home = registry.get("sync_mercadolivre").queue
        sb.state.faults.latency_ms = 3_000
        env = _env(sb, tmp_path, JOB_RESCUE_AFTER_S=RESCUE_AFTER_S)
        proc = start_cli(db_url, "sync", "--tenant", "t1", env=env)
        ours = f":{proc.pid}:"
        try:
            job = wait_until(
                lambda: (
                    (j := _sync_job(engine))
                    and j["status"] == "running"
                    and ours in (j["worker_id"] or "")
                    and j
                ),
                timeout=60,
                message="the command to run its sync",
            )
            jid = job["id"]
            proc.send_signal(signal.SIGSTOP)
            # Another worker's rescue, once the stopped command has been silent 1 s.
            wait_until(
                lambda: JobStore(engine).rescue(1, registry.logged_as),
                timeout=30,
                message="the stopped command's job to be rescued",
            )
            sent = JobAdmin(engine).get(jid)
            assert (sent["status"], sent["queue"]) == ("pending", home)
            sb.state.faults.latency_ms = 0
        finally:
            proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        done = JobAdmin(engine).get(jid)
        assert done["status"] == "completed"
        assert [r["status"] for r in logs(engine, jid)][-1] == "success"


def test_a_job_lent_to_the_command_line_and_failed_there_retries_at_home(engine, tmp_path):
    """A job the command line created ran once on `cli` and failed; a retry from the
    console (no command waits for it any more) puts it on its home queue with its type's
    attempts, and a move by hand (`move_pending`) makes the queue it is moved to its own."""
    registry = build_registry(Settings(data_dir=tmp_path))
    home = registry.get("metrics_aggregation").queue
    made = Queue(engine, registry).enqueue(
        "metrics_aggregation", {"tenantId": "all"}, queue="cli", max_attempts=1, private_run=True
    )
    admin = JobAdmin(engine)
    assert admin.get(made.id)["home_queue"] == home
    with engine.begin() as conn:
        conn.execute(
            jobs.update()
            .where(jobs.c.id == made.id)
            .values(status="failed", attempts=1, finished_at=datetime.now(UTC))
        )
    job = admin.retry(made.id)
    assert (job["status"], job["queue"], job["home_queue"]) == ("pending", home, None)
    assert job["max_attempts"] == registry.get("metrics_aggregation").max_attempts

    assert admin.lend_pending(made.id, "cli")
    assert admin.get(made.id)["home_queue"] == home  # its queue before the loan
    assert admin.move_pending(made.id, "elsewhere")
    moved = admin.get(made.id)
    assert (moved["queue"], moved["home_queue"]) == ("elsewhere", None)


def test_the_upgrade_keeps_existing_jobs_where_they_are(empty_db_url):
    """Migration 0024 on a database with jobs: they stay on their queue, none lent."""
    eng = make_engine(empty_db_url)
    migrate.upgrade(eng, "0023")
    at = "2026-01-01 00:00:00"
    with eng.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO jobs (type, queue, payload, status, priority, run_at, attempts,"
                " max_attempts, cancel_requested, created_at) VALUES ('sync_mercadolivre',"
                " 'default', '{}', 'pending', 0, :at, 0, 3, false, :at)"
            ),
            {"at": at},
        )
    migrate.upgrade(eng)
    assert migrate.check(eng).ok
    with eng.connect() as conn:
        row = conn.execute(select(jobs.c.queue, jobs.c.home_queue, jobs.c.status)).one()
    assert tuple(row) == ("default", None, "pending")
    migrate.downgrade(eng, "0023")
    with eng.connect() as conn:
        assert conn.execute(text("SELECT queue FROM jobs")).scalar_one() == "default"
    eng.dispose()
