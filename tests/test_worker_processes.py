"""Real worker processes: exactly-once under concurrency, SIGKILL rescue, SIGTERM shutdown."""

import collections
import itertools
import signal

import pytest
from sqlalchemy import func, select

from superseller.db.schema import job_logs, jobs
from superseller.jobs.queue import JobSpec, Queue
from tests.support.handlers import build_registry
from tests.support.inproc import job, logs, running_worker, wait_status
from tests.support.procs import start_worker, stop
from tests.support.waiting import wait_until

N_JOBS = 5000
N_WORKERS = 4


def _status_counts(engine) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(jobs.c.status, func.count()).group_by(jobs.c.status)).all())


def test_four_processes_run_5000_jobs_exactly_once_and_respect_lock_keys(engine, db_url, tmp_path):
    # Every 5th job holds one of 8 locks for 2 ms: overlapping holders would show in the trace.
    specs = [
        JobSpec("trace", {"lock": f"L{i % 8}", "holdMs": 2} if i % 5 == 0 else {})
        for i in range(N_JOBS)
    ]
    ids = [r.id for r in Queue(engine, build_registry()).enqueue_many(specs)]
    procs = [
        start_worker(db_url, SS_TEST_TRACE_DIR=tmp_path, SS_WORKER_CONCURRENCY=4)
        for _ in range(N_WORKERS)
    ]
    try:
        wait_until(
            lambda: _status_counts(engine).get("completed") == N_JOBS,
            timeout=240,
            interval=0.2,
            message="all jobs completed",
        )
    finally:
        codes = [stop(p) for p in procs]
    assert codes == [0] * N_WORKERS, [p.stderr.read() for p in procs]

    runs = collections.Counter()
    by_lock = collections.defaultdict(list)
    pids = set()
    for trace in tmp_path.glob("trace-*.log"):
        pids.add(trace.name)
        for line in trace.read_text().splitlines():
            job_id, lock, start, end = line.split()
            runs[int(job_id)] += 1
            if lock != "-":
                by_lock[lock].append((int(start), int(end), int(job_id)))
    assert set(runs) == set(ids) and set(runs.values()) == {1}, "each job ran exactly once"
    assert len(pids) > 1, "work was shared between processes"
    for lock, spans in by_lock.items():
        spans.sort()
        for (_s1, e1, j1), (s2, _e2, j2) in itertools.pairwise(spans):
            assert s2 >= e1, f"jobs {j1} and {j2} overlapped holding {lock}"
    with engine.connect() as conn:
        n_logs = conn.execute(select(func.count()).select_from(job_logs)).scalar()
        attempts = conn.execute(select(func.max(jobs.c.attempts))).scalar()
    assert n_logs == N_JOBS and attempts == 1


def test_sigkilled_worker_job_is_rescued_and_completes(engine, db_url, tmp_path):
    marker = tmp_path / "started"
    jid = (
        Queue(engine, build_registry())
        .enqueue("sleepy", {"seconds": 1.0, "startedFile": str(marker)})
        .id
    )
    victim = start_worker(db_url, SS_WORKER_RESCUE_AFTER=1.5)
    wait_until(marker.exists, timeout=20, message="job started in the victim")
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    assert job(engine, jid)["status"] == "running"  # nobody finished it
    rescuer = start_worker(db_url, SS_WORKER_RESCUE_AFTER=1.5)
    try:
        done = wait_status(engine, jid, "completed", timeout=30)
    finally:
        assert stop(rescuer) == 0
    assert done["attempts"] == 2
    assert [e["status"] for e in logs(engine, jid)] == ["lost", "success"]


def test_sigterm_finishes_short_jobs_and_puts_back_long_ones(engine, db_url, tmp_path):
    short_mark, long_mark = tmp_path / "short", tmp_path / "long"
    q = Queue(engine, build_registry())
    short = q.enqueue("sleepy", {"seconds": 1.0, "startedFile": str(short_mark)}).id
    long = q.enqueue("sleepy", {"seconds": 120, "startedFile": str(long_mark)}).id
    proc = start_worker(db_url, SS_WORKER_GRACE=3)
    wait_until(
        lambda: short_mark.exists() and long_mark.exists(), timeout=20, message="both jobs started"
    )
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0  # the grace is 3 s: it did not wait for the 120 s job
    assert job(engine, short)["status"] == "completed"
    put_back = job(engine, long)
    assert put_back["status"] == "pending" and put_back["attempts"] == 0
    assert put_back["worker_id"] is None
    assert [e["status"] for e in logs(engine, long)] == ["interrupted"]


def _listening(engine) -> bool:
    """A session of this database has run LISTEN to its end (seen from the server)."""
    with engine.connect() as conn:
        return bool(
            conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND query LIKE 'LISTEN %%' AND state = 'idle'"
            ).scalar()
        )


@pytest.mark.parametrize("backend", ["postgresql"])  # LISTEN/NOTIFY; SQLite polls
def test_postgres_notify_wakes_an_idle_worker(engine):
    reg = build_registry()
    with running_worker(engine, reg, poll_s=60) as worker:
        wait_until(lambda: _listening(engine), message="LISTEN in place")
        # Once it has found nothing, it sleeps on a 60 s poll: only NOTIFY wakes it sooner.
        wait_until(lambda: worker.idle_waits >= 1, message="worker idle")
        jid = Queue(engine, reg).enqueue("noop").id
        wait_status(engine, jid, "completed", timeout=20)  # far sooner than the 60 s poll
