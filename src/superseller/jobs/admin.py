"""Inspecting and steering jobs: list (filtered, keyset pages, capped counts), show, logs,
cancel, retry, run now, run again, and the same actions on a filtered set.
(Counts over time and run statistics: `superseller.jobs.stats`.)

Fast on millions of rows (bench/console.py): lists walk the primary key newest first,
`ix_jobs_type_id` for a type, or `ix_jobs_finished_at` when sorted by finish; a creation
window becomes an id range (ids grow with `created_at`, found by bisection over the
primary key) and a finish window bounds it from above (a job is created before it
finishes); counts stop at `COUNT_CAP` and, per state over a window, are index-only
(`ix_jobs_status_finished`, `ix_jobs_tenant_status`; failed and cancelled jobs over a
creation window: `ix_jobs_unsuccessful_id`). A queue other than `default` has its own
(`ix_jobs_queue_id`, `ix_jobs_queue_finished`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, func, literal, not_, or_, select, update
from sqlalchemy.exc import IntegrityError

from superseller.db.rows import row_dict
from superseller.db.schema import JOB_STATES, job_logs, jobs
from superseller.jobs import audit
from superseller.jobs.clock import Clock, SystemClock
from superseller.jobs.errors import InvalidTransition, JobNotFound
from superseller.jobs.registry import Registry
from superseller.jobs.scheduler import Scheduler
from superseller.jobs.schedules import Schedules

job_dict = log_dict = row_dict

COUNT_CAP = 1_000  # "1.000+": enough to see a pile-up, cheap at any table size
# What a bulk action's confirmation counts up to, once per click: the exact number for any
# real pile-up ("Cancelar 9.999 jobs?"), yet bounded on a runaway table.
BULK_COUNT_CAP = 100_000
FINISHED_WINDOW_H = 24  # finished jobs are counted over this many hours unless a window is given
# Errors retrying cannot fix (the worker fails these at once): `type: message` prefixes.
PERMANENT_ERRORS = ("PermanentJobError", "InvalidPayload", "UnknownJobType")
# How far `created_at` may run behind id order (ids are taken at insert, the time just before).
CREATED_SLACK = timedelta(minutes=5)


def is_permanent(job: dict[str, Any]) -> bool:
    """A failed job whose error says retrying will not help (unconnected tenant, bad payload)."""
    error = job.get("last_error") or ""
    return job.get("status") == "failed" and error.split(":", 1)[0] in PERMANENT_ERRORS


def _permanent_sql():
    return or_(*(jobs.c.last_error.like(f"{name}:%") for name in PERMANENT_ERRORS))


@dataclass(frozen=True)
class JobFilter:
    """What the console and the admin API filter jobs by (all optional, all combined)."""

    status: str | None = None
    job_type: str | None = None
    tenant_id: str | None = None
    queue: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    finished_from: datetime | None = None
    finished_to: datetime | None = None

    def without_status(self) -> JobFilter:
        return JobFilter(**{**self.as_dict(), "status": None})

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def describe(self) -> dict[str, Any]:
        """JSON-ready, only what is set (for the audit trail)."""
        return {
            k: v.isoformat() if isinstance(v, datetime) else v
            for k, v in self.as_dict().items()
            if v is not None
        }


def _first_id_created_at_or_after(conn: Connection, moment: datetime) -> int | None:
    """The smallest id whose created_at >= moment, assuming ids grow with created_at: a
    search over the primary key that guesses by interpolation (created_at is near-linear
    in id, so a few probes do) and halves the range every other probe (so it never takes
    more than about 2·log2(n))."""
    bounds = conn.execute(select(func.min(jobs.c.id), func.max(jobs.c.id))).one()
    if bounds[0] is None:
        return None

    def probe(at_least: int):
        return conn.execute(
            select(jobs.c.id, jobs.c.created_at)
            .where(jobs.c.id >= at_least)
            .order_by(jobs.c.id)
            .limit(1)
        ).first()

    lo, hi = probe(bounds[0]), probe(bounds[1])  # the first and last rows
    if hi.created_at < moment:
        return None
    if lo.created_at >= moment:
        return lo.id
    # Invariant: lo.created_at < moment <= hi.created_at, lo.id < hi.id.
    for step in range(200):
        if hi.id - lo.id <= 1:
            break
        span = (hi.created_at - lo.created_at).total_seconds()
        if step % 2 == 0 and span > 0:
            share = (moment - lo.created_at).total_seconds() / span
            guess = lo.id + int(share * (hi.id - lo.id))
        else:
            guess = (lo.id + hi.id) // 2
        row = probe(min(max(guess, lo.id + 1), hi.id - 1))
        if row is None or row.id >= hi.id:
            break  # no row strictly between: hi is the first at or after `moment`
        if row.created_at >= moment:
            hi = row
        else:
            lo = row
    return hi.id


def _id_at(conn: Connection, moment: datetime, cache: dict | None) -> int | None:
    if cache is None:
        return _first_id_created_at_or_after(conn, moment)
    if moment not in cache:
        cache[moment] = _first_id_created_at_or_after(conn, moment)
    return cache[moment]


def _where(conn: Connection, f: JobFilter, cache: dict | None = None) -> list:
    if f.status is not None and f.status not in JOB_STATES:
        raise InvalidTransition(f"unknown state {f.status!r} (one of {', '.join(JOB_STATES)})")
    where = []
    for column, value in (
        (jobs.c.status, f.status),
        (jobs.c.type, f.job_type),
        (jobs.c.tenant_id, f.tenant_id),
        (jobs.c.queue, f.queue),
    ):
        if value:
            where.append(column == value)
    if f.created_from is not None:
        where.append(jobs.c.created_at >= f.created_from)
        first = _id_at(conn, f.created_from - CREATED_SLACK, cache)
        where.append(jobs.c.id >= (first if first is not None else 2**62))
    if f.created_to is not None:
        where.append(jobs.c.created_at < f.created_to)
        past = _id_at(conn, f.created_to + CREATED_SLACK, cache)
        if past is not None:
            where.append(jobs.c.id < past)
    if f.finished_from is not None or f.finished_to is not None:
        where.append(jobs.c.status.in_(("completed", "failed", "cancelled")))
    if f.finished_from is not None:
        where.append(jobs.c.finished_at >= f.finished_from)
    if f.finished_to is not None:
        where.append(jobs.c.finished_at < f.finished_to)
        # A job is created before it finishes: none finished before `finished_to` was
        # created after it, so newest-first pages start at that id instead of walking
        # back from the newest job past everything that finished later.
        past = _id_at(conn, f.finished_to + CREATED_SLACK, cache)
        if past is not None:
            where.append(jobs.c.id < past)
    return where


@dataclass
class JobAdmin:
    engine: Engine
    clock: Clock = field(default_factory=SystemClock)
    # Who acts (a user's email, `cli`, `internal-key`): actions are then audited.
    actor: str | None = None
    # Creation-window id bounds found by this instance (one page view asks several times).
    _ids: dict = field(default_factory=dict, repr=False)

    def _audit(self, conn: Connection, action: str, target_type: str, target_id, detail=None):
        if self.actor is not None:
            audit.record(conn, self.actor, action, target_type, target_id, detail, self.clock)

    def get(self, job_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
        if row is None:
            raise JobNotFound(job_id)
        return job_dict(row)

    def logs(self, job_id: int) -> list[dict[str, Any]]:
        self.get(job_id)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(job_logs).where(job_logs.c.job_id == job_id).order_by(job_logs.c.id)
            ).all()
        return [log_dict(r) for r in rows]

    def list(
        self,
        *,
        status: str | None = None,
        job_type: str | None = None,
        tenant_id: str | None = None,
        queue: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first; pass the last id seen as `before_id` for the next page."""
        f = JobFilter(status=status, job_type=job_type, tenant_id=tenant_id, queue=queue)
        return self.search(f, limit=limit, before_id=before_id)

    def search(
        self,
        f: JobFilter,
        *,
        sort: str = "created",
        limit: int = 50,
        before_id: int | None = None,
        before_finished: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """One keyset page. `sort="created"`: newest first (next page: `before_id` = the last
        id); `sort="finished"`: last finished first, finished jobs only (next page: the last
        row's `finished_at` and id)."""
        limit = max(1, min(limit, 500))
        with self.engine.connect() as conn:
            stmt = select(jobs).where(*_where(conn, f, self._ids)).limit(limit)
            if sort == "finished":
                stmt = stmt.where(jobs.c.status.in_(("completed", "failed", "cancelled")))
                stmt = stmt.order_by(jobs.c.finished_at.desc(), jobs.c.id.desc())
                if before_finished is not None and before_id is not None:
                    stmt = stmt.where(
                        jobs.c.finished_at <= before_finished,
                        or_(
                            jobs.c.finished_at < before_finished,
                            and_(jobs.c.finished_at == before_finished, jobs.c.id < before_id),
                        ),
                    )
            else:
                stmt = stmt.order_by(jobs.c.id.desc())
                if before_id is not None:
                    stmt = stmt.where(jobs.c.id < before_id)
            return [job_dict(r) for r in conn.execute(stmt)]

    def counts(self, f: JobFilter, cap: int = COUNT_CAP, all_time: bool = False) -> dict:
        """Jobs per state under the filter (its own state aside), each counted up to `cap`.

        Pending and running jobs are counted whatever their age (the few, through partial
        indexes). Finished ones are counted over the filter's time window or, when it has
        none, over the last `FINISHED_WINDOW_H` hours through `ix_jobs_finished_at` (recent,
        cached pages): the cost follows a day's activity, never the history. `all_time`
        drops that window (what a bulk action's confirmation counts, once per click).
        Returns `{"byState", "capped": [states past the cap], "cap",
        "finishedWindowHours": hours or None}`."""
        by_state, capped = {}, []
        timeless = f.created_from is f.created_to is f.finished_from is f.finished_to is None
        windowed = timeless and not all_time
        since = self.clock.now() - timedelta(hours=FINISHED_WINDOW_H) if windowed else None
        with self.engine.connect() as conn:
            where = _where(conn, f.without_status(), self._ids)
            for state in JOB_STATES:
                recent = since is not None and state in ("completed", "failed", "cancelled")
                extra = [jobs.c.finished_at >= since] if recent else []
                # A constant, not a column: an index holding the filter's columns answers
                # alone (index-only scan), e.g. ix_jobs_status_finished for a window.
                sub = select(literal(1)).where(*where, *extra, jobs.c.status == state)
                n = conn.execute(
                    select(func.count()).select_from(sub.limit(cap + 1).subquery())
                ).scalar_one()
                by_state[state] = min(n, cap)
                if n > cap:
                    capped.append(state)
        return {
            "byState": by_state,
            "capped": capped,
            "cap": cap,
            "finishedWindowHours": FINISHED_WINDOW_H if since else None,
        }

    def latest_id(self, f: JobFilter) -> int | None:
        """The newest job's id under the filter (what a polling page compares)."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(jobs.c.id)
                .where(*_where(conn, f, self._ids))
                .order_by(jobs.c.id.desc())
                .limit(1)
            ).scalar()

    def cancel(self, job_id: int) -> str:
        """Cancel a pending job at once; ask a running one to stop. Returns what happened."""
        now = self.clock.now()
        with self.engine.begin() as conn:
            done = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == "pending")
                .values(status="cancelled", finished_at=now, last_error="cancelled on request")
            ).rowcount
            if done:
                self._audit(conn, "job.cancel", "job", job_id, {"outcome": "cancelled"})
                return "cancelled"
            asked = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == "running")
                .values(cancel_requested=True)
            ).rowcount
            if asked:
                self._audit(conn, "job.cancel", "job", job_id, {"outcome": "cancel_requested"})
                return "cancel_requested"
        state = self.get(job_id)["status"]
        raise InvalidTransition(f"job {job_id} is {state}; only pending or running jobs cancel")

    def retry(self, job_id: int) -> dict[str, Any]:
        """Re-queue a failed or cancelled job with a fresh set of attempts."""
        now = self.clock.now()
        try:
            with self.engine.begin() as conn:
                done = conn.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id, jobs.c.status.in_(("failed", "cancelled")))
                    .values(**_requeued(now))
                ).rowcount
                if done:
                    self._audit(conn, "job.retry", "job", job_id)
        except IntegrityError:
            raise InvalidTransition(
                f"job {job_id} cannot be retried: an unfinished job with its unique key exists"
            ) from None
        if not done:
            state = self.get(job_id)["status"]
            raise InvalidTransition(f"job {job_id} is {state}; only failed or cancelled jobs retry")
        return self.get(job_id)

    def run_now(self, job_id: int) -> dict[str, Any]:
        """Make a pending job due immediately."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == "pending")
                .values(run_at=self.clock.now())
            ).rowcount
            if done:
                self._audit(conn, "job.execute", "job", job_id)
        if not done:
            state = self.get(job_id)["status"]
            raise InvalidTransition(f"job {job_id} is {state}; only pending jobs can run now")
        return self.get(job_id)

    def move_pending(self, job_id: int, queue: str, max_attempts: int | None = None) -> bool:
        """Move a pending job to `queue` (with `max_attempts`, give it that many attempts
        too); False when it is no longer pending (a worker has it, or it finished). The
        job then belongs there: a home it had while lent (`lend_pending`) is forgotten."""
        values: dict[str, Any] = {"queue": queue, "home_queue": None, "home_max_attempts": None}
        if max_attempts is not None:
            values["max_attempts"] = max_attempts
        with self.engine.begin() as conn:
            done = conn.execute(
                update(jobs).where(jobs.c.id == job_id, jobs.c.status == "pending").values(values)
            ).rowcount
            if done:
                detail = {"queue": queue}
                if max_attempts is not None:
                    detail["maxAttempts"] = max_attempts
                self._audit(conn, "job.move", "job", job_id, detail)
        return bool(done)

    def lend_pending(self, job_id: int, queue: str) -> bool:
        """Move a pending job to a runner's private `queue` (a command line's) for a
        private run: it keeps its home, the queue it is on now (or the home it already
        has), where a rescue sends it back should the runner vanish (SIGKILL, a dead
        host), where a retry puts it, and where workers serving only that queue run it.
        Audited `job.move` with the home. False when it is no longer pending."""
        home = func.coalesce(jobs.c.home_queue, jobs.c.queue)
        with self.engine.begin() as conn:
            found = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == "pending")
                .values(queue=queue, home_queue=case((home == queue, None), else_=home))
                .returning(jobs.c.home_queue)
            ).first()
            if found is not None:
                detail = {"queue": queue, "homeQueue": found.home_queue}
                self._audit(conn, "job.move", "job", job_id, detail)
        return found is not None

    def run_again(self, job_id: int, queue) -> dict[str, Any]:
        """A new job of the same type, payload, tenant, queue and priority as a finished one
        (`queue`: a `superseller.jobs.queue.Queue`). Returns the new job."""
        job = self.get(job_id)
        if job["status"] not in ("completed", "failed", "cancelled"):
            raise InvalidTransition(
                f"job {job_id} is {job['status']}; only finished jobs run again"
            )
        made = queue.enqueue(
            job["type"],
            job["payload"],
            tenant_id=job["tenant_id"],
            queue=job["home_queue"] or job["queue"],  # not a private runner's queue
            priority=job["priority"],
        )
        with self.engine.begin() as conn:
            self._audit(conn, "job.run_again", "job", job_id, {"newJobId": made.id})
        return self.get(made.id)

    # -- a filtered set ------------------------------------------------------
    def bulk_cancel(self, f: JobFilter) -> dict[str, int]:
        """Cancel every pending job under the filter; ask the running ones to stop."""
        now = self.clock.now()
        with self.engine.begin() as conn:
            where = _where(conn, f)
            cancelled = conn.execute(
                update(jobs)
                .where(*where, jobs.c.status == "pending")
                .values(status="cancelled", finished_at=now, last_error="cancelled on request")
            ).rowcount
            asked = conn.execute(
                update(jobs)
                .where(*where, jobs.c.status == "running", not_(jobs.c.cancel_requested))
                .values(cancel_requested=True)
            ).rowcount
            out = {"cancelled": cancelled, "cancelRequested": asked}
            self._audit(conn, "jobs.cancel", "jobs", None, {"filter": f.describe(), **out})
        return out

    def cancellable(self, f: JobFilter, cap: int = BULK_COUNT_CAP) -> dict[str, Any]:
        """How many jobs `bulk_cancel(f)` would touch now (pending ones cancelled, running ones
        not yet asked to stop), up to `cap` (what its confirmation promises):
        `{"count", "capped"}`. Through the partial indexes of unfinished jobs."""
        with self.engine.connect() as conn:
            touched = or_(
                jobs.c.status == "pending",
                and_(jobs.c.status == "running", not_(jobs.c.cancel_requested)),
            )
            sub = select(literal(1)).where(*_where(conn, f), touched).limit(cap + 1)
            n = conn.execute(select(func.count()).select_from(sub.subquery())).scalar_one()
        return {"count": min(n, cap), "capped": n > cap}

    def retryable(self, f: JobFilter, cap: int = COUNT_CAP) -> dict[str, Any]:
        """How many jobs `bulk_retry(f)` would re-queue now, up to `cap` (what its
        confirmation promises): `{"count", "capped"}`."""
        with self.engine.connect() as conn:
            sub = select(literal(1)).where(*_retryable_where(conn, f)).limit(cap + 1)
            n = conn.execute(select(func.count()).select_from(sub.subquery())).scalar_one()
        return {"count": min(n, cap), "capped": n > cap}

    def states_of(self, ids: list[int]) -> dict[str, str]:
        """The state of each of these jobs (a polling page's visible rows; by primary key)."""
        if not ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(jobs.c.id, jobs.c.status).where(jobs.c.id.in_(ids)))
            return {str(r.id): r.status for r in rows}

    def bulk_retry(self, f: JobFilter) -> dict[str, int]:
        """Re-queue every failed or cancelled job under the filter, except those whose error
        is permanent and those whose unique key a live job holds (counted as skipped)."""
        now = self.clock.now()
        with self.engine.begin() as conn:
            where = _retryable_where(conn, f)
            free = where.pop()
            requeue = update(jobs).values(**_requeued(now))
            try:
                with conn.begin_nested():
                    retried = conn.execute(requeue.where(*where, free)).rowcount
            except IntegrityError:  # two of them share a unique key: one by one
                retried = 0
                for job_id in conn.execute(select(jobs.c.id).where(*where, free)).scalars().all():
                    try:
                        with conn.begin_nested():
                            retried += conn.execute(
                                requeue.where(jobs.c.id == job_id, *where, free)
                            ).rowcount
                    except IntegrityError:
                        continue
            out = {"retried": retried}
            self._audit(conn, "jobs.retry", "jobs", None, {"filter": f.describe(), **out})
        return out


