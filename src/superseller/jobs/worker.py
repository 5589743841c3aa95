"""The worker: claims due jobs in batches and runs their handlers.

The worker runs an asyncio loop. Async handlers run as tasks on it; sync
handlers run in a pool of `concurrency` daemon threads. Database work (claim,
finish, heartbeat, rescue) runs in a small thread pool, one call per *batch*
of jobs, so the per-job cost stays small:

- the claim loop takes as many due jobs as there are free slots, rescues jobs
  of vanished workers now and then, and sleeps until woken (LISTEN/NOTIFY on
  PostgreSQL, short polling on SQLite) or a slot frees up;
- a completer writes finished attempts back in batches (job row + job_logs row);
- a heart-beater keeps running jobs alive and relays cancel requests.

SIGTERM/SIGINT stop claiming and give in-flight jobs `shutdown_grace_s` to end;
what did not end is put back. A second signal skips the grace period.

The database may go away at any time (an outage, a restart, a held SQLite write
lock): every call is watched (`DatabaseWatch`), a failed one is retried with capped
back-off, ended attempts are held until they can be recorded, and running jobs keep
running. Nothing but a stop request ends the loop. A job whose handler finished keeps
its heartbeat until its outcome is written, and no worker declares others' jobs lost
until the database has answered promptly for a whole rescue period (their heartbeats
were stuck behind the same outage). An attempt that ended because its own database
connection was lost is given back, not counted (`_give_back`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine

from superseller.db.connection_errors import connection_lost
from superseller.jobs.backoff import retry_delay
from superseller.jobs.clock import Clock, SystemClock
from superseller.jobs.context import JobContext
from superseller.jobs.dbwatch import DB_ERRORS, DatabaseWatch, one_line
from superseller.jobs.errors import (
    InvalidPayload,
    JobCancelled,
    JobTimeout,
    PermanentJobError,
    UnknownJobType,
    error_text,
)
from superseller.jobs.listener import Listener
from superseller.jobs.pause import PauseFlag
from superseller.jobs.registry import Registry
from superseller.jobs.store import DISCONNECTED, ClaimedJob, JobStore, Outcome
from superseller.jobs.threads import DaemonThreadPool

log = logging.getLogger("superseller.jobs.worker")
runs_log = logging.getLogger("superseller.jobs.runs")  # one line per attempt


@dataclass
class WorkerOptions:
    concurrency: int = 4
    queues: list[str] | None = None
    burst: bool = False
    batch_size: int = 100
    heartbeat_s: float = 5.0
    rescue_after_s: float = 30.0
    poll_s: float = 1.0  # PostgreSQL: NOTIFY wakes an idle worker, this is the fallback
    sqlite_poll_s: float = 0.2  # SQLite has no NOTIFY: it polls at least this often
    retry_base_s: float = 10.0
    retry_cap_s: float = 3600.0
    shutdown_grace_s: float = 30.0
    listen: bool = True
    db_retry_cap_s: float = 1.0  # longest wait between tries while the database is away
    # > 0: no tenant holds more running jobs than this across every worker (JobStore).
    tenant_max_running: int = 0
    # An attempt whose database connection was lost is given back (not counted) at most
    # this many times in a row; the next such attempt counts as failed (0: always counts).
    max_db_interruptions: int = 5

    @classmethod
    def from_settings(cls, settings, **overrides) -> WorkerOptions:
        opts = cls(
            heartbeat_s=settings.job_heartbeat_s,
            rescue_after_s=settings.job_rescue_after_s,
            poll_s=settings.job_poll_s,
            sqlite_poll_s=settings.job_sqlite_poll_s,
            retry_base_s=settings.job_retry_base_s,
            retry_cap_s=settings.job_retry_cap_s,
            shutdown_grace_s=settings.job_shutdown_grace_s,
            tenant_max_running=settings.job_tenant_max_running,
            max_db_interruptions=settings.job_max_db_interruptions,
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(opts, key, value)
        return opts


@dataclass(slots=True)
class _Running:
    job: ClaimedJob
    ctx: JobContext
    started_mono: float
    task: asyncio.Task | None = None
    finalized: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    timer: asyncio.TimerHandle | None = None  # an async handler's time-out
    timed_out: bool = False

    def finalize(self) -> bool:
        """Claim the right to record this attempt's end; only the first caller gets it
        (the event loop and the heart-beat thread may race for it)."""
        with self.lock:
            if self.finalized:
                return False
            self.finalized = True
            return True


class Worker:
    def __init__(
        self,
        engine: Engine,
        registry: Registry,
        options: WorkerOptions | None = None,
        clock: Clock | None = None,
        worker_id: str | None = None,
    ):
        self.engine = engine
        self.registry = registry
        self.opts = options or WorkerOptions()
        if self.opts.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.clock = clock or SystemClock()
        self.store = JobStore(
            engine, self.clock, self.opts.tenant_max_running, self.opts.max_db_interruptions
        )
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.processed = 0
        self.idle_waits = 0  # times the loop went to sleep with nothing to do
        self._inflight: dict[int, _Running] = {}
        self._outcomes: list[Outcome] = []  # ended attempts not yet recorded
        self._stop_requested = threading.Event()
        self._hurry = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: Listener | None = None
        self._loggers: dict[str, logging.Logger] = {}
        self._heartbeat_stop = threading.Event()
        self._min_claim = max(1, min(self.opts.batch_size, self.opts.concurrency) // 2)
        self.backend = self.store.backend
        self._lanes = 2 if self.backend.concurrent_writers else 1  # round trips in flight
        self._exchanges: set[asyncio.Task] = set()
        self._reserved = 0  # slots promised to claims in flight
        self._drained = False  # the last claim found fewer due jobs than it asked for
        self._pause = PauseFlag(engine)
        # A call slower than a quarter of the rescue period counts as a stall: shorter
        # ones cannot have made anybody's heartbeat look lost.
        self.watch = DatabaseWatch(
            log, cap_s=self.opts.db_retry_cap_s, slow_s=self.opts.rescue_after_s / 4
        )
        self._retry_at = 0.0  # monotonic: no database call before this (back-off)
        self._unrecorded: dict[int, ClaimedJob] = {}  # ended, outcome not yet written

    # -- lifecycle -----------------------------------------------------------
    def stop(self, hurry: bool = False) -> None:
        """Ask the worker to stop (what SIGTERM does); `hurry` skips the grace period.
        Safe to call from any thread or a signal handler."""
        if self._stop_requested.is_set():
            hurry = True
        self._stop_requested.set()
        if hurry:
            self._hurry.set()
        self._poke()

    def _poke(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._woken)
            except RuntimeError:  # loop closed meanwhile
                pass

    def run(self) -> int:
        """Run until stopped (or, in burst mode, until nothing is due). Returns an exit code."""
        restore = self._install_signals()
        try:
            asyncio.run(self._main())
        finally:
            restore()
        log.info("worker %s stopped after %d jobs", self.worker_id, self.processed)
        return 0

    def _install_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
        for sig in previous:
            signal.signal(sig, lambda *_: self.stop())

        def restore():
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._handlers = DaemonThreadPool(self.opts.concurrency, "job")
        self._db = ThreadPoolExecutor(4, thread_name_prefix="db")
        if self.opts.listen:
            self._listener = self.backend.listener(
                self.engine, self.opts.queues, self._poke, self.watch
            )
            if self._listener is not None:
                self._listener.start()
        log.info("worker %s started (concurrency=%d)", self.worker_id, self.opts.concurrency)
        heartbeater = threading.Thread(target=self._heartbeater, name="heartbeat", daemon=True)
        heartbeater.start()
        try:
            while not self._stop_requested.is_set():
                try:
                    await self._claim_loop()
                except Exception:  # a bug, not the database: log it, go on after a pause
                    log.exception("worker loop failed; going on in 1 s")
                    self._retry_at = time.monotonic() + 1.0
                    continue
                if self.opts.burst:
                    break
        finally:
            await self._shutdown()

    def _woken(self) -> None:
        """A notification (new jobs) or a stop request, on the loop's thread."""
        self._drained = False
        self._wake.set()

    async def _in_db(self, fn, *args):
        return await self._loop.run_in_executor(self._db, self._watched, fn, *args)

    def _watched(self, fn, *args):
        with self.watch.call():
            return fn(*args)

    def _back_off(self, exc: BaseException) -> None:
        """A database call failed: no new one before the back-off has passed."""
        delay = self.watch.retry_delay()
        if not isinstance(exc, DB_ERRORS):
            log.error("unexpected error in a database call; retrying", exc_info=exc)
            delay = 1.0
        self._retry_at = max(self._retry_at, time.monotonic() + delay)

    # -- claiming ------------------------------------------------------------
    async def _claim_loop(self) -> None:
        # Without notifications, an idle worker polls at the shorter interval.
        poll = self.opts.poll_s
        if not self.backend.listens:
            poll = min(poll, self.opts.sqlite_poll_s)
        rescue_every = max(self.opts.rescue_after_s / 2, 0.05)
        next_rescue = 0.0
        while not self._stop_requested.is_set():
            self._wake.clear()
            can_claim = False
            if time.monotonic() >= self._retry_at:
                if time.monotonic() >= next_rescue:
                    await self._rescue()
                    next_rescue = time.monotonic() + rescue_every
                can_claim = await self._can_claim()
                if time.monotonic() >= self._retry_at:
                    self._launch_exchanges(can_claim)
            waiting = self._retry_at - time.monotonic()
            if not (self._exchanges or self._inflight or self._outcomes) and waiting <= 0:
                if self.opts.burst and (self._drained or not can_claim):
                    return
                self.idle_waits += 1
            # Woken by an ended job, a returned round trip, a notification or a stop.
            try:
                await asyncio.wait_for(self._wake.wait(), waiting if waiting > 0 else poll)
            except TimeoutError:
                self._drained = False  # poll again

    async def _can_claim(self) -> bool:
        """Not while paused (record what finishes, claim nothing), while every queue it
        serves is paused, or while the pause state cannot be read. The paused queues
        are left out of its claims (`_paused_queues`)."""
        if not self._pause.stale:
            return self._claimable()
        was, was_queues = self._pause.last, self._pause.queues
        try:
            paused = await self._in_db(lambda: self._pause.paused)
        except Exception as exc:  # noqa: BLE001 - retried with back-off
            self._back_off(exc)
            return False
        if paused != was:
            log.info(
                "worker %s %s",
                self.worker_id,
                "sees the engine paused: claiming nothing until resumed"
                if paused
                else "sees the engine resumed: claiming again",
            )
        queues = self._pause.queues
        if queues != was_queues:
            log.info(
                "worker %s sees paused queues: %s",
                self.worker_id,
                ", ".join(sorted(queues)) or "none",
            )
        if (paused, queues) != (was, was_queues):
            self._drained = False  # a resumed queue may hold due jobs: look again
        return self._claimable()

    def _claimable(self) -> bool:
        if self._pause.last:
            return False
        mine = self.opts.queues
        return not mine or any(q not in self._pause.queues for q in mine)

    @property
    def _paused_queues(self) -> list[str] | None:
        """The queues to leave out of a claim (None: none paused, the plain claim)."""
        return sorted(self._pause.queues) or None

    def _free_slots(self) -> int:
        return self.opts.concurrency - len(self._inflight) - self._reserved

    def _launch_exchanges(self, can_claim: bool) -> None:
        """Start round trips (record finished attempts, claim more) as long as they are
        worthwhile. On PostgreSQL two run at once on two connections, so the database
        works on one batch while this loop runs the jobs of another (a single round trip
        at a time left both sides idle half the time). A second one starts only for a
        worthwhile batch, or batches would shrink to a job or two each."""
        while len(self._exchanges) < self._lanes:
            limit = min(self._free_slots(), self.opts.batch_size) if can_claim else 0
            # Claim in worthwhile batches: wait for half a batch of free slots
            # unless nothing runs (one round trip per job would cap throughput).
            if limit < self._min_claim and (self._inflight or self._reserved):
                limit = 0
            if self._drained:
                # The queue looked empty: claim again only along with outcomes to
                # record, until a notification or the poll interval says otherwise.
                limit = limit if self._outcomes else 0
            worthwhile = self._min_claim
            if self._exchanges and limit < worthwhile and len(self._outcomes) < worthwhile:
                return  # a second round trip only for a worthwhile batch
            if not self._outcomes and limit <= 0:
                return
            batch, self._outcomes = self._outcomes, []
            self._reserved += limit
            task = asyncio.create_task(self._exchange(batch, limit))
            self._exchanges.add(task)
            task.add_done_callback(self._exchanges.discard)

    async def _exchange(self, batch: list[Outcome], limit: int) -> None:
        """Record finished attempts and claim up to `limit` jobs: one round trip."""
        try:
            try:
                applied, claimed = await self._in_db(
                    self.store.finish_and_claim,
                    self.worker_id,
                    batch,
                    limit,
                    self.opts.queues,
                    self._paused_queues if limit else None,
                )
            except Exception as exc:  # noqa: BLE001 - retried with back-off
                # Never drop an outcome: keep it for the next round trip.
                self._outcomes = batch + self._outcomes
                self._back_off(exc)
                return
            for o in batch:
                self._unrecorded.pop(o.job.id, None)
            self.processed += len(applied)
            if limit and len(claimed) < limit:
                self._drained = True
            elif claimed:
                self._drained = False
            for job in claimed:
                self._start(job)
        finally:
            self._reserved -= limit
            self._wake.set()

    async def _rescue(self) -> None:
        grace = self.opts.rescue_after_s
        if self.watch.quiet_for() < grace:
            return  # others' heartbeats may have been stuck behind the same outage
        try:
            rescued = await self._in_db(
                self.store.rescue,
                grace,
                self.registry.logged_as,
                self.worker_id,
                lambda: self.watch.quiet_for() >= grace,  # checked once the lock is held
                lambda: set(self._inflight) | set(self._unrecorded),
            )
        except Exception as exc:  # noqa: BLE001 - retried with back-off
            self._back_off(exc)
            return
        if rescued:
            log.warning("rescued %d job(s) of vanished workers: %s", len(rescued), rescued)

    def _start(self, job: ClaimedJob) -> None:
        logger = self._loggers.get(job.type)
        if logger is None:
            logger = self._loggers[job.type] = logging.getLogger(f"superseller.job.{job.type}")
        ctx = JobContext(
            job_id=job.id,
            job_type=job.type,
            tenant_id=job.tenant_id,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            payload=job.payload,
            raw_payload=job.payload,
            scheduled_for=job.scheduled_for,
            schedule_id=job.schedule_id,
            engine=self.engine,
            clock=self.clock,
            base_logger=logger,
        )
        running = _Running(job, ctx, time.monotonic())
        self._inflight[job.id] = running
        jt = self.registry.find(job.type)
        if jt is None or not jt.is_async or (job.timeout_s is not None and job.timeout_s <= 0):
            running.task = asyncio.create_task(self._run(running))
            return
        # An async handler runs in a task of its own (asyncio.current_task() is the job's)
        # through one small coroutine: no wait_for per job; a time-out is a timer that
        # cancels the task (as wait_for did: a handler that swallows the cancellation
        # keeps its result).
        try:
            ctx.payload = self.registry.parse_payload(job.type, job.payload)
            coro = jt.handler(ctx)
        except Exception as exc:  # noqa: BLE001 - a bad payload fails the attempt
            self._ended(running, self._outcome_of_error(running, exc))
            return
        running.task = self._loop.create_task(self._run_async(running, coro))
        if job.timeout_s is not None:
            running.timer = self._loop.call_later(job.timeout_s, self._time_out, running)

    # -- executing -----------------------------------------------------------
    def _time_out(self, running: _Running) -> None:
        running.timed_out = True
        if running.task is not None:
            running.task.cancel()

    async def _run_async(self, running: _Running, coro) -> None:
        outcome: Outcome | None = None
        try:
            result = await coro
        except asyncio.CancelledError:
            if running.timed_out:
                outcome = self._outcome_of_error(running, TimeoutError())
            # else: abandoned on shutdown (release() records it)
        except Exception as exc:  # noqa: BLE001 - any handler error is a failed attempt
            outcome = self._outcome_of_error(running, exc)
        else:
            try:
                outcome = self._end(running, "completed", "success", result=_check_result(result))
            except Exception as exc:  # noqa: BLE001 - a bad result is a failed attempt
                outcome = self._outcome_of_error(running, exc)
        finally:
            if running.timer is not None:
                running.timer.cancel()
            self._ended(running, outcome)

    def _ended(self, running: _Running, outcome: Outcome | None) -> None:
        try:
            if outcome is not None and running.finalize():
                self._push(outcome)
        finally:
            self._inflight.pop(running.job.id, None)
            self._wake.set()

    async def _run(self, running: _Running) -> None:
        outcome = None
        try:
            outcome = await self._execute(running)
        finally:
            self._ended(running, outcome)

    async def _execute(self, running: _Running) -> Outcome | None:
        job, ctx = running.job, running.ctx
        try:
            jt = self.registry.get(job.type)
            ctx.payload = self.registry.parse_payload(job.type, job.payload)
            if jt.is_async:
                result = await asyncio.wait_for(jt.handler(ctx), job.timeout_s)
            else:
                result = await self._run_sync(running, jt.handler)
            return self._end(running, "completed", "success", result=_check_result(result))
        except Exception as exc:  # noqa: BLE001 - any handler error is a failed attempt
            return self._outcome_of_error(running, exc)
        except asyncio.CancelledError:
            return None  # abandoned on shutdown (release() records it)

    def _outcome_of_error(self, running: _Running, exc: BaseException) -> Outcome | None:
        """What an attempt that raised `exc` records (None: nothing, it was abandoned or
        its end is recorded elsewhere)."""
        job, ctx = running.job, running.ctx
        if isinstance(exc, JobCancelled):
            if self._stop_requested.is_set():
                return None  # shutdown asked it to stop: the job is put back, not cancelled
            return self._end(running, "cancelled", "cancelled", error="cancelled on request")
        if isinstance(exc, JobTimeout | TimeoutError):
            ctx.mark_timed_out()
            return self._failure(running, _timeout_error(job), "timeout")
        if isinstance(exc, asyncio.CancelledError | _AlreadyRecorded):
            return None  # abandoned on shutdown (release() records it), or timed out
        if isinstance(exc, PermanentJobError):
            return self._failure(running, exc, "error", permanent=True)
        if not isinstance(exc, Exception):
            return None  # KeyboardInterrupt, SystemExit: the loop itself is ending
        permanent = isinstance(exc, InvalidPayload | UnknownJobType)
        # The whole story for whoever debugs (the engines hide bound parameters).
        ctx.logger.debug("attempt raised", exc_info=exc)
        if not permanent and connection_lost(exc):
            ctx.logger.warning("database connection lost; attempt given back: %s", one_line(exc))
            return self._give_back(running, exc)
        ctx.logger.warning("attempt failed: %s", one_line(exc))
        return self._failure(running, exc, "error", permanent=permanent)

    async def _run_sync(self, running: _Running, handler):
        """Run a sync handler in a thread. On time-out the attempt ends at once, but
        the slot stays taken until the thread returns (it cannot be killed)."""
        future = self._loop.run_in_executor(self._handlers, handler, running.ctx)
        # A stop in a hurry may cancel the waiting task while the thread runs on: what
        # the thread ends with then has no reader (asyncio would print "Future exception
        # was never retrieved" at exit); the attempt was given back or recorded already.
        future.add_done_callback(_read_outcome)
        try:
            return await asyncio.wait_for(asyncio.shield(future), running.job.timeout_s)
        except TimeoutError:
            running.ctx.mark_timed_out()
            if running.finalize():
                self._push(self._failure(running, _timeout_error(running.job), "timeout"))
            try:
                await future
            except BaseException:  # noqa: BLE001 - the attempt is already recorded
                pass
            raise _AlreadyRecorded from None

    def _failure(
        self, running: _Running, exc: BaseException, log_status: str, permanent: bool = False
    ) -> Outcome:
        job = running.job
        error = error_text(exc)
        if permanent or job.attempt >= job.max_attempts:
            return self._end(running, "failed", log_status, error=error)
        outcome = self._end(running, "pending", log_status, error=error)
        delay = retry_delay(job.attempt, self._retry_base(job), self.opts.retry_cap_s)
        outcome.retry_at = outcome.completed_at + timedelta(seconds=delay)
        return outcome

    def _retry_base(self, job: ClaimedJob) -> float:
        jt = self.registry.find(job.type)
        return jt.retry_base_s if jt and jt.retry_base_s is not None else self.opts.retry_base_s

    def _give_back(self, running: _Running, exc: BaseException) -> Outcome:
        """The attempt ended because the database connection was lost (an outage, a
        restart, a terminated backend): nothing says the job is at fault. It goes back to
        pending without counting the attempt, due after the type's first retry delay
        (jittered: the jobs one outage interrupted do not all come back at once), and
        its job_logs row says `disconnected`. The store records the counted failure
        (`fallback`) instead when the job was given back too often in a row."""
        fallback = self._failure(running, exc, "error")
        cap = self.opts.max_db_interruptions
        if cap <= 0:
            return fallback
        cause = error_text(exc)
        fallback.error = (
            f"database connection lost more than {cap} times in a row; attempt counted: {cause}"
        )
        error = f"database connection lost; attempt not counted: {cause}"
        outcome = self._end(running, "pending", DISCONNECTED, error=error)
        delay = retry_delay(1, self._retry_base(running.job), self.opts.retry_cap_s)
        outcome.retry_at = outcome.completed_at + timedelta(seconds=delay)
        outcome.counted = False
        outcome.fallback = fallback
        return outcome

    def _end(
        self,
        running: _Running,
        status: str,
        log_status: str,
        result: dict | None = None,
        error: str | None = None,
    ) -> Outcome:
        return Outcome(
            job=running.job,
            status=status,
            log_status=log_status,
            log_type=self.registry.logged_as(running.job.type),
            completed_at=self.clock.now(),
            duration_ms=int((time.monotonic() - running.started_mono) * 1000),
            records=running.ctx.records_processed,
            result=result,
            error=error,
        )

    # -- completing ----------------------------------------------------------
    def _push(self, outcome: Outcome) -> None:
        """Queue an attempt's end; the claim loop records it on its next round trip."""
        level = logging.INFO if outcome.log_status == "success" else logging.WARNING
        if runs_log.isEnabledFor(level):
            job = outcome.job
            runs_log.log(
                level,
                "job %s %s %s in %d ms%s",
                job.id,
                job.type,
                outcome.log_status,
                outcome.duration_ms,
                f": {outcome.error}" if outcome.error else "",
                extra={
                    "job_id": job.id,
                    "job_type": job.type,
                    "tenant_id": job.tenant_id,
                    "attempt": job.attempt,
                    "duration_ms": outcome.duration_ms,
                    "status": outcome.log_status,
                },
            )
        self._unrecorded[outcome.job.id] = outcome.job
        self._outcomes.append(outcome)
        self._wake.set()

    # -- heartbeats and cancellation ----------------------------------------
    def _heartbeater(self) -> None:
        """A thread of its own: a handler that hogs the event loop (CPU work, a blocking
        call) must not silence the heartbeat, or its job would be 'rescued' mid-run."""
        wait = self.opts.heartbeat_s
        while not self._heartbeat_stop.wait(wait):
            wait = self.opts.heartbeat_s
            running = [r for r in list(self._inflight.values()) if not r.finalized]
            # Ended attempts whose outcome is not written yet keep their heartbeat, or a
            # slow write would let another worker rescue (and re-run) a finished job.
            ids = [r.job.id for r in running] + list(self._unrecorded)
            if not ids:
                continue
            try:
                with self.watch.call():
                    owned, cancels = self.store.heartbeat(self.worker_id, ids)
            except Exception as exc:  # noqa: BLE001 - the next beat retries
                if not isinstance(exc, DB_ERRORS):
                    log.error("heartbeat failed", exc_info=exc)
                wait = min(wait, self.watch.retry_delay())
                continue
            for r in running:
                if r.job.id in cancels:
                    r.ctx.request_cancel()
                elif r.job.id not in owned and r.finalize():
                    # Rescued by another process (we looked dead): drop our result.
                    r.ctx.logger.warning("job was taken from this worker; abandoning it")
                    r.ctx.request_cancel()

    # -- shutdown ------------------------------------------------------------
    async def _shutdown(self) -> None:
        grace = 0 if self._hurry.is_set() else self.opts.shutdown_grace_s
        deadline = time.monotonic() + grace
        if self._exchanges:  # round trips in flight: what they claim runs (or is put back)
            await asyncio.gather(*self._exchanges)
        while self._inflight and time.monotonic() < deadline and not self._hurry.is_set():
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), min(0.1, deadline - time.monotonic()))
            except TimeoutError:
                pass
        leftovers = [r for r in self._inflight.values() if r.finalize()]
        for r in leftovers:
            r.ctx.request_cancel()
            if r.task is not None:
                r.task.cancel()
        # Record what finished before putting back what did not (while the database is
        # away, keep trying for the grace period).
        give_up = max(deadline, time.monotonic()) + (0 if self._hurry.is_set() else grace)
        while self._outcomes:
            wait = self._retry_at - time.monotonic()
            if wait > 0:
                if time.monotonic() + wait > give_up:
                    break
                await asyncio.sleep(wait)
            batch, self._outcomes = self._outcomes, []
            await self._exchange(batch, 0)
        if self._outcomes:
            log.error(
                "database unreachable: %d finished job(s) not recorded (they will be rescued "
                "and run again): %s",
                len(self._outcomes),
                [o.job.id for o in self._outcomes],
            )
        self._heartbeat_stop.set()
        if leftovers:
            try:
                released = await self._in_db(
                    self.store.release,
                    self.worker_id,
                    [r.job for r in leftovers],
                    self.registry.logged_as,
                )
                log.warning("put back %d unfinished job(s): %s", len(released), released)
            except Exception as exc:  # noqa: BLE001 - rescue gives them back later
                log.error(
                    "could not put back %d job(s), they will be rescued: %s",
                    len(leftovers),
                    one_line(exc),
                )
        if self._listener is not None:
            self._listener.stop()
        self._handlers.shutdown()
        self._db.shutdown(wait=True)


def _read_outcome(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


def _timeout_error(job: ClaimedJob) -> JobTimeout:
    if job.timeout_s is None:  # the handler's own time-out (a TimeoutError it raised)
        return JobTimeout("timed out")
    return JobTimeout(f"timed out after {job.timeout_s:g}s")


class _AlreadyRecorded(Exception):
    """The attempt's end was recorded elsewhere (a sync handler's time-out)."""


def _check_result(result) -> dict | None:
    if result is None:
        return None
    if not isinstance(result, dict):
        raise TypeError(f"handler returned {type(result).__name__}, expected a dict or None")
    json.dumps(result)  # must be storable
    return result
