"""Run one job now, through the real engine, from the command line, and report its outcome.

The job goes to the shared `cli` queue (one queue for every command-line run, so the
Jobs page never grows a queue per run) and the command waits on it *by id* until it
finishes, whoever runs it: a worker of a running server may take it, and when nobody
has, an in-process burst worker drains the `cli` queue. Either way the job gets its
job_logs row, retries and time-outs like any other run, and only the command's
outcome depends on which worker ran it: none.

Interrupted (Ctrl-C, SIGTERM), the command leaves the job where a worker runs it: the
in-process worker gives back what it runs (attempt not counted), a joined job it had
moved to `cli` goes back to its own queue (audited `job.move`), one it created itself is
cancelled (audited `job.cancel`); its last line says which, and it exits 130.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from datetime import UTC, datetime
from typing import Any

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from superseller.cli.common import CliError, console, engine, err_console, registry
from superseller.config import Settings, get_settings
from superseller.jobs import audit, pause
from superseller.jobs.admin import JobAdmin
from superseller.jobs.errors import InvalidTransition
from superseller.jobs.queue import Enqueued, JobSpec
from superseller.jobs.registry import Registry
from superseller.jobs.worker import Worker, WorkerOptions
from superseller.tenant_jobs import enqueue_by_hand

CLI_QUEUE = "cli"
FINISHED = ("completed", "failed", "cancelled")
_POLL_S = 0.2
_RESTART_S = 1.0  # the least time between two in-process workers
_GIVE_BACK_S = 15.0  # the longest an interrupted command waits for its worker to give back


def run_job_now(
    job_type: str,
    payload: dict,
    tenant_id: str | None,
    label: str,
    max_attempts: int = 1,
    *,
    unique_key: str | None = None,
    eng: Engine | None = None,
    reg: Registry | None = None,
    settings: Settings | None = None,
) -> dict:
    """Enqueue the job on the `cli` queue (a job made by hand: it belongs to its tenant and
    is audited as `cli:<OS user>`) and wait for it to finish; returns its row. With
    `unique_key`, a pending or running job holding it is joined instead (said on stderr)."""
    eng, reg = eng or engine(), reg or registry()
    spec = JobSpec(
        job_type,
        payload,
        tenant_id=tenant_id,
        queue=CLI_QUEUE,
        max_attempts=max_attempts,
        unique_key=unique_key,
    )
    actor = audit.cli_actor()
    made = enqueue_by_hand(eng, reg, spec, actor)
    moved_from: list[str] = []  # the queue a joined job was moved from, once known
    with _interrupted_once():
        try:
            if not made.created:
                _joined(_run_joined_here(eng, made.id, actor, moved_from))
            return wait_for_job(eng, reg, made.id, label, settings=settings)
        except KeyboardInterrupt:  # Ctrl-C (or SIGTERM): leave the job where a worker runs it
            left = _leave_runnable(eng, made, actor, moved_from[0] if moved_from else None)
            raise CliError(f"interrupted; {left}", 130) from None


def _run_joined_here(
    eng: Engine, job_id: int, actor: str, moved_from: list[str] | None = None
) -> dict[str, Any]:
    """A joined job still waiting on another queue is moved to the `cli` queue, so this
    command runs it rather than wait for a worker that may not be running (the seller's
    "Atualizar dados" with no worker up). Not out of a paused queue: the pause holds.
    The queue it came from is appended to `moved_from` before the move (an interrupted
    command puts the job back there)."""
    admin = JobAdmin(eng, actor=actor)
    job = admin.get(job_id)
    paused = {q["queue"] for q in pause.state(eng)["pausedQueues"]}
    if job["status"] == "pending" and job["queue"] != CLI_QUEUE and job["queue"] not in paused:
        if moved_from is not None:
            moved_from.append(job["queue"])
        admin.move_pending(job_id, CLI_QUEUE)
        job = admin.get(job_id)
    return job


def _leave_runnable(eng: Engine, made: Enqueued, actor: str, moved_from: str | None) -> str:
    """After an interruption (the in-process worker, if any, has given the job back):
    a joined job this command moved to the `cli` queue goes back to the queue it came
    from, which its workers serve (only a worker of every queue serves `cli`); a job this
    command created is cancelled (nobody else asked for it; it would hold the store's
    sync key on a queue no named-queue worker serves). A job running on another worker
    or finished is left as it is. Returns what became of it, for the command's last line."""
    admin = JobAdmin(eng, actor=actor)
    try:
        job = admin.get(made.id)
        if job["status"] == "pending" and job["queue"] == CLI_QUEUE:
            if moved_from is not None and moved_from != CLI_QUEUE:
                if admin.move_pending(made.id, moved_from):
                    return (
                        f"job {made.id} put back on queue {moved_from}, "
                        "where a worker serving it runs it"
                    )
            elif made.created:
                try:
                    if admin.cancel(made.id) == "cancelled":
                        return f"job {made.id} cancelled"
                except InvalidTransition:
                    pass  # taken or finished meanwhile: said below
            job = admin.get(made.id)
    except SQLAlchemyError as exc:
        first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
        return f"job {made.id} could not be put back (database error: {first})"
    where = f"on queue {job['queue']}"
    if job["status"] == "running":
        return f"job {made.id} is still running {where} ({job['worker_id'] or 'a worker'})"
    return f"job {made.id} is {job['status']} {where}"


