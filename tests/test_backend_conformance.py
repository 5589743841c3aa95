"""The job engine's backend conformance suite: every `Backend` (one per database) must pass
it. It drives the interface directly (jobs/backend/base.py), with the caller's
transactions and times, and checks the rules the engine relies on: a job goes to one
worker only, late outcomes are fenced, heartbeats, rescue and release, unique inserts,
wake-ups, named locks, stats buckets and snapshot reads."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import StatementError

from superseller.db.schema import job_logs, job_stats_hourly, jobs
from superseller.jobs.backend import LOST_MESSAGE, Backend, Outcome, backend_for
from tests.support.waiting import wait_until

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def be(engine) -> Backend:
    return backend_for(engine)


def _row(n: int = 0, **over) -> dict:
    row = {
        "type": "noop",
        "queue": "default",
        "tenant_id": None,
        "payload": {"n": n},
        "status": "pending",
        "priority": 0,
        "run_at": T0,
        "attempts": 0,
        "max_attempts": 3,
        "unique_key": None,
        "lock_key": None,
        "timeout_s": None,
        "cancel_requested": False,
        "created_at": T0,
        "schedule_id": None,
        "scheduled_for": None,
    }
    return {**row, **over}


def _add(engine, be: Backend, rows: list[dict]) -> list[int]:
    with engine.begin() as conn:
        return be.insert_jobs(conn, rows)


def _claim(engine, be: Backend, worker: str, limit: int = 10, now=T0, **kw):
    with engine.begin() as conn:
        be.begin_hot_path(conn)
        return be.claim(conn, worker, limit, now, **kw)


def _finish(engine, be: Backend, worker: str, outcomes: list[Outcome]) -> set[int]:
    with engine.begin() as conn:
        return be.finish(conn, worker, outcomes)


def _done(claimed, status: str = "completed", at=T0) -> Outcome:
    return Outcome(
        job=claimed,
        status=status,
        log_status="success" if status == "completed" else "error",
        log_type=claimed.type,
        completed_at=at + timedelta(seconds=1),
        duration_ms=1000,
        records=2,
        result={"ok": True},
    )


def _rescue(engine, be: Backend, now, alive: str = "nobody", held=None):
    with engine.begin() as conn:
        return be.rescue(
            conn,
            now=now,
            cutoff=now - timedelta(seconds=30),
            message=f"{LOST_MESSAGE} 30s",
            alive=alive,
            held=held,
        )


def _state(engine, job_id: int) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(jobs).where(jobs.c.id == job_id)).one()._mapping)


def test_insert_jobs_returns_each_rows_id_in_batch_order(engine, be):
    rows = [
        _row(
            i,
            queue=f"q{i % 2}",
            tenant_id=f"t{i}",
            lock_key=f"k{i}" if i % 3 else None,
            run_at=T0 + timedelta(minutes=i),
            timeout_s=1.5 * i,
            scheduled_for=T0 - timedelta(hours=i) if i % 2 else None,
        )
        for i in range(7)
    ]
    ids = _add(engine, be, rows)
    assert len(set(ids)) == 7
    for jid, row in zip(ids, rows, strict=True):
        stored = _state(engine, jid)
        assert {k: stored[k] for k in row} == row
    # A naive time is refused, never read in some zone (SQLAlchemy wraps the ValueError).
    with pytest.raises((ValueError, StatementError), match="naive"):
        _add(engine, be, [_row(), _row(run_at=datetime(2026, 3, 1, 12))])


def test_claim_returns_due_jobs_with_their_payload_in_priority_order(engine, be):
    later = _row(1, run_at=T0 + timedelta(minutes=5))
    ids = _add(engine, be, [_row(1), _row(2, priority=5), later])
    [first] = _claim(engine, be, "w1", limit=1)  # the higher priority first
    [second] = _claim(engine, be, "w1")  # the later one is not due yet
    claimed = [first, second]
    assert [c.id for c in claimed] == [ids[1], ids[0]]
    assert [c.payload for c in claimed] == [{"n": 2}, {"n": 1}]
    assert all(c.attempt == 1 and c.started_at == T0 for c in claimed)
    s = _state(engine, ids[0])
    assert (s["status"], s["worker_id"], s["attempts"]) == ("running", "w1", 1)
    assert _claim(engine, be, "w2") == []


def test_claim_filters_queues_and_respects_lock_keys_and_the_tenant_cap(engine, be):
    _add(engine, be, [_row(i, queue="a", lock_key="k") for i in range(3)])
    _add(engine, be, [_row(i, queue="b", tenant_id="t1") for i in range(4)])
    only_a = _claim(engine, be, "w1", queues=["a"])
    assert [c.queue for c in only_a] == ["a"]  # one lock_key holder at a time
    fair = _claim(engine, be, "w2", queues=["b"], tenant_cap=2, scan=40)
    assert len(fair) == 2 and {c.tenant_id for c in fair} == {"t1"}
    assert _claim(engine, be, "w3", queues=["b"], tenant_cap=2, scan=40) == []


def test_claim_leaves_paused_queues_out_and_takes_them_again_once_resumed(engine, be):
    ids = _add(engine, be, [_row(i, queue=q) for i, q in enumerate("aabbc")])
    by_queue = {q: [i for i, qq in zip(ids, "aabbc", strict=True) if qq == q] for q in "abc"}
    # Queue "a" paused: a worker of every queue takes the others, a worker of "a" alone
    # takes nothing, a worker of "a" and "b" takes "b"; the fair claim filters the same.
    assert _claim(engine, be, "w0", queues=["a"], exclude=["a"]) == []
    ab = _claim(engine, be, "w1", limit=1, queues=["a", "b"], exclude=["a"])
    assert [c.id for c in ab] == by_queue["b"][:1]
    fair = _claim(engine, be, "w2", exclude=["a", "c"], tenant_cap=2, scan=40)
    assert [c.id for c in fair] == by_queue["b"][1:]
    rest = _claim(engine, be, "w3", exclude=["a"])
    assert [c.id for c in rest] == by_queue["c"]
    assert _claim(engine, be, "w4", exclude=["a"]) == []
    assert {_state(engine, i)["status"] for i in by_queue["a"]} == {"pending"}
    resumed = _claim(engine, be, "w5")  # nothing excluded: the plain claim
    assert sorted(c.id for c in resumed) == by_queue["a"]


def test_concurrent_claims_never_hand_a_job_to_two_workers(engine, be):
    ids = set(_add(engine, be, [_row(i) for i in range(120)]))
    got: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        mine = got.setdefault(name, [])
        try:
            while batch := _claim(engine, be, name, limit=7):
                mine.extend(c.id for c in batch)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    every = [i for ids_ in got.values() for i in ids_]
    assert sorted(every) == sorted(ids)  # each job exactly once


def test_finish_records_the_outcome_and_its_log_row_together(engine, be):
    [jid] = _add(engine, be, [_row()])
    [c] = _claim(engine, be, "w1")
    assert _finish(engine, be, "w1", [_done(c)]) == {jid}
    s = _state(engine, jid)
    assert (s["status"], s["result"], s["worker_id"]) == ("completed", {"ok": True}, None)
    with engine.connect() as conn:
        [log] = conn.execute(select(job_logs).where(job_logs.c.job_id == jid)).all()
    assert (log.status, log.attempt, log.duration_ms, log.records_processed) == (
        "success",
        1,
        1000,
        2,
    )


def test_a_late_outcome_of_a_reclaimed_attempt_is_fenced_off(engine, be):
    [jid] = _add(engine, be, [_row()])
    [first] = _claim(engine, be, "w1")
    assert [r.id for r in _rescue(engine, be, T0 + timedelta(minutes=1))] == [jid]
    [again] = _claim(engine, be, "w2", now=T0 + timedelta(minutes=1))
    assert again.attempt == 2
    assert _finish(engine, be, "w1", [_done(first)]) == set()  # fenced: not w1's any more
    assert _finish(engine, be, "w2", [_done(again)]) == {jid}
    with engine.connect() as conn:
        attempts = conn.execute(
            select(job_logs.c.attempt).where(job_logs.c.job_id == jid)
        ).scalars()
        assert list(attempts) == [2]


def test_the_attempt_number_fences_a_worker_that_got_its_job_back(engine, be):
    [jid] = _add(engine, be, [_row()])
    [first] = _claim(engine, be, "w1")
    _rescue(engine, be, T0 + timedelta(minutes=1))
    [again] = _claim(engine, be, "w1", now=T0 + timedelta(minutes=1))
    assert _finish(engine, be, "w1", [_done(first)]) == set()  # attempt 1 is over
    assert _state(engine, jid)["status"] == "running"
    assert _finish(engine, be, "w1", [_done(again)]) == {jid}


def test_the_late_outcome_of_a_rescued_attempt_nobody_restarted_is_kept(engine, be):
    [jid] = _add(engine, be, [_row()])
    [c] = _claim(engine, be, "w1")
    _rescue(engine, be, T0 + timedelta(minutes=1))
    assert _state(engine, jid)["status"] == "pending"
    assert _finish(engine, be, "w1", [_done(c)]) == {jid}
    assert _state(engine, jid)["status"] == "completed"
    assert _finish(engine, be, "w1", [_done(c)]) == set()  # once


def test_the_round_trip_records_outcomes_then_claims_in_one_transaction(engine, be):
    sched = T0 - timedelta(hours=1)
    ids = _add(engine, be, [_row(0), _row(1, scheduled_for=sched), _row(2), _row(3), _row(4)])
    first = _claim(engine, be, "w1", limit=3)
    bare = Outcome(  # a success without result, records, retry or schedule
        job=first[0],
        status="completed",
        log_status="success",
        log_type="noop",
        completed_at=T0 + timedelta(seconds=2),
        duration_ms=7,
    )
    retry = _done(first[2], status="pending")
    retry.retry_at = T0 + timedelta(minutes=5)
    retry.error = "boom"
    outcomes = [bare, _done(first[1]), retry]
    now = T0 + timedelta(seconds=3)
    with engine.begin() as conn:
        applied, claimed = be.finish_and_claim(conn, "w1", outcomes, 10, now)
    assert applied == set(ids[:3])
    assert sorted((c.id, c.payload, c.attempt, c.started_at) for c in claimed) == [
        (ids[3], {"n": 3}, 1, now),
        (ids[4], {"n": 4}, 1, now),
    ]  # the retried job is not due before its retry_at
    states = {i: _state(engine, i) for i in ids}
    assert [states[i]["status"] for i in ids] == ["completed", "completed", "pending"] + [
        "running"
    ] * 2
    assert states[ids[0]]["result"] is None
    assert states[ids[2]]["run_at"] == T0 + timedelta(minutes=5)
    assert states[ids[2]]["last_error"] == "boom"
    with engine.connect() as conn:
        logs = {
            r.job_id: r
            for r in conn.execute(select(job_logs).where(job_logs.c.job_id.in_(ids[:3])))
        }
    assert (logs[ids[0]].records_processed, logs[ids[0]].metadata) == (0, None)
    assert (logs[ids[0]].duration_ms, logs[ids[0]].error_message) == (7, None)
    assert logs[ids[1]].metadata == {"ok": True, "scheduledFor": sched.isoformat()}
    assert logs[ids[1]].records_processed == 2
    assert logs[ids[2]].metadata == {
        "ok": True,
        "retryAt": (T0 + timedelta(minutes=5)).isoformat(),
    }
    assert (logs[ids[2]].status, logs[ids[2]].error_message) == ("error", "boom")
    # Nothing to claim: outcomes alone; nothing at all: nothing happens.
    with engine.begin() as conn:
        assert be.finish_and_claim(conn, "w1", [_done(c) for c in claimed], 0, now) == (
            {ids[3], ids[4]},
            [],
        )
        assert be.finish_and_claim(conn, "w1", [], 5, now) == (set(), [])


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_round_trip_on_a_lost_connection_raises_a_lost_connection_and_records_nothing(engine, be):
    from superseller.db.connection_errors import DB_ERRORS, connection_lost

    ids = _add(engine, be, [_row(0), _row(1)])
    [c] = _claim(engine, be, "w1", limit=1)
    with engine.connect() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        conn.commit()
        with engine.connect() as killer:
            killer.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        with pytest.raises(DB_ERRORS) as caught:
            with conn.begin():
                be.finish_and_claim(conn, "w1", [_done(c)], 5, T0)
    assert connection_lost(caught.value)
    # One pipeline, one error: it names both statements, not only the claim.
    assert "INSERT INTO job_logs" in caught.value.statement
    assert "FOR UPDATE SKIP LOCKED" in caught.value.statement
    assert [_state(engine, i)["status"] for i in ids] == ["running", "pending"]
    # The pool hands out a working connection afterwards.
    assert _finish(engine, be, "w1", [_done(c)]) == {ids[0]}


def test_heartbeat_touches_only_owned_jobs_and_reports_cancellations(engine, be):
    a, b = _add(engine, be, [_row(1), _row(2)])
    _claim(engine, be, "w1")
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == b).values(cancel_requested=True))
    later = T0 + timedelta(seconds=20)
    with engine.begin() as conn:
        assert sorted(be.heartbeat(conn, "w1", [a, b], later)) == [(a, False), (b, True)]
        assert be.heartbeat(conn, "w2", [a, b], later) == []
    assert _state(engine, a)["heartbeat_at"] == later


def test_rescue_gives_back_silent_jobs_by_attempts_and_cancellation(engine, be):
    retry, spent, cancel, alive = _add(
        engine, be, [_row(1), _row(2, max_attempts=1), _row(3), _row(4)]
    )
    for jid, worker in ((retry, "w1"), (spent, "w1"), (cancel, "w1"), (alive, "me")):
        with engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == jid)
                .values(status="running", attempts=1, worker_id=worker, heartbeat_at=T0)
            )
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == cancel).values(cancel_requested=True))
    now = T0 + timedelta(seconds=10)
    assert _rescue(engine, be, now, alive="me") == []  # not silent long enough
    now = T0 + timedelta(minutes=1)
    rows = {r.id: r.status for r in _rescue(engine, be, now, alive="me")}
    assert rows == {retry: "pending", spent: "failed", cancel: "cancelled"}
    assert _state(engine, alive)["status"] == "running"  # the caller's own job
    # ...unless the caller says it does not hold it (a claim whose answer was lost).
    assert [r.id for r in _rescue(engine, be, now, alive="me", held=[-1])] == [alive]


def test_release_puts_an_attempt_back_without_counting_it(engine, be):
    [jid] = _add(engine, be, [_row()])
    [c] = _claim(engine, be, "w1")
    with engine.begin() as conn:
        kw = {"job_id": jid, "attempt": c.attempt, "now": T0}
        assert not be.release(conn, worker_id="w2", **kw)
        assert be.release(conn, worker_id="w1", **kw)
    s = _state(engine, jid)
    assert (s["status"], s["attempts"], s["worker_id"]) == ("pending", 0, None)


def test_unique_insert_returns_the_unfinished_holder_of_the_key(engine, be):
    with engine.begin() as conn:
        first, created = be.insert_unique(conn, _row(unique_key="u"))
        assert created
        assert be.insert_unique(conn, _row(unique_key="u")) == (first, False)
    [c] = _claim(engine, be, "w1")
    assert c.id == first
    _finish(engine, be, "w1", [_done(c)])
    with engine.begin() as conn:
        second, created = be.insert_unique(conn, _row(unique_key="u"))
    assert created and second != first  # the key is free once its job finished


def test_notify_wakes_a_listener_after_commit_where_the_database_has_one(engine, be):
    woken: list[int] = []
    listener = be.listener(engine, ["a"], lambda: woken.append(1), None)
    if not be.listens:
        assert listener is None  # workers poll instead
        return
    listener.start()
    try:
        wait_until(listener.ready.is_set, message="LISTEN in place")
        before = wait_until(lambda: len(woken), message="the wake-up after LISTEN")
        with engine.begin() as conn:
            be.notify(conn, ["b"])  # another queue: ignored
            be.notify(conn, ["a"])
        wait_until(lambda: len(woken) > before, message="the notification")
    finally:
        listener.stop()


def test_a_named_transaction_lock_serialises_read_modify_write(engine, be):
    [jid] = _add(engine, be, [_row(priority=0)])
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(10):
                with engine.begin() as conn:
                    be.transaction_lock(conn, "conformance")
                    n = conn.execute(select(jobs.c.priority).where(jobs.c.id == jid)).scalar()
                    conn.execute(update(jobs).where(jobs.c.id == jid).values(priority=n + 1))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert _state(engine, jid)["priority"] == 40  # no increment lost


def test_stats_buckets_add_up_per_hour(engine, be):
    row = {"job_type": "noop", "hour": T0, "status": "success"}
    [jid] = _add(engine, be, [_row()])
    with engine.begin() as conn:
        for runs in (2, 3):
            be.upsert_stats(
                conn,
                job_stats_hourly,
                [{**row, "runs": runs, "total_duration_ms": 10, "records": 1, "retries": 0}],
            )
        bucket = be.hour_bucket(job_logs.c.started_at)
        conn.execute(
            insert(job_logs),
            {
                "job_id": jid,
                "job_type": "noop",
                "status": "success",
                "attempt": 1,
                "started_at": T0 + timedelta(minutes=59, seconds=59),
                "completed_at": T0 + timedelta(hours=1),
                "duration_ms": 1,
                "records_processed": 0,
            },
        )
        hour = conn.execute(select(bucket)).scalar_one()
    with engine.connect() as conn:
        r = conn.execute(select(job_stats_hourly)).one()
    assert (r.runs, r.total_duration_ms, r.records) == (5, 20, 2)
    hour = datetime.fromisoformat(hour) if isinstance(hour, str) else hour
    assert hour.replace(tzinfo=hour.tzinfo or UTC) == T0


def test_a_snapshot_does_not_see_what_commits_after_its_first_read(engine, be):
    count = select(func.count()).select_from(jobs)
    with be.snapshot(engine) as reader:
        assert reader.execute(count).scalar() == 0
        _add(engine, be, [_row()])
        assert reader.execute(count).scalar() == 0
    with be.snapshot(engine) as reader:
        assert reader.execute(count).scalar() == 1


# Only where write transactions run side by side (SQLite admits one writer at a time:
# its claims are exclusive by the write lock, as the concurrent-claims test shows).
@pytest.mark.parametrize("backend", ["postgresql"])
def test_skip_locked_passes_over_rows_another_transaction_holds(engine, be):
    assert be.concurrent_writers
    [jid] = _add(engine, be, [_row()])
    stmt = be.skip_locked(select(jobs.c.id).where(jobs.c.id == jid))
    with engine.begin() as first:
        assert first.execute(stmt).scalar() == jid
        with engine.begin() as second:
            assert second.execute(stmt).scalar() is None
