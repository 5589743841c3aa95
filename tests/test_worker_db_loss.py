"""A job whose database connection is lost mid-attempt (a PostgreSQL restart, a terminated
backend, a network cut) does not pay an attempt for it: it goes back to pending, runs again,
and its job_logs show the `disconnected` run. Capped, so that a handler breaking its own
connection cannot loop; any other error still costs an attempt, on both backends."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from superseller.api.models import JobLogs
from superseller.db.engine import make_engine, write_transaction
from superseller.jobs import JobContext, JobType, Registry
from superseller.jobs.admin import JobAdmin
from superseller.jobs.clock import ManualClock
from superseller.jobs.queue import Queue
from superseller.jobs.store import DISCONNECTED, JobStore, Outcome
from tests.support.faultproxy import FaultProxy
from tests.support.inproc import job, logs, running_worker, wait_status
from tests.support.pgfault import terminate_backends
from tests.support.waiting import wait_until

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WAIT_S = 15.0  # deadline of every hand-off between the test and a handler


def _db_name(db_url: str) -> str:
    return db_url.rsplit("/", 1)[1]


def _wait(event: threading.Event, what: str) -> None:
    if not event.wait(WAIT_S):
        raise AssertionError(f"timed out after {WAIT_S}s waiting for {what}")


class CutOnce:
    """A handler doing database work that the test cuts off once, mid-handler: the first run
    holds its connection, says so, and waits for the test's word before using it again."""

    def __init__(self) -> None:
        self.holding = threading.Event()  # the first run is inside, its connection open
        self.cut = threading.Event()  # the test cut the connection
        self.failed = threading.Event()  # the first run's next statement failed
        self.runs = 0

    def __call__(self, ctx: JobContext) -> dict:
        self.runs += 1
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            if self.runs == 1:
                self.holding.set()
                _wait(self.cut, "the test to cut the connection")
                try:
                    conn.execute(text("SELECT 1"))
                except Exception:
                    self.failed.set()
                    raise
        ctx.add_records(1)
        return {"runs": self.runs}


SQL_WORDS = ("SELECT", "INSERT", "UPDATE", "[SQL:", "[parameters:", "parameters hidden")


def _short_and_sql_free(error: str) -> None:
    """What a job records for a database error: one short line, no statement, no values."""
    assert "\n" not in error and len(error) <= 300, error
    for word in SQL_WORDS:
        assert word.lower() not in error.lower(), error


def _registry(*types: JobType) -> Registry:
    reg = Registry()
    for jt in types:
        reg.add(jt)
    return reg


# -- real connection loss (PostgreSQL) -------------------------------------------------
@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_terminated_backend_costs_the_job_no_attempt(engine, db_url):
    handler = CutOnce()
    reg = _registry(JobType("db_work", handler, retry_base_s=0.05))
    # One attempt only: an interruption that counted would fail the job for good.
    jid = Queue(engine, reg).enqueue("db_work", max_attempts=1).id
    with running_worker(engine, reg):
        _wait(handler.holding, "the handler to hold its connection")
        terminate_backends(_db_name(db_url))
        handler.cut.set()
        done = wait_status(engine, jid, "completed", "failed", timeout=30)
    assert done["status"] == "completed", done["last_error"]
    assert done["attempts"] == 1 and done["result"] == {"runs": 2}
    entries = logs(engine, jid)
    assert [(e["status"], e["attempt"]) for e in entries] == [
        (DISCONNECTED, 1),
        ("success", 1),
    ]
    assert entries[0]["error_message"].startswith("database connection lost; attempt not counted")
    _short_and_sql_free(entries[0]["error_message"])
    # It ran again after the give-back's delay, not before.
    retry_at = datetime.fromisoformat(entries[0]["metadata"]["retryAt"])
    assert _utc(entries[1]["started_at"]) >= retry_at


@pytest.mark.parametrize("backend", ["postgresql"])
def test_the_give_back_waits_in_memory_while_the_database_is_away(engine, db_url):
    # The worker and its handler reach PostgreSQL through a proxy the test cuts: the
    # attempt ends while the database is still away, so its outcome can only be held
    # in memory; it must still be a give-back once written.
    handler = CutOnce()
    reg = _registry(JobType("db_work", handler, retry_base_s=0.05))
    jid = Queue(engine, reg).enqueue("db_work", max_attempts=1).id
    proxy = FaultProxy.for_url(db_url)
    proxied = make_engine(proxy.url(db_url))
    try:
        with running_worker(proxied, reg) as worker:
            _wait(handler.holding, "the handler to hold its connection")
            proxy.cut()
            handler.cut.set()
            _wait(handler.failed, "the handler's statement to fail")
            # Ended, not recorded: the worker's own calls fail too.
            wait_until(lambda: worker.watch.down, timeout=WAIT_S, message="the worker to see it")
            assert job(engine, jid)["status"] == "running"
            proxy.restore()
            done = wait_status(engine, jid, "completed", "failed", timeout=30)
    finally:
        proxied.dispose()
        proxy.close()
    assert done["status"] == "completed", done["last_error"]
    assert done["attempts"] == 1
    assert [(e["status"], e["attempt"]) for e in logs(engine, jid)] == [
        (DISCONNECTED, 1),
        ("success", 1),
    ]


