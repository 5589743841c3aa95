"""Worker behaviour: results and logs, retries, dead letter, time-outs, cancellation."""

from datetime import UTC, datetime, timedelta

import pytest

from superseller.config import Settings
from superseller.jobs.admin import JobAdmin
from superseller.jobs.errors import InvalidTransition
from superseller.jobs.queue import Queue
from superseller.jobs.worker import WorkerOptions
from tests.support.handlers import build_registry
from tests.support.inproc import job, logs, running_worker, wait_status
from tests.support.waiting import wait_until


@pytest.fixture
def registry():
    return build_registry()


@pytest.fixture
def queue(engine, registry):
    return Queue(engine, registry)


def test_result_lands_in_job_and_job_log(engine, registry, queue):
    jid = queue.enqueue("noop", tenant_id="t1").id
    with running_worker(engine, registry):
        done = wait_status(engine, jid, "completed")
    assert done["result"] == {"ok": True} and done["attempts"] == 1
    assert done["finished_at"] >= done["started_at"]
    [entry] = logs(engine, jid)
    assert entry["status"] == "success" and entry["attempt"] == 1
    assert entry["tenant_id"] == "t1" and entry["records_processed"] == 1
    assert entry["metadata"] == {"ok": True} and entry["duration_ms"] >= 0


def test_job_logs_use_the_types_log_name(engine, registry, queue):
    jid = queue.enqueue("logged_as").id
    with running_worker(engine, registry):
        wait_status(engine, jid, "completed")
    assert logs(engine, jid)[0]["job_type"] == "metrics_aggregation"


def test_failed_attempts_retry_with_backoff_then_succeed(engine, registry, queue):
    jid = queue.enqueue("flaky", {"failTimes": 2}).id
    with running_worker(engine, registry):
        done = wait_status(engine, jid, "completed")
    assert done["attempts"] == 3 and done["result"] == {"attempt": 3}
    entries = logs(engine, jid)
    assert [e["status"] for e in entries] == ["error", "error", "success"]
    assert "planned failure on attempt 1" in entries[0]["error_message"]
    # Back-off: each failure plans its retry at its exponential step (base 0.05 s · 2^(n-1))
    # times a jitter in [0.5, 1.5), and the retry does not start before it is due.
    for n, (failed, retried) in enumerate(zip(entries, entries[1:], strict=False), start=1):
        retry_at = datetime.fromisoformat(failed["metadata"]["retryAt"])
        step = timedelta(seconds=0.05 * 2 ** (n - 1))
        assert step * 0.5 <= retry_at - _utc(failed["completed_at"]) < step * 1.5
        assert _utc(retried["started_at"]) >= retry_at


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("job_type", "base"),
    [
        ("flaky", 0.05),  # the type's own base
        ("flaky_default_backoff", 100),  # the worker's base
    ],
)
def test_retry_waits_within_the_jittered_window(engine, queue, job_type, base):
    jid = queue.enqueue(job_type, {"failTimes": 5}, max_attempts=5).id
    with running_worker(engine, build_registry(), retry_base_s=100):
        wait_until(lambda: logs(engine, jid), message="first attempt")
    pending = job(engine, jid)
    last = logs(engine, jid)[-1]
    assert pending["status"] == "pending" and pending["attempts"] == last["attempt"]
    step = base * 2 ** (last["attempt"] - 1)
    delay = (pending["run_at"] - last["completed_at"]).total_seconds()
    assert 0.5 * step <= delay < 1.5 * step, (delay, step)


def test_exhausted_attempts_dead_letter_then_retry_requeues(engine, registry, queue):
    jid = queue.enqueue("flaky", {"failTimes": 99}, max_attempts=2).id
    with running_worker(engine, registry):
        failed = wait_status(engine, jid, "failed")
    assert failed["attempts"] == 2 and "planned failure on attempt 2" in failed["last_error"]
    assert failed["finished_at"] is not None
    assert JobAdmin(engine).list(status="failed")[0]["id"] == jid
    JobAdmin(engine).retry(jid)
    again = job(engine, jid)
    assert again["status"] == "pending" and again["attempts"] == 0
    with pytest.raises(InvalidTransition, match="only failed or cancelled"):
        JobAdmin(engine).retry(jid)


