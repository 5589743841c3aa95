"""Enqueueing: validation, unique keys, batches, lock keys."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from superseller.db.schema import jobs
from superseller.jobs import InvalidPayload, UnknownJobType
from superseller.jobs.queue import JobSpec, Queue
from superseller.limits import LimitError
from tests.support.handlers import build_registry
from tests.support.inproc import job


@pytest.fixture
def queue(engine):
    return Queue(engine, build_registry())


def count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(jobs)).scalar()


def test_unknown_type_is_refused_and_nothing_is_written(queue, engine):
    with pytest.raises(UnknownJobType, match="unknown job type 'nope'.*registered: .*noop"):
        queue.enqueue("nope")
    assert count(engine) == 0


def test_payload_rejected_by_the_handler_schema(queue, engine):
    with pytest.raises(InvalidPayload, match="batchSize"):
        queue.enqueue("cleanup", {"batchSize": "lots"})
    with pytest.raises(InvalidPayload, match="JSON object"):
        queue.enqueue("cleanup", ["not", "an", "object"])  # type: ignore[arg-type]
    assert count(engine) == 0


def test_a_bad_spec_refuses_the_whole_batch(queue, engine):
    with pytest.raises(UnknownJobType):
        queue.enqueue_many([JobSpec("noop"), JobSpec("nope")])
    assert count(engine) == 0


def test_batch_enqueue_keeps_order_and_defaults(queue, engine):
    results = queue.enqueue_many([JobSpec("noop", {"i": i}, priority=i) for i in range(50)])
    assert [r.created for r in results] == [True] * 50
    for i, r in enumerate(results):
        row = job(engine, r.id)
        assert row["payload"] == {"i": i} and row["priority"] == i
        assert row["status"] == "pending" and row["max_attempts"] == 3 and row["attempts"] == 0


def test_a_mixed_batch_stores_each_job_as_given(queue, engine):
    """Jobs of one batch share a validation and a creation instant where they can; each
    stored row must still be exactly its own spec (fan-outs mix tenants, delays, options)."""
    now = datetime.now(UTC)
    later = now + timedelta(hours=2)
    slot = now.replace(microsecond=0)
    specs = [JobSpec("noop", tenant_id=f"t{i % 3}") for i in range(6)]
    specs += [
        JobSpec("noop", tenant_id="t0", run_at=later),
        JobSpec("noop", queue="slow", priority=-5, max_attempts=7, timeout_s=12.5),
        JobSpec("noop", {"i": 1}, tenant_id="t1", lock_key="L1", scheduled_for=slot),
        JobSpec("trace", {"lock": "tenant-9"}),
        JobSpec("noop", tenant_id="t2"),
    ]
    results = queue.enqueue_many(specs)
    rows = [job(engine, r.id) for r in results]
    assert [r.id for r in results] == sorted(r.id for r in results)
    for spec, row in zip(specs, rows, strict=True):
        assert row["type"] == spec.type and row["tenant_id"] == spec.tenant_id
        assert row["payload"] == (spec.payload or {}) and row["priority"] == spec.priority
        assert row["queue"] == (spec.queue or "default")
        assert row["max_attempts"] == (spec.max_attempts or 3)
        assert row["scheduled_for"] == spec.scheduled_for
    assert len({row["created_at"] for row in rows}) == 1
    assert rows[0]["run_at"] == rows[0]["created_at"]
    assert rows[6]["run_at"] == later
    assert rows[7]["timeout_s"] == 12.5
    assert rows[8]["lock_key"] == "L1" and rows[9]["lock_key"] == "tenant-9"


def test_one_bad_job_among_many_alike_refuses_the_batch(queue, engine):
    alike = [JobSpec("noop", tenant_id="t1") for _ in range(20)]
    with pytest.raises(LimitError, match="priority"):
        queue.enqueue_many([*alike, JobSpec("noop", tenant_id="t1", priority=10**9)])
    with pytest.raises(LimitError, match="tenant id"):
        queue.enqueue_many([*alike, JobSpec("noop", tenant_id="t" * 10_000)])
    assert count(engine) == 0


def test_unique_key_returns_the_unfinished_job(queue, engine):
    first = queue.enqueue("noop", unique_key="sync:t1")
    again = queue.enqueue("noop", unique_key="sync:t1")
    assert again.id == first.id and not again.created
    batch = queue.enqueue_many([JobSpec("noop", unique_key="k2"), JobSpec("noop", unique_key="k2")])
    assert batch[0].id == batch[1].id and batch[0].created and not batch[1].created
    # Once finished, the key is free again.
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == first.id).values(status="completed"))
    third = queue.enqueue("noop", unique_key="sync:t1")
    assert third.created and third.id != first.id


def test_lock_key_comes_from_the_job_type(queue, engine):
    r = queue.enqueue("trace", {"lock": "tenant-7"})
    assert job(engine, r.id)["lock_key"] == "tenant-7"
    assert job(engine, queue.enqueue("cleanup").id)["lock_key"] == "cleanup"


def test_database_refuses_two_running_jobs_with_one_lock_key(queue, engine):
    a = queue.enqueue("trace", {"lock": "L"})
    b = queue.enqueue("trace", {"lock": "L"})
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == a.id).values(status="running"))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == b.id).values(status="running"))
