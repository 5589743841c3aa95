"""Rescue never overwrites finished work; cleanup keeps what retention says to keep."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select, update

from superseller.db.schema import job_logs, jobs
from superseller.jobs import audit
from superseller.jobs.clock import ManualClock
from superseller.jobs.queue import JobSpec, Queue
from superseller.jobs.store import JobStore, Outcome
from tests.support.handlers import build_registry
from tests.support.inproc import job, logs, running_worker, wait_status

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _outcome(claimed, clock) -> Outcome:
    return Outcome(
        job=claimed,
        status="completed",
        log_status="success",
        log_type=claimed.type,
        completed_at=clock.now(),
        duration_ms=1,
        result={"late": True},
    )


def test_rescue_does_not_touch_a_job_completed_meanwhile(engine):
    clock = ManualClock(T0)
    reg = build_registry()
    jid = Queue(engine, reg, clock).enqueue("noop").id
    store = JobStore(engine, clock)
    [claimed] = store.claim("w1", 10)
    assert store.finish("w1", [_outcome(claimed, clock)]) == {jid}
    clock.advance(timedelta(hours=1))
    assert store.rescue(30, reg.logged_as) == []
    assert job(engine, jid)["status"] == "completed"


def test_a_late_worker_cannot_finish_a_rescued_job(engine):
    clock = ManualClock(T0)
    reg = build_registry()
    jid = Queue(engine, reg, clock).enqueue("noop").id
    store = JobStore(engine, clock)
    [claimed] = store.claim("w1", 10)
    clock.advance(timedelta(seconds=31))
    assert store.rescue(30, reg.logged_as) == [jid]
    # Another worker takes it again...
    [again] = store.claim("w2", 10)
    assert again.attempt == 2
    # ...and the first worker's late result is refused.
    assert store.finish("w1", [_outcome(claimed, clock)]) == set()
    assert store.finish("w2", [_outcome(again, clock)]) == {jid}
    assert [e["status"] for e in logs(engine, jid)] == ["lost", "success"]


def test_a_worker_never_rescues_its_own_running_jobs(engine):
    # Its heartbeat can wait behind a long write on SQLite; the worker is still alive.
    clock = ManualClock(T0)
    reg = build_registry()
    q = Queue(engine, reg, clock)
    mine, theirs = q.enqueue("noop").id, q.enqueue("noop").id
    store = JobStore(engine, clock)
    store.claim("w1", 1)
    store.claim("w2", 1)
    clock.advance(timedelta(minutes=5))
    assert store.rescue(30, reg.logged_as, alive="w1") == [theirs]
    assert job(engine, mine)["status"] == "running"
    assert store.rescue(30, reg.logged_as, alive="w2") == [mine]


def test_a_worker_gives_back_its_own_jobs_it_does_not_hold(engine):
    # A claim committed but its answer was lost with the connection (an outage): the
    # worker never ran those jobs, and no other worker may be there to rescue them.
    clock = ManualClock(T0)
    reg = build_registry()
    q = Queue(engine, reg, clock)
    held, orphan = q.enqueue("noop").id, q.enqueue("noop").id
    store = JobStore(engine, clock)
    assert len(store.claim("w1", 2)) == 2
    clock.advance(timedelta(seconds=31))
    assert store.rescue(30, reg.logged_as, alive="w1", held=lambda: {held}) == [orphan]
    assert job(engine, held)["status"] == "running"
    assert job(engine, orphan)["status"] == "pending"


def test_a_late_success_is_accepted_when_nobody_restarted_the_job(engine):
    # Its outcome waited behind a stall longer than the rescue period: the job was
    # rescued but not started again, so the success stands and it does not run twice.
    clock = ManualClock(T0)
    reg = build_registry()
    jid = Queue(engine, reg, clock).enqueue("noop").id
    store = JobStore(engine, clock)
    [claimed] = store.claim("w1", 10)
    clock.advance(timedelta(seconds=31))
    assert store.rescue(30, reg.logged_as) == [jid]
    assert store.finish("w1", [_outcome(claimed, clock)]) == {jid}
    assert job(engine, jid)["status"] == "completed"
    assert store.claim("w2", 10) == []
    assert [e["status"] for e in logs(engine, jid)] == ["lost", "success"]


def test_rescue_fails_a_job_without_attempts_left_and_cancels_a_cancel_requested_one(engine):
    clock = ManualClock(T0)
    reg = build_registry()
    q = Queue(engine, reg, clock)
    last = q.enqueue("noop", max_attempts=1).id
    asked = q.enqueue("noop").id
    store = JobStore(engine, clock)
    store.claim("w1", 10)
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == asked).values(cancel_requested=True))
    clock.advance(timedelta(minutes=5))
    assert sorted(store.rescue(30, reg.logged_as)) == sorted([last, asked])
    assert job(engine, last)["status"] == "failed"
    assert job(engine, asked)["status"] == "cancelled"


def _old_jobs(engine, clock, status, age_days, n):
    now = clock.now()
    # Pending ones are due tomorrow, so the worker below leaves them alone.
    specs = [JobSpec("noop", run_at=now + timedelta(days=1)) for _ in range(n)]
    ids = [r.id for r in Queue(engine, build_registry(), clock).enqueue_many(specs)]
    with engine.begin() as conn:
        conn.execute(
            update(jobs)
            .where(jobs.c.id.in_(ids))
            .values(
                status=status,
                finished_at=None if status == "pending" else now - timedelta(days=age_days),
                created_at=now - timedelta(days=age_days),
            )
        )
    return ids


def test_cleanup_applies_retention_in_batches(engine):
    clock = ManualClock(datetime.now(UTC))
    now = clock.now()
    old_done = _old_jobs(engine, clock, "completed", 31, 25)
    old_failed = _old_jobs(engine, clock, "failed", 45, 5)
    recent = _old_jobs(engine, clock, "completed", 29, 5)
    old_pending = _old_jobs(engine, clock, "pending", 90, 3)  # unfinished: never deleted
    with engine.begin() as conn:
        conn.execute(
            insert(job_logs),
            [
                {
                    "job_id": i,
                    "job_type": "noop",
                    "status": "success",
                    "attempt": 1,
                    "started_at": now - timedelta(days=d),
                    "completed_at": now - timedelta(days=d),
                    "duration_ms": 1,
                }
                for i, d in enumerate([61, 61, 70, 59, 10])
            ],
        )
    for days in (61, 70, 10):  # the audit trail is kept as long as job logs
        audit.record(
            engine, "cli", "engine.pause", "engine", clock=ManualClock(now - timedelta(days=days))
        )
    reg = build_registry()
    jid = Queue(engine, reg).enqueue("cleanup", {"batchSize": 7}).id
    with running_worker(engine, reg):
        done = wait_status(engine, jid, "completed")
    assert done["result"]["jobsDeleted"] == 30 and done["result"]["jobLogsDeleted"] == 3
    assert done["result"]["auditDeleted"] == 2 and len(audit.entries(engine)) == 1
    with engine.connect() as conn:
        left = set(conn.execute(select(jobs.c.id)).scalars())
        n_logs = conn.execute(select(func.count()).select_from(job_logs)).scalar()
    assert left == set(recent) | set(old_pending) | {jid}
    assert not left & (set(old_done) | set(old_failed))
    assert n_logs == 2 + 1  # the two recent ones and the cleanup's own
    assert logs(engine, jid)[0]["records_processed"] == 35