def _breaks_its_own_connection(ctx: JobContext) -> dict:
    with ctx.engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        conn.execute(text("SELECT 1"))  # should the first one have answered still
    return {"unreachable": True}


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_handler_that_always_loses_its_connection_fails_after_the_cap(engine):
    reg = _registry(JobType("breaker", _breaks_its_own_connection, retry_base_s=0.05))
    jid = Queue(engine, reg).enqueue("breaker", max_attempts=2).id
    with running_worker(engine, reg, max_db_interruptions=2):
        failed = wait_status(engine, jid, "failed", timeout=30)
    # Per attempt: two give-backs, then the third loss in a row counts.
    assert failed["attempts"] == 2
    assert [(e["status"], e["attempt"]) for e in logs(engine, jid)] == [
        (DISCONNECTED, 1),
        (DISCONNECTED, 1),
        ("error", 1),
        (DISCONNECTED, 2),
        (DISCONNECTED, 2),
        ("error", 2),
    ]
    assert "more than 2 times in a row; attempt counted" in failed["last_error"]
    _short_and_sql_free(failed["last_error"])
    for entry in logs(engine, jid):
        _short_and_sql_free(entry["error_message"])


def _times_out_a_statement(ctx: JobContext) -> dict:
    with ctx.engine.begin() as conn:
        conn.execute(text("SET LOCAL statement_timeout = 1"))
        conn.execute(text("SELECT pg_sleep(5)"))
    return {}


@pytest.mark.parametrize("backend", ["postgresql"])
def test_an_operational_error_on_a_live_connection_still_costs_an_attempt(engine):
    # A statement time-out is an OperationalError too, but the server and the connection
    # are fine: the work failed, the attempt counts.
    reg = _registry(JobType("slow_sql", _times_out_a_statement))
    jid = Queue(engine, reg).enqueue("slow_sql", max_attempts=1).id
    with running_worker(engine, reg):
        failed = wait_status(engine, jid, "failed")
    assert failed["attempts"] == 1 and "statement timeout" in failed["last_error"]
    assert [e["status"] for e in logs(engine, jid)] == ["error"]


# -- both backends ---------------------------------------------------------------------
def _boom(ctx: JobContext) -> dict:
    raise RuntimeError("boom")


def test_a_plain_handler_error_still_costs_an_attempt(engine):
    reg = _registry(JobType("boom", _boom, retry_base_s=0.05))
    jid = Queue(engine, reg).enqueue("boom", max_attempts=2).id
    with running_worker(engine, reg):
        failed = wait_status(engine, jid, "failed")
    assert failed["attempts"] == 2
    assert [(e["status"], e["attempt"]) for e in logs(engine, jid)] == [("error", 1), ("error", 2)]


def _queries_a_missing_table(ctx: JobContext) -> dict:
    with ctx.engine.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table WHERE token = :t"), {"t": "tok-s3cret"})
    return {}


def test_a_failed_statement_is_recorded_as_one_line_without_sql_or_values(engine):
    reg = _registry(JobType("bad_sql", _queries_a_missing_table))
    jid = Queue(engine, reg).enqueue("bad_sql", max_attempts=1).id
    with running_worker(engine, reg):
        failed = wait_status(engine, jid, "failed")
    error = failed["last_error"]
    # The driver's own first line, under its own name (not SQLAlchemy's wrapper).
    assert error.split(": ", 1)[0] in ("OperationalError", "UndefinedTable"), error
    assert "no_such_table" in error
    assert "s3cret" not in error
    _short_and_sql_free(error)
    [entry] = logs(engine, jid)
    assert entry["error_message"] == error


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_database_is_locked_still_costs_an_attempt(engine, db_url):
    # SQLite has no server to lose: "database is locked" is contention, not an outage.
    started, locked, failed = threading.Event(), threading.Event(), threading.Event()

    def writes(ctx: JobContext) -> dict:
        started.set()
        _wait(locked, "the test to hold the write lock")
        try:
            with write_transaction(ctx.engine, sqlite_lock_wait_s=0.05) as conn:
                conn.execute(text("UPDATE jobs SET priority = priority WHERE id = 0"))
        except Exception:
            failed.set()
            raise
        return {}

    reg = _registry(JobType("writes", writes))
    jid = Queue(engine, reg).enqueue("writes", max_attempts=1).id
    holder = make_engine(db_url)
    try:
        with running_worker(engine, reg):
            _wait(started, "the handler to start")
            with holder.begin():  # BEGIN IMMEDIATE: the write lock, until the handler failed
                locked.set()
                _wait(failed, "the handler to meet the lock")
            done = wait_status(engine, jid, "failed", "completed", "pending")
    finally:
        holder.dispose()
    assert done["status"] == "failed" and done["attempts"] == 1
    assert "database is locked" in done["last_error"]
    assert [e["status"] for e in logs(engine, jid)] == ["error"]