def _retryable_where(conn: Connection, f: JobFilter) -> list:
    """What `bulk_retry` re-queues: failed or cancelled under the filter, not a permanent
    failure, no live job holding its unique key (the last condition, kept last)."""
    live = jobs.alias("live")
    free = or_(
        jobs.c.unique_key.is_(None),
        ~select(live.c.id)
        .where(live.c.unique_key == jobs.c.unique_key)
        .where(live.c.status.in_(("pending", "running")))
        .exists(),
    )
    return [
        *_where(conn, f),
        jobs.c.status.in_(("failed", "cancelled")),
        not_(and_(jobs.c.status == "failed", _permanent_sql())),
        free,
    ]


def schedule_views(engine: Engine, registry: Registry, clock: Clock) -> list[dict[str, Any]]:
    """Every schedule with its last occurrence and lateness (the console's and the API's)."""
    scheduler = Scheduler(engine, registry, clock=clock)
    return [schedule_view(scheduler, s) for s in Schedules(engine, registry, clock).list()]


def schedule_view(scheduler: Scheduler, sched: dict[str, Any]) -> dict[str, Any]:
    """A schedule row with its last occurrence and lateness."""
    last = scheduler.occurrences(sched["name"], limit=1)
    return {
        **sched,
        "lastOccurrence": last[0] if last else None,
        "lateness": scheduler.lateness(sched["name"]),
    }


def _requeued(now: datetime) -> dict[str, Any]:
    """A retried job: a fresh set of attempts, due now; one lent to a private runner goes
    home (no runner waits for it any more) with its home's attempts."""
    home_attempts = func.coalesce(jobs.c.home_max_attempts, 0)
    return {
        "queue": func.coalesce(jobs.c.home_queue, jobs.c.queue),
        "max_attempts": case(
            (home_attempts > jobs.c.max_attempts, home_attempts), else_=jobs.c.max_attempts
        ),
        "home_queue": None,
        "home_max_attempts": None,
        "status": "pending",
        "attempts": 0,
        "run_at": now,
        "finished_at": None,
        "cancel_requested": False,
        "worker_id": None,
        "heartbeat_at": None,
    }