def test_permanent_error_fails_without_retry(engine, registry, queue):
    jid = queue.enqueue("permanent").id
    with running_worker(engine, registry):
        failed = wait_status(engine, jid, "failed")
    assert failed["attempts"] == 1 and "cannot work" in failed["last_error"]


def test_non_dict_result_is_a_failed_attempt(engine, registry, queue):
    jid = queue.enqueue("bad_result").id
    with running_worker(engine, registry):
        failed = wait_status(engine, jid, "failed")
    assert "expected a dict" in failed["last_error"]


@pytest.mark.parametrize("job_type", ["sleepy", "stubborn", "async_sleep"])
def test_timeout_counts_as_a_failed_attempt(engine, registry, queue, job_type):
    jid = queue.enqueue(job_type, {"seconds": 30}, timeout_s=0.3, max_attempts=2).id
    with running_worker(engine, registry, concurrency=4, shutdown_grace_s=0.2):
        failed = wait_status(engine, jid, "failed", timeout=20)
    entries = logs(engine, jid)
    assert [e["status"] for e in entries] == ["timeout", "timeout"]
    assert all(e["duration_ms"] < 5000 for e in entries)
    assert "timed out after 0.3s" in failed["last_error"]


def test_cancel_pending_job_never_runs(engine, registry, queue):
    from datetime import UTC, datetime

    jid = queue.enqueue("noop", run_at=datetime.now(UTC) + timedelta(hours=1)).id
    assert JobAdmin(engine).cancel(jid) == "cancelled"
    assert job(engine, jid)["status"] == "cancelled"
    with pytest.raises(InvalidTransition):
        JobAdmin(engine).cancel(jid)
    assert logs(engine, jid) == []


def test_cancel_running_job_stops_it(engine, registry, queue, tmp_path):
    marker = tmp_path / "started"
    jid = queue.enqueue("sleepy", {"seconds": 60, "startedFile": str(marker)}).id
    with running_worker(engine, registry):
        wait_until(marker.exists, message="handler start")
        assert JobAdmin(engine).cancel(jid) == "cancel_requested"
        done = wait_status(engine, jid, "cancelled", timeout=10)
    assert done["attempts"] == 1
    assert [e["status"] for e in logs(engine, jid)] == ["cancelled"]


def test_run_now_makes_a_future_job_due(engine, registry, queue):
    from datetime import UTC, datetime

    jid = queue.enqueue("noop", run_at=datetime.now(UTC) + timedelta(days=1)).id
    with running_worker(engine, registry):
        JobAdmin(engine).run_now(jid)
        wait_status(engine, jid, "completed")


def test_scheduled_for_reaches_the_handler(engine, registry, queue):
    from datetime import UTC, datetime

    tick = datetime(2026, 1, 19, 6, 0, tzinfo=UTC)
    jid = queue.enqueue("sleepy", {"seconds": 0}, scheduled_for=tick).id
    with running_worker(engine, registry):
        done = wait_status(engine, jid, "completed")
    assert done["result"]["scheduledFor"] == tick.isoformat()
    assert logs(engine, jid)[0]["metadata"]["scheduledFor"] == tick.isoformat()


def test_an_idle_worker_polls_instead_of_spinning(engine, registry):
    """With nothing due, a worker makes about one round trip per poll interval: an
    empty claim must not trigger the next one at once (it would load the database
    with a tight loop of empty claims)."""
    with running_worker(engine, registry, poll_s=0.05, listen=False) as worker:
        calls = []
        real = worker.store.finish_and_claim

        def counted(*args):
            calls.append(args)
            return real(*args)

        worker.store.finish_and_claim = counted
        start = worker.idle_waits
        wait_until(lambda: worker.idle_waits >= start + 10, message="ten idle polls")
        waits = worker.idle_waits - start
    assert 1 <= len(calls) <= waits + 2, (len(calls), waits)


def test_worker_options_read_the_poll_settings(tmp_path):
    settings = Settings(data_dir=tmp_path, job_poll_s=7.0, job_sqlite_poll_s=0.3)
    opts = WorkerOptions.from_settings(settings)
    assert (opts.poll_s, opts.sqlite_poll_s) == (7.0, 0.3)
