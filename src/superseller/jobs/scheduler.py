"""The scheduler: turns due cron ticks into jobs, exactly once per tick.

Exactly-once comes from the `schedule_occurrences` ledger and its unique
(schedule_id, fire_time) constraint, not from leader election: the ledger row
and the job are written in one transaction, so any number of scheduler
processes, or one that lost its lease, can never enqueue a tick twice. On
PostgreSQL a scheduler also skips schedules another one is processing
(`FOR UPDATE SKIP LOCKED`), which only saves work.

Every tick is recorded: `enqueued`, `skipped` (overlap policy), `missed`
(misfire policy after downtime) or `backfilled`.

`run_forever` rides out database outages: each failed pass is retried with capped
back-off (one log line when the database goes, one when it is back), and ticks that
fell due meanwhile meet the misfire policy on the first pass that gets through.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, select, update

from superseller.db.schema import job_schedules, jobs, schedule_occurrences
from superseller.jobs import audit, pause
from superseller.jobs.backend import backend_for
from superseller.jobs.clock import Clock, SystemClock, sleep
from superseller.jobs.cron import InvalidSchedule, fire_times_between, next_fire, zone
from superseller.jobs.dbwatch import DB_ERRORS, DatabaseWatch
from superseller.jobs.queue import JobSpec, Queue
from superseller.jobs.registry import Registry
from superseller.jobs.schedules import ScheduleNotFound, Schedules

log = logging.getLogger("superseller.jobs.scheduler")

MAX_TICKS_PER_PASS = 10_000
BACKFILL_MODES = ("missing", "failed", "all")


@dataclass
class PassResult:
    enqueued: int = 0
    skipped: int = 0
    missed: int = 0

    def add(self, other: PassResult) -> None:
        self.enqueued += other.enqueued
        self.skipped += other.skipped
        self.missed += other.missed


@dataclass
class Scheduler:
    engine: Engine
    registry: Registry
    clock: Clock = field(default_factory=SystemClock)

    def __post_init__(self) -> None:
        self.queue = Queue(self.engine, self.registry, self.clock)
        self.schedules = Schedules(self.engine, self.registry, self.clock)
        self.backend = backend_for(self.engine)
        self._stop = threading.Event()
        self.watch = DatabaseWatch(log)

    # -- the pass ------------------------------------------------------------
    def run_pass(self) -> PassResult:
        """Process every enabled schedule with a due tick (none while the engine is paused:
        its ticks stay due and meet the misfire policy on resume)."""
        if pause.state(self.engine)["paused"]:
            return PassResult()
        now = self.clock.now()
        with self.engine.connect() as conn:
            due = (
                conn.execute(
                    select(job_schedules.c.id)
                    .where(job_schedules.c.enabled, job_schedules.c.next_run_at <= now)
                    .order_by(job_schedules.c.next_run_at)
                )
                .scalars()
                .all()
            )
        total = PassResult()
        for schedule_id in due:
            total.add(self._process(schedule_id))
        return total

    def run_forever(self, interval_s: float = 15.0) -> None:
        """Run passes until `stop()`; sleeps until the next due tick, at most `interval_s`."""
        while not self._stop.is_set():
            try:
                with self.watch.call():
                    result = self.run_pass()
                    delay = self._sleep_time(interval_s)
                if result.enqueued or result.missed or result.skipped:
                    log.info("scheduler pass: %s", result)
            except DB_ERRORS:
                delay = self.watch.retry_delay()  # logged once per outage by the watch
            except Exception:
                log.exception("scheduler pass failed; retrying")
                delay = min(interval_s, 5.0)
            sleep(self.clock, self._stop, delay)  # a simulated clock's jump ends it early

    def stop(self) -> None:
        self._stop.set()

    def _sleep_time(self, interval_s: float) -> float:
        with self.backend.reader(self.engine) as conn:
            nxt = conn.execute(
                select(job_schedules.c.next_run_at)
                .where(job_schedules.c.enabled)
                .order_by(job_schedules.c.next_run_at)
                .limit(1)
            ).scalar()
        if nxt is None:
            return interval_s
        return min(interval_s, max(0.05, (nxt - self.clock.now()).total_seconds()))

    def _process(self, schedule_id: int) -> PassResult:
        result = PassResult()
        with self.engine.begin() as conn:
            now = self.clock.now()
            stmt = select(job_schedules).where(
                job_schedules.c.id == schedule_id,
                job_schedules.c.enabled,
                job_schedules.c.next_run_at <= now,
            )
            sched = conn.execute(self.backend.skip_locked(stmt)).first()
            if sched is None:
                return result  # another scheduler has it, or it is no longer due
            ticks = fire_times_between(
                sched.cron, sched.timezone, sched.next_run_at, now, limit=MAX_TICKS_PER_PASS
            )
            # A full batch may not reach `now`: more ticks follow in the next pass.
            more = len(ticks) >= MAX_TICKS_PER_PASS
            busy_before = self._busy(conn, sched)
            last_enqueued = None
            for tick, action, reason in self._plan(sched, ticks, now, more):
                if action == "enqueue" and busy_before and self._overlaps(sched, busy_before):
                    action, reason = "skipped", f"previous run still {busy_before}"
                occurrence = self._record(conn, sched.id, tick, action, reason, now)
                if occurrence is None:
                    continue  # this tick was already handled by another scheduler
                if action == "enqueue":
                    job_id = self._enqueue(conn, sched, tick)
                    conn.execute(
                        update(schedule_occurrences)
                        .where(schedule_occurrences.c.id == occurrence)
                        .values(job_id=job_id)
                    )
                    last_enqueued = tick
                    result.enqueued += 1
                elif action == "skipped":
                    result.skipped += 1
                else:
                    result.missed += 1
            audit.scheduler_ticks(conn, sched.id, sched.name, now)  # who: the scheduler
            after = ticks[-1] if ticks else now
            values: dict[str, Any] = {"next_run_at": next_fire(sched.cron, sched.timezone, after)}
            if last_enqueued is not None:
                values["last_fired_at"] = last_enqueued
            conn.execute(
                update(job_schedules).where(job_schedules.c.id == sched.id).values(**values)
            )
        return result

    def _plan(self, sched, ticks: list[datetime], now: datetime, more: bool = False):
        """Which ticks to enqueue and which were missed, per the misfire policy.

        `more`: later ticks up to `now` did not fit in this batch, so none of these is
        the most recent one that `latest` runs (it comes in a later batch)."""
        grace = timedelta(seconds=sched.misfire_grace_s)
        window = timedelta(seconds=sched.misfire_window_s)
        late = [t for t in ticks if now - t > grace]
        on_time = [t for t in ticks if now - t <= grace]
        policy = sched.misfire_policy
        why = f"scheduler was not running (misfire policy {policy})"
        for tick in late:
            if policy == "all" and now - tick <= window:
                yield tick, "enqueue", "caught up after downtime"
            elif policy == "latest" and tick == late[-1] and not on_time and not more:
                yield tick, "enqueue", "most recent missed tick"
            else:
                yield tick, "missed", why
        for tick in on_time:
            yield tick, "enqueue", None

    def _busy(self, conn: Connection, sched) -> str | None:
        """'pending' or 'running' if an earlier job of this schedule is unfinished."""
        states = set(
            conn.execute(
                select(jobs.c.status).where(
                    jobs.c.schedule_id == sched.id, jobs.c.status.in_(("pending", "running"))
                )
            ).scalars()
        )
        return "pending" if "pending" in states else ("running" if states else None)

    @staticmethod
    def _overlaps(sched, busy: str) -> bool:
        if sched.overlap_policy == "skip":
            return True
        if sched.overlap_policy == "queue_one":
            return busy == "pending"  # one may wait behind the running one
        return False

    def _record(
        self,
        conn: Connection,
        schedule_id: int,
        tick: datetime,
        action: str,
        reason: str | None,
        now: datetime,
    ) -> int | None:
        outcome = "enqueued" if action == "enqueue" else action
        stmt = (
            self.backend.insert_on_conflict(schedule_occurrences)
            .values(
                schedule_id=schedule_id,
                fire_time=tick,
                outcome=outcome,
                reason=reason,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["schedule_id", "fire_time"])
            .returning(schedule_occurrences.c.id)
        )
        return conn.execute(stmt).scalar()

    def _enqueue(
        self,
        conn: Connection,
        sched,
        tick: datetime,
        lock_key: str | None = None,
        priority: int | None = None,
    ) -> int:
        spec = JobSpec(
            type=sched.job_type,
            payload=sched.payload,
            queue=sched.queue,
            priority=priority if priority is not None else (sched.priority or 0),
            max_attempts=sched.max_attempts,
            schedule_id=sched.id,
            scheduled_for=tick,
            lock_key=lock_key,
        )
        return self.queue.enqueue_many([spec], conn=conn)[0].id

    # -- operator actions ----------------------------------------------------
    def run_now(self, name: str) -> int:
        """Enqueue one run now (recorded in the ledger as a tick at this instant)."""
        sched = self._row(name)
        now = self.clock.now()
        with self.engine.begin() as conn:
            occurrence = self._record(conn, sched.id, now, "enqueue", "run now", now)
            job_id = self._enqueue(conn, sched, now)
            conn.execute(
                update(schedule_occurrences)
                .where(schedule_occurrences.c.id == occurrence)
                .values(job_id=job_id)
            )
        return job_id

    def backfill(
        self,
        name: str,
        start: date,
        end: date,
        mode: str = "missing",
        concurrency: int = 2,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Enqueue one job per tick from `start` to `end` (local days, inclusive).

        mode `missing`: ticks with no job (never recorded, missed or skipped);
        `failed`: ticks whose job failed or was cancelled; `all`: every tick.
        At most `concurrency` of these jobs run at once (unless the job type
        serialises itself with its own lock key).
        """
        if mode not in BACKFILL_MODES:
            raise InvalidSchedule(f"backfill mode must be one of {', '.join(BACKFILL_MODES)}")
        if end < start:
            raise InvalidSchedule("backfill range: 'from' is after 'to'")
        if concurrency < 1:
            raise InvalidSchedule("backfill concurrency must be at least 1")
        sched = self._row(name)
        tz = zone(sched.timezone)
        first = datetime.combine(start, time.min, tz)
        last = datetime.combine(end + timedelta(days=1), time.min, tz) - timedelta(microseconds=1)
        ticks = fire_times_between(sched.cron, sched.timezone, first, last, limit=limit + 1)
        if len(ticks) > limit:
            raise InvalidSchedule(f"backfill range holds more than {limit} ticks; narrow it")
        own_lock = self.registry.get(sched.job_type).lock_key is not None
        done: list[dict[str, Any]] = []
        with self.engine.begin() as conn:
            known = {
                r.fire_time: r
                for r in conn.execute(
                    select(
                        schedule_occurrences.c.id,
                        schedule_occurrences.c.fire_time,
                        schedule_occurrences.c.outcome,
                        jobs.c.status,
                    )
                    .select_from(
                        schedule_occurrences.outerjoin(
                            jobs, jobs.c.id == schedule_occurrences.c.job_id
                        )
                    )
                    .where(
                        schedule_occurrences.c.schedule_id == sched.id,
                        schedule_occurrences.c.fire_time.between(first, last),
                    )
                )
            }
            now = self.clock.now()
            for tick in ticks:
                row = known.get(tick)
                if (
                    mode == "missing"
                    and row is not None
                    and row.outcome not in ("missed", "skipped")
                ):
                    continue
                if mode == "failed" and (row is None or row.status not in ("failed", "cancelled")):
                    continue
                lock = None if own_lock else f"backfill:{sched.name}:{len(done) % concurrency}"
                # Older ticks first: a lower priority value would run them later.
                job_id = self._enqueue(
                    conn, sched, tick, lock_key=lock, priority=(sched.priority or 0) - 1
                )
                reason = f"backfill ({mode})"
                if row is None:
                    conn.execute(
                        insert(schedule_occurrences).values(
                            schedule_id=sched.id,
                            fire_time=tick,
                            outcome="backfilled",
                            reason=reason,
                            job_id=job_id,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                else:
                    conn.execute(
                        update(schedule_occurrences)
                        .where(schedule_occurrences.c.id == row.id)
                        .values(outcome="backfilled", reason=reason, job_id=job_id, updated_at=now)
                    )
                done.append({"fireTime": tick.isoformat(), "jobId": job_id})
        return done

    # -- reading -------------------------------------------------------------
    def occurrences(self, name: str, limit: int = 50) -> list[dict[str, Any]]:
        sched = self._row(name)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    schedule_occurrences.c.fire_time,
                    schedule_occurrences.c.outcome,
                    schedule_occurrences.c.reason,
                    schedule_occurrences.c.job_id,
                    jobs.c.status.label("job_status"),
                )
                .select_from(
                    schedule_occurrences.outerjoin(jobs, jobs.c.id == schedule_occurrences.c.job_id)
                )
                .where(schedule_occurrences.c.schedule_id == sched.id)
                .order_by(schedule_occurrences.c.fire_time.desc())
                .limit(limit)
            ).all()
        return [{**r._mapping, "fire_time": r.fire_time.isoformat()} for r in rows]

    def lateness(self, name_or_row) -> dict[str, Any] | None:
        """Whether the latest tick whose deadline has passed lacks a successful job.

        None when the schedule has no deadline."""
        sched = self._row(name_or_row) if isinstance(name_or_row, str) else name_or_row
        if not sched.deadline_s:
            return None
        now = self.clock.now()
        cutoff = now - timedelta(seconds=sched.deadline_s)
        ticks = fire_times_between(sched.cron, sched.timezone, cutoff - timedelta(days=32), cutoff)
        ticks = [t for t in ticks if t >= sched.created_at]
        if not ticks:
            return {"late": False, "tick": None}
        tick = ticks[-1]
        with self.engine.connect() as conn:
            ok = conn.execute(
                select(jobs.c.id)
                .where(
                    and_(
                        jobs.c.schedule_id == sched.id,
                        jobs.c.scheduled_for == tick,
                        jobs.c.status == "completed",
                    )
                )
                .limit(1)
            ).first()
        return {
            "late": ok is None,
            "tick": tick.isoformat(),
            "deadline": (tick + timedelta(seconds=sched.deadline_s)).isoformat(),
        }

    def _row(self, name: str):
        with self.engine.connect() as conn:
            row = conn.execute(select(job_schedules).where(job_schedules.c.name == name)).first()
        if row is None:
            raise ScheduleNotFound(name)
        return row
