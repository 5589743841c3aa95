"""Run one job now, through the real engine, from the command line, and report its outcome.

The job goes to the shared `cli` queue (one queue for every command-line run, so the
Jobs page never grows a queue per run) and the command waits on it *by id* until it
finishes, whoever runs it: a worker of a running server may take it, and when nobody
has, an in-process burst worker drains the `cli` queue. Either way the job gets its
job_logs row, retries and time-outs like any other run, and only the command's
outcome depends on which worker ran it: none.

Interrupted (Ctrl-C, SIGTERM), the command says so at once and leaves the job where a
worker runs it: the in-process worker gives back what it runs (attempt not counted), and a
job on `cli` goes to a queue its workers serve (audited `job.move`): back to the queue a
joined job was moved from, the job type's own queue for one the command created (others
may have joined it since: it holds the store's sync key). Its last line says what became
of the job; it exits 130, or 1 when the job could not be given back (the line says what
the engine's rescue will do with it).

Killed outright (SIGKILL, a dead host), the command cleans nothing up; the engine does: the
job is lent to the `cli` queue (`JobSpec.private_run`, `JobAdmin.lend_pending`) and keeps
its home (the joined job's queue, or its type's), so the rescue of the silent job sends it
home, with its home's attempts, where the workers serving that queue run it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from superseller.cli.common import CliError, console, engine, err_console, registry
from superseller.config import Settings, get_settings
from superseller.jobs import audit, pause
from superseller.jobs.admin import JobAdmin
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
    say_joined: bool = True,
    eng: Engine | None = None,
    reg: Registry | None = None,
    settings: Settings | None = None,
) -> dict:
    """Enqueue the job on the `cli` queue (a job made by hand: it belongs to its tenant and
    is audited as `cli:<OS user>`) and wait for it to finish; returns its row. With
    `unique_key`, a pending or running job holding it is joined instead (said on stderr,
    unless `say_joined` is False: the demo runs its sync's own follow-ups that way)."""
    eng, reg = eng or engine(), reg or registry()
    settings = settings or get_settings()
    spec = JobSpec(
        job_type,
        payload,
        tenant_id=tenant_id,
        queue=CLI_QUEUE,
        max_attempts=max_attempts,
        unique_key=unique_key,
        private_run=True,  # its home: its type's queue, should this process vanish
    )
    actor = audit.cli_actor()
    moved_from: list[str] = []  # the queue a joined job was moved from, once known
    workers: list[str] = []  # the ids of the in-process workers
    made: Enqueued | None = None
    said = threading.Event()

    def say() -> None:  # the first signal's line, at once: the clean-up can take seconds
        if made is not None and not said.is_set():
            said.set()
            err_console.print(
                f"interrupted: putting job {made.id} back…", highlight=False, soft_wrap=True
            )

    # The handler is in place before the job exists: a signal while it is being queued
    # waits for its id, then interrupts like any other.
    with _interrupted_once() as interrupt:
        try:
            with interrupt.deferred():
                made = enqueue_by_hand(eng, reg, spec, actor)
            if not made.created:
                joined = _run_joined_here(eng, made.id, actor, moved_from)
                if say_joined:
                    _joined(joined)
            return wait_for_job(
                eng, reg, made.id, label, settings=settings, workers=workers, on_interrupt=say
            )
        except (KeyboardInterrupt, SQLAlchemyError) as exc:
            # Ctrl-C (or SIGTERM): leave the job where a worker runs it. A signal inside the
            # driver's call can surface as a database error instead: SQLAlchemy's ping of
            # psycopg restores `autocommit` in a `finally`, on the connection the interrupt
            # left mid-statement ("can't change 'autocommit' now"), and that error replaces
            # the KeyboardInterrupt. After a signal, it is the interrupt.
            if not isinstance(exc, KeyboardInterrupt) and not interrupt.fired.is_set():
                raise
            if made is None:
                raise CliError("interrupted; no job was queued", 130) from None
            say()
            left, code = _leave_runnable(
                eng,
                made,
                actor,
                moved_from[0] if moved_from else None,
                workers,
                settings.job_rescue_after_s,
            )
            raise CliError(f"interrupted; {left}", code) from None


def _run_joined_here(
    eng: Engine, job_id: int, actor: str, moved_from: list[str] | None = None
) -> dict[str, Any]:
    """A joined job still waiting on another queue is moved to the `cli` queue, so this
    command runs it rather than wait for a worker that may not be running (the seller's
    "Atualizar dados" with no worker up). Not out of a paused queue: the pause holds.
    The queue it came from is appended to `moved_from` before the move (an interrupted
    command puts the job back there); the job keeps it as its home (`lend_pending`), where
    the engine's rescue sends it should this process vanish (SIGKILL)."""
    admin = JobAdmin(eng, actor=actor)
    job = admin.get(job_id)
    paused = {q["queue"] for q in pause.state(eng)["pausedQueues"]}
    if job["status"] == "pending" and job["queue"] != CLI_QUEUE and job["queue"] not in paused:
        if moved_from is not None:
            moved_from.append(job["queue"])
        admin.lend_pending(job_id, CLI_QUEUE)
        job = admin.get(job_id)
    return job


def _leave_runnable(
    eng: Engine,
    made: Enqueued,
    actor: str,
    moved_from: str | None,
    workers: Collection[str] = (),
    rescue_after_s: float = 30.0,
) -> tuple[str, int]:
    """After an interruption (the in-process worker, if any, has given the job back or
    run out of time), leave the job where a worker runs it: a job pending on the `cli`
    queue (which only a worker of every queue serves) goes back to the queue a joined job
    was moved from, or to its job type's own queue for a job this command created (it may
    hold the store's sync key, which "Atualizar dados", the nightly fan-out and keyed calls
    join: cancelling it would fail them). A job running on another worker, or finished,
    is left as it is. Returns what became of it, for the command's last line, and the
    exit code: 130, or 1 when the job could not be given back (`workers`: the ids of this
    command's in-process workers)."""
    # The interruption may have cut a statement short (a KeyboardInterrupt inside the
    # driver's call): that connection went back to the pool mid-query and cannot be used
    # again. Fresh connections for what follows (connections still held by the in-process
    # worker are closed when it returns them).
    eng.dispose()
    admin = JobAdmin(eng, actor=actor)
    try:
        job = admin.get(made.id)
        if job["status"] == "pending" and job["queue"] == CLI_QUEUE:
            # The home it was lent from (a joined job's queue; the type's own for one this
            # command created), not one of another command's job this one merely joined.
            home = job["home_queue"] if moved_from or made.created else None
            # A job this command created ran once by design (the command reports the
            # outcome); on a worker it gets its type's own attempts (its home's), so a
            # passing error is retried. A joined job keeps its own.
            tries = job["home_max_attempts"]
            if tries is not None:
                tries = max(tries, job["max_attempts"])
            if (
                home is not None
                and home != CLI_QUEUE
                and admin.move_pending(made.id, home, max_attempts=tries)
            ):
                how = "put back on" if moved_from else "moved to"
                return (
                    f"job {made.id} {how} queue {home}, where a worker serving it runs it",
                    130,
                )
            job = admin.get(made.id)  # taken (or finished) meanwhile: said below
    except SQLAlchemyError as exc:
        first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
        return f"job {made.id} could not be put back (database error: {first})", 1
    if job["status"] == "running" and job["worker_id"] in workers:
        # The in-process worker did not give it back in time (a held write lock, a database
        # away): the process exits with it, its heartbeat stops, and a rescue ends it or
        # gives it back (a job lent to this command: on its home queue, with its home's
        # attempts; the engine's rule, store.rescue).
        if job["cancel_requested"]:
            then = "cancel it"
        elif job["attempts"] < max(job["max_attempts"], job["home_max_attempts"] or 0):
            then = f"give it back on queue {job['home_queue'] or job['queue']}"
        else:
            then = "mark it failed (it was its last attempt)"
        return (
            f"could not put job {made.id} back in {_GIVE_BACK_S:g} s; the engine's rescue "
            f"will {then} once it has been silent {rescue_after_s:g} s",
            1,
        )
    if job["status"] == "running":
        return (
            f"job {made.id} is still running on worker {job['worker_id'] or '?'}; "
            "it will finish there",
            130,
        )
    if job["status"] in FINISHED:
        return f"job {made.id} ended meanwhile: {job['status']}", 130
    return f"job {made.id} left {job['status']} on queue {job['queue']}", 130


class _Interrupt:
    """The state of `_interrupted_once`: whether a signal came, and whether it must wait."""

    def __init__(self) -> None:
        self.fired = threading.Event()
        self.deferring = False

    @contextlib.contextmanager
    def deferred(self):
        """A signal inside this block interrupts when it ends (if it ends normally): a
        job being queued is not cut off before its id is known."""
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
        if self.fired.is_set():
            raise KeyboardInterrupt


@contextlib.contextmanager
def _interrupted_once():
    """The first Ctrl-C or SIGTERM (a service manager's stop, a cron time-out) interrupts
    (KeyboardInterrupt), so that the job is left where a worker runs it instead of the
    process vanishing mid-wait; the ones after it are ignored, so they do not cut that
    short (it takes at most the in-process worker's hurried stop and a few statements)."""
    state = _Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def interrupt(*_):
        if not state.fired.is_set():
            state.fired.set()
            if not state.deferring:
                raise KeyboardInterrupt

    held = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, interrupt) for sig in held}
    try:
        yield state
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
        f"running on worker {job['worker_id'] or '?'}"
        if job["status"] == "running"
        else "it runs here when due"
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
    workers: list[str] | None = None,
    on_interrupt: Callable[[], None] | None = None,
) -> dict:
    """Wait until job `job_id` is finished, whoever runs it; returns its row.

    With `run_here`, an in-process burst worker on the `cli` queue runs it when no
    other worker has taken it (started again whenever the job is due and unclaimed,
    e.g. after a retry's back-off or a rescue). The ids of those workers are appended to
    `workers`; `on_interrupt` is called first thing when a KeyboardInterrupt comes."""
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
                    if workers is not None:
                        workers.append(worker.worker_id)
                    thread = threading.Thread(target=worker.run, name="cli-worker", daemon=True)
                    thread.start()
                    last_start = time.monotonic()
                progress.update(task, description=_describe(label, job, worker))
                time.sleep(_POLL_S)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt) and on_interrupt is not None:
            on_interrupt()  # at once: the give-back below can take seconds
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
