"""Leftovers of the command line and the Mercado Livre connection, on both databases: an
interrupted `superseller sync` leaves its job where a worker runs it; a store marked
connected whose tokens are gone asks to be reconnected (no traceback)."""

from __future__ import annotations

import io
import signal
import subprocess
import threading
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console
from sqlalchemy import select, update

from superseller.cli import inline
from superseller.cli.common import CliError
from superseller.cli.inline import run_job_now
from superseller.config import Settings
from superseller.db.schema import job_logs, jobs, marketplace_accounts
from superseller.jobs import JobType, Registry, audit, pause
from superseller.jobs.admin import JobAdmin
from superseller.jobs.queue import Queue
from superseller.jobs.store import JobStore
from superseller.mercadolivre.account_state import account_state
from superseller.tenant_jobs import sync_key
from superseller.wiring import build_registry
from tests.support.cli import cli
from tests.support.handlers import sleepy
from tests.support.inproc import running_worker, wait_status
from tests.support.ml import connected_tenant, run_sync, sandbox, sandbox_env, settings_for
from tests.support.procs import start_cli
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

        env = _ml_env(sb, tmp_path)
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


def _ml_env(sb, tmp_path) -> dict[str, str]:
    """`superseller` pointed at the sandbox, unthrottled."""
    return sandbox_env(sb.url, DATA_DIR=tmp_path, ML_REQUESTS_PER_S=0)


# -- an interrupted `superseller sync` -------------------------------------------------
def _start_sync(db_url, sb, tmp_path) -> subprocess.Popen:
    return start_cli(db_url, "sync", "--tenant", "t1", env=_ml_env(sb, tmp_path))


def _interrupt(proc: subprocess.Popen, sig=signal.SIGINT) -> str:
    """Send `sig` (Ctrl-C's SIGINT by default); the command exits 130 with one line."""
    return _interrupt_lines(proc, sig)[-1]


def _interrupt_lines(proc: subprocess.Popen, sig=signal.SIGINT) -> list[str]:
    """`_interrupt`, returning every line of the command's stderr."""
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"the interrupted command did not exit: {err}") from None
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    return err.strip().splitlines()


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


def test_an_interrupted_sync_leaves_the_job_it_created_to_its_queue(engine, db_url, tmp_path):
    """The sync the command created holds the store's sync key, so "Atualizar dados" (and
    the nightly fan-out) join it: Ctrl-C does not cancel it under them. Said at once, the
    job goes, pending, to its type's own queue (audited `job.move`), where a worker serving
    only that queue runs it."""
    with sandbox(listings=2, orders_per_day=1) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings, "t1")
        registry = build_registry(settings)
        home = registry.get("sync_mercadolivre").queue
        sb.state.faults.latency_ms = 5_000

        proc = _start_sync(db_url, sb, tmp_path)
        ours = f":{proc.pid}:"

        def running_here():
            ids = _sync_jobs(engine)
            job = JobAdmin(engine).get(ids[0]) if ids else None
            return job and job["status"] == "running" and ours in (job["worker_id"] or "") and job

        jid = wait_until(_alive(proc, running_here), timeout=60, message="its sync to run")["id"]
        joined = Queue(engine, registry).enqueue(  # the seller's "Atualizar dados"
            "sync_mercadolivre", {"tenantId": "t1"}, tenant_id="t1", unique_key=sync_key("t1")
        )
        assert (joined.id, joined.created) == (jid, False)
        *before, said = _interrupt_lines(proc)
        assert f"interrupted: putting job {jid} back…" in before  # said at once, first
        assert said == (
            f"error: interrupted; job {jid} moved to queue {home}, "
            "where a worker serving it runs it"
        ), said
        job = JobAdmin(engine).get(jid)
        assert (job["status"], job["queue"], job["attempts"]) == ("pending", home, 0)
        assert not job["cancel_requested"]
        assert audit.entries(engine, action="job.cancel", target_id=str(jid)) == []
        [(actor, queue)] = _moves(engine, jid)
        assert actor.startswith("cli:") and queue == home

        sb.state.faults.latency_ms = 0
        with running_worker(engine, registry, queues=[home]):
            done = wait_status(engine, jid, "completed", "failed", timeout=120)
    assert done["status"] == "completed", done["last_error"]


# -- the same, in this process: the windows a subprocess cannot time -------------------
def _slow_registry() -> Registry:
    """A job type of its own queue (not the default one), that runs until cancelled."""
    reg = Registry()
    reg.add(JobType("sleepy", sleepy, queue="slowlane"))
    return reg