@contextlib.contextmanager
def _interrupted_once():
    """The first Ctrl-C or SIGTERM (a service manager's stop, a cron time-out) interrupts
    (KeyboardInterrupt), so that the job is left where a worker runs it instead of the
    process vanishing mid-wait; the ones after it do not cut that short (it takes at most
    the in-process worker's hurried stop and two statements)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = threading.Event()

    def interrupt(*_):
        if not fired.is_set():
            fired.set()
            raise KeyboardInterrupt

    held = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, interrupt) for sig in held}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _signals_held():
    """While the in-process worker gives its job back, a second Ctrl-C (or SIGTERM) does
    not cut that short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in held}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _joined(job: dict[str, Any]) -> None:
    """Say that the command waits on a job someone else asked for, and who runs it."""
    who = (
        "it runs here when due"
        if job["queue"] == CLI_QUEUE
        else f"a worker serving queue {job['queue']} runs it (`superseller worker`)"
    )
    # Its own payload holds: a joined sync of 7 days stays 7 days whatever this command asked.
    asked = ", ".join(f"{k}={v}" for k, v in sorted((job["payload"] or {}).items()))
    err_console.print(
        f"joined job {job['id']} ({job['status']}; {asked or 'no payload'}), already queued "
        f"with the same key; waiting for it: {who}",
        highlight=False,
        soft_wrap=True,
    )


def wait_for_job(
    eng: Engine,
    reg: Registry,
    job_id: int,
    label: str,
    *,
    settings: Settings | None = None,
    run_here: bool = True,
    timeout_s: float | None = None,
) -> dict:
    """Wait until job `job_id` is finished, whoever runs it; returns its row.

    With `run_here`, an in-process burst worker on the `cli` queue runs it when no
    other worker has taken it (started again whenever the job is due and unclaimed,
    e.g. after a retry's back-off or a rescue)."""
    admin = JobAdmin(eng)
    opts = WorkerOptions.from_settings(
        settings or get_settings(), concurrency=1, queues=[CLI_QUEUE], burst=True, listen=False
    )
    worker: Worker | None = None
    thread: threading.Thread | None = None
    last_start = float("-inf")
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task(label, total=None)
            while True:
                job = admin.get(job_id)
                if job["status"] in FINISHED:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise CliError(f"job {job_id} is still {job['status']} after {timeout_s:g} s")
                idle = thread is None or not thread.is_alive()
                if (
                    run_here
                    and idle
                    and _due(job)
                    and job["queue"] == CLI_QUEUE
                    and time.monotonic() - last_start >= _RESTART_S
                ):
                    worker = Worker(eng, reg, opts)
                    thread = threading.Thread(target=worker.run, name="cli-worker", daemon=True)
                    thread.start()
                    last_start = time.monotonic()
                progress.update(task, description=_describe(label, job, worker))
                time.sleep(_POLL_S)
    except BaseException:
        # Interrupted (Ctrl-C) or failed: the in-process worker gives back what it runs
        # at once (a worker's second SIGTERM: the attempt is not counted) instead of
        # dying with the process and leaving the job `running` until a rescue.
        if thread is not None and thread.is_alive():
            with _signals_held():
                worker.stop(hurry=True)
                thread.join(_GIVE_BACK_S)
        raise
    if thread is not None and thread.is_alive():
        # It took another command's job meanwhile: stop claiming, let that one finish
        # within the grace period or put it back (a worker's SIGTERM), never drop it.
        worker.stop()
        thread.join(opts.shutdown_grace_s + 5)
    return job


def _due(job: dict[str, Any]) -> bool:
    if job["status"] != "pending":
        return False
    run_at = job["run_at"]
    if isinstance(run_at, str):
        run_at = datetime.fromisoformat(run_at)
    if run_at.tzinfo is None:
        run_at = run_at.replace(tzinfo=UTC)
    return run_at <= datetime.now(UTC)


def _describe(label: str, job: dict[str, Any], worker: Worker | None) -> str:
    running = worker._inflight.get(job["id"]) if worker is not None else None
    if running is not None:
        return f"{label} (job {job['id']}): {running.ctx.records_processed} records"
    if job["status"] == "running":
        return f"{label} (job {job['id']}, run by {job['worker_id'] or 'a worker'})"
    return f"{label} (job {job['id']}, {job['status']})"


def outcome(job: dict[str, Any], what: str) -> dict[str, Any]:
    """The result of a finished job, or a one-line CliError (exit 1) with its error."""
    if job["status"] == "completed":
        return job["result"] or {}
    error = (job["last_error"] or job["status"]).strip().splitlines()
    raise CliError(f"{what} failed (job {job['id']}, {job['status']}): {error[0]}")