# -- the store: recording a give-back, the fence, the cap --------------------------------
def _give_back(claimed, clock, *, counted_status: str = "failed") -> Outcome:
    now = clock.now()
    fallback = Outcome(claimed, counted_status, "error", claimed.type, now, 1, error="counted")
    return Outcome(
        claimed,
        "pending",
        DISCONNECTED,
        claimed.type,
        now,
        1,
        error="database connection lost",
        retry_at=now + timedelta(seconds=5),
        counted=False,
        fallback=fallback,
    )


def _noop_registry() -> Registry:
    return _registry(JobType("noop", lambda ctx: {}))


def test_a_give_back_returns_the_attempt_and_runs_again_under_the_same_number(engine):
    clock = ManualClock(T0)
    jid = Queue(engine, _noop_registry(), clock).enqueue("noop", max_attempts=1).id
    store = JobStore(engine, clock)
    [claimed] = store.claim("w1", 10)
    assert store.finish("w1", [_give_back(claimed, clock)]) == {jid}
    back = job(engine, jid)
    assert back["status"] == "pending" and back["attempts"] == 0 and back["worker_id"] is None
    assert _utc(back["run_at"]) == T0 + timedelta(seconds=5)
    assert store.claim("w1", 10) == []  # not before its delay
    clock.advance(timedelta(seconds=5))
    [again] = store.claim("w1", 10)
    assert again.attempt == 1
    # The API's job_logs (what /api/admin/jobs/{id}/logs answers) carry the new status.
    [row] = JobLogs.model_validate({"logs": JobAdmin(engine).logs(jid)}).logs
    assert (row.status, row.attempt) == (DISCONNECTED, 1)


def test_the_fence_refuses_a_late_give_back_once_another_worker_took_the_job(engine):
    clock = ManualClock(T0)
    reg = _noop_registry()
    jid = Queue(engine, reg, clock).enqueue("noop").id
    store = JobStore(engine, clock)
    [claimed] = store.claim("w1", 10)
    clock.advance(timedelta(seconds=31))
    assert store.rescue(30, reg.logged_as) == [jid]
    [again] = store.claim("w2", 10)
    assert store.finish("w1", [_give_back(claimed, clock)]) == set()
    taken = job(engine, jid)
    assert taken["status"] == "running" and taken["worker_id"] == "w2"
    assert taken["attempts"] == 2 == again.attempt
    assert [e["status"] for e in logs(engine, jid)] == ["lost"]


def test_the_give_backs_in_a_row_are_capped_when_recorded(engine):
    clock = ManualClock(T0)
    jid = Queue(engine, _noop_registry(), clock).enqueue("noop", max_attempts=1).id
    store = JobStore(engine, clock, max_db_interruptions=2)
    for _ in range(2):
        [claimed] = store.claim("w1", 10)
        assert store.finish("w1", [_give_back(claimed, clock)]) == {jid}
        clock.advance(timedelta(seconds=5))
    [claimed] = store.claim("w1", 10)
    assert store.finish("w1", [_give_back(claimed, clock)]) == {jid}
    failed = job(engine, jid)
    assert failed["status"] == "failed" and failed["attempts"] == 1
    assert failed["last_error"] == "counted"
    assert [e["status"] for e in logs(engine, jid)] == [DISCONNECTED, DISCONNECTED, "error"]


def test_a_counted_attempt_starts_a_new_run_of_give_backs(engine):
    clock = ManualClock(T0)
    jid = Queue(engine, _noop_registry(), clock).enqueue("noop", max_attempts=3).id
    store = JobStore(engine, clock, max_db_interruptions=1)
    plan = [True, False, True]  # give back, counted (the cap), give back again
    for expect_given_back in plan:
        [claimed] = store.claim("w1", 10)
        outcome = _give_back(claimed, clock, counted_status="pending")
        outcome.fallback.retry_at = outcome.retry_at
        assert store.finish("w1", [outcome]) == {jid}
        assert (job(engine, jid)["attempts"] == claimed.attempt - 1) is expect_given_back
        clock.advance(timedelta(seconds=5))
    assert [(e["status"], e["attempt"]) for e in logs(engine, jid)] == [
        (DISCONNECTED, 1),
        ("error", 1),
        (DISCONNECTED, 2),
    ]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