class _CtrlC:
    """Send Ctrl-C's SIGINT to this process's main thread once `ready()` holds, only while
    the main thread is inside the `with` block (a stray one would stop the test session)."""

    def __init__(self, ready):
        self.ready = ready
        self.inside = threading.Event()
        self.sent = threading.Event()
        self.errors: list[BaseException] = []

    def __enter__(self):
        self.inside.set()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self):
        try:
            wait_until(lambda: not self.inside.is_set() or self.ready(), timeout=60)
            if self.inside.is_set():
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
                self.sent.set()  # delivered to the main thread before it can see this
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(exc)

    def __exit__(self, *exc):
        self.inside.clear()
        self.thread.join(70)
        assert not self.errors, self.errors
        return False


def _run_interrupted(engine, reg, tmp_path, ready=None, ctrl_c=None) -> CliError:
    """`run_job_now` of a `sleepy` job, interrupted once `ready()` holds (or by the given
    `_CtrlC`): its CliError."""
    with ctrl_c or _CtrlC(ready) as ctrl_c:
        try:
            run_job_now(
                "sleepy",
                {"seconds": 60},
                None,
                "sleeping",
                eng=engine,
                reg=reg,
                settings=Settings(data_dir=tmp_path),
            )
        except CliError as exc:
            error = exc
        except KeyboardInterrupt:
            pytest.fail("the interrupt escaped the command (a traceback, the job left on cli)")
        else:
            pytest.fail("the command was not interrupted")
    assert ctrl_c.sent.is_set()
    return error


def _sleepy(engine) -> dict | None:
    with engine.connect() as conn:
        found = conn.execute(select(jobs.c.id).where(jobs.c.type == "sleepy")).scalars().all()
    return JobAdmin(engine).get(found[0]) if found else None


def test_ctrl_c_while_the_job_is_being_queued_is_handled_the_same(engine, tmp_path, monkeypatch):
    """A signal that comes while the job is being queued (before the command knows its id)
    does not escape as a traceback leaving the job on `cli`: it waits for the id, and the
    job goes to its type's queue like any other interrupted one."""
    queued = threading.Event()
    ctrl_c = _CtrlC(queued.is_set)
    real = inline.enqueue_by_hand

    def enqueue_then_wait(*args, **kwargs):
        made = real(*args, **kwargs)
        queued.set()
        # Ctrl-C comes now: the job is stored, the command does not have its id yet.
        wait_until(ctrl_c.sent.is_set, timeout=60, message="the signal")
        for _ in range(100):  # the handler runs between these bytecodes
            pass
        return made

    monkeypatch.setattr(inline, "enqueue_by_hand", enqueue_then_wait)
    error = _run_interrupted(engine, _slow_registry(), tmp_path, ctrl_c=ctrl_c)
    job = _sleepy(engine)
    assert str(error) == (
        f"interrupted; job {job['id']} moved to queue slowlane, where a worker serving it runs it"
    )
    assert error.code == 130
    assert (job["status"], job["queue"], job["attempts"]) == ("pending", "slowlane", 0)


def test_a_give_back_slower_than_the_wait_is_said_as_it_is(engine, tmp_path, monkeypatch):
    """The in-process worker cannot give its job back in time (a held write lock): the
    command does not claim it did. It says so at once, then that the rescue will give the
    job back on its home queue (the type's, with the type's attempts: the one attempt it
    had on `cli` is not its last there), and exits 1; the rescue then does what it said."""
    monkeypatch.setattr(inline, "_GIVE_BACK_S", 0.5)
    err = io.StringIO()
    monkeypatch.setattr(inline, "err_console", Console(file=err, width=300))
    entered, let_go, announced = threading.Event(), threading.Event(), threading.Event()
    real_release = JobStore.release

    def slow_release(self, *args, **kwargs):
        entered.set()
        # The command announces the interruption while its give-back is still stuck.
        if "interrupted: putting job" in err.getvalue():
            announced.set()
        let_go.wait(60)
        return real_release(self, *args, **kwargs)

    monkeypatch.setattr(JobStore, "release", slow_release)
    reg = _slow_registry()

    def running():
        job = _sleepy(engine)
        return job is not None and job["status"] == "running"

    try:
        error = _run_interrupted(engine, reg, tmp_path, running)
        assert entered.is_set(), "the in-process worker never gave the job back"
        assert announced.is_set(), f"not said before the give-back: {err.getvalue()!r}"
        job = _sleepy(engine)
        assert str(error) == (
            f"interrupted; could not put job {job['id']} back in 0.5 s; the engine's rescue "
            "will give it back on queue slowlane once it has been silent 30 s"
        )
        assert error.code == 1
        assert (job["status"], job["queue"]) == ("running", "cli")
        # What the line promised: once silent, a rescue sends it home, runnable there.
        store = JobStore(engine)
        rescued = wait_until(
            lambda: store.rescue(0.5, reg.logged_as), timeout=30, message="the rescue"
        )
        assert rescued == [job["id"]]
        home = JobAdmin(engine).get(job["id"])
        assert (home["status"], home["queue"]) == ("pending", "slowlane")
    finally:
        let_go.set()


def test_a_job_taken_by_another_worker_while_it_is_put_back_is_left_there(
    engine, tmp_path, monkeypatch
):
    """Between the command's read and its move, a worker of every queue takes the job:
    the move finds it running, nothing is asked of it (no cancel), and the line names the
    worker it runs on (exit 130)."""
    pause.set_queue_paused(engine, inline.CLI_QUEUE, True)  # the command's worker waits
    other = "elsewhere:1:abcdef"
    real_move = JobAdmin.move_pending

    def taken_first(self, job_id, queue, **given):
        JobStore(engine).claim(other, 1, [inline.CLI_QUEUE])
        return real_move(self, job_id, queue, **given)

    monkeypatch.setattr(JobAdmin, "move_pending", taken_first)

    def pending_on_cli():
        job = _sleepy(engine)
        return job is not None and (job["status"], job["queue"]) == ("pending", "cli")

    error = _run_interrupted(engine, _slow_registry(), tmp_path, pending_on_cli)
    job = _sleepy(engine)
    assert str(error) == (
        f"interrupted; job {job['id']} is still running on worker {other}; it will finish there"
    )
    assert error.code == 130
    assert (job["status"], job["worker_id"], job["cancel_requested"]) == ("running", other, False)
    assert audit.entries(engine, action="job.cancel", target_id=str(job["id"])) == []


def test_a_job_the_command_created_gets_its_types_attempts_on_the_worker(engine, tmp_path):
    """A command runs its job once by design (it reports the outcome); handed to a worker
    after Ctrl-C, the job gets its type's own attempts, so a passing error there is retried."""
    reg = _slow_registry()
    assert reg.get("sleepy").max_attempts > 1

    def running():
        job = _sleepy(engine)
        return job is not None and job["status"] == "running"

    error = _run_interrupted(engine, reg, tmp_path, running)
    job = _sleepy(engine)
    assert str(error) == (
        f"interrupted; job {job['id']} moved to queue slowlane, where a worker serving it runs it"
    )
    assert (job["status"], job["queue"], job["attempts"]) == ("pending", "slowlane", 0)
    assert job["max_attempts"] == reg.get("sleepy").max_attempts


def test_a_joined_job_keeps_its_own_attempts_and_its_worker_is_named(engine, tmp_path, monkeypatch):
    """`sync` joining a job a worker is running says it runs on that worker (not "a worker
    serving queue … runs it (`superseller worker`)"); interrupted, the job is left there
    with its own attempts."""
    err = io.StringIO()
    monkeypatch.setattr(inline, "err_console", Console(file=err, width=300))
    reg = _slow_registry()
    made = Queue(engine, reg).enqueue("sleepy", {"seconds": 60}, unique_key="k", max_attempts=2)
    other = "elsewhere:1:abcdef"
    [claimed] = JobStore(engine).claim(other, 1, ["slowlane"])
    assert claimed.id == made.id
    with _CtrlC(lambda: "joined job" in err.getvalue()):
        with pytest.raises(CliError) as raised:
            run_job_now(
                "sleepy",
                {"seconds": 1},
                None,
                "sleeping",
                unique_key="k",
                eng=engine,
                reg=reg,
                settings=Settings(data_dir=tmp_path),
            )
    said = err.getvalue()
    assert f"waiting for it: running on worker {other}" in said, said
    assert "superseller worker" not in said
    assert str(raised.value) == (
        f"interrupted; job {made.id} is still running on worker {other}; it will finish there"
    )
    job = JobAdmin(engine).get(made.id)
    assert (job["status"], job["worker_id"], job["max_attempts"]) == ("running", other, 2)
