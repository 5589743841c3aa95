"""Network partitions between real hosts: each worker and scheduler runs in its own Linux
network namespace, reaching PostgreSQL over a veth pair that the test takes down
(tests/support/netns.py). PostgreSQL only. Skipped, with the reason, where the kernel or the
user cannot build namespaces; where they can (as root on this machine and in CI), they run.

- A worker host cut off mid-job: the other worker rescues the job after the rescue period;
  when the link returns, the cut-off worker's late outcome is refused by the fence (one
  success in the job's log, never two) and it carries on taking jobs.
- A scheduler host cut off: the other scheduler keeps every tick, exactly once."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from superseller.db.schema import jobs
from superseller.jobs.clock import ManualClock
from superseller.jobs.queue import JobSpec, Queue
from superseller.jobs.schedules import Schedules
from tests.support import netns
from tests.support.env import IN_CI
from tests.support.handlers import build_registry
from tests.support.inproc import job, logs
from tests.support.waiting import wait_until

T0 = datetime(2026, 1, 19, 3, 0, tzinfo=UTC)


@pytest.fixture
def hosts(backend):
    reason = netns.unavailable()
    if reason:
        if IN_CI:  # CI runs as root with iproute2 and socat (.ci/run installs them)
            pytest.fail(f"CI=true requires network namespaces: {reason}")
        pytest.skip(f"cannot build hosts with network namespaces here: {reason}")
    made: list[netns.Host] = []
    try:
        made.extend(netns.Host(n) for n in (1, 2))
        yield made
    finally:
        for h in made:
            h.close()


def _stop(proc, timeout: float = 30) -> int:
    proc.terminate()
    return proc.wait(timeout)


@pytest.mark.parametrize("backend", ["postgresql"])  # a PostgreSQL matter
def test_a_worker_host_cut_off_mid_job_is_rescued_fenced_and_carries_on(
    hosts, engine, db_url, tmp_path
):
    env = {"SS_WORKER_RESCUE_AFTER": 2, "SS_WORKER_CONCURRENCY": 2}
    procs = {
        h.ns: h.python(
            tmp_path / f"{h.ns}.log", "-m", "tests.support.run_worker", h.db_url(db_url), **env
        )
        for h in hosts
    }
    queue = Queue(engine, build_registry())
    marker = tmp_path / "started"
    try:
        jid = queue.enqueue("sleepy", {"seconds": 3, "startedFile": str(marker)}).id
        wait_until(marker.exists, timeout=30, message="the job to start on a worker host")
        pid = int(marker.read_text())
        victim = next(h for h in hosts if procs[h.ns].pid == pid)
        victim.cut()  # mid-job: it finishes the job alone, unable to say so
        done = wait_until(
            lambda: (j := job(engine, jid))["status"] == "completed" and j,
            timeout=60,
            message="the other worker to rescue and finish the job",
        )
        assert done["attempts"] == 2
        victim.restore()
        # It carries on: with the link back, the cut-off worker takes jobs again.
        runs = tmp_path / "runs"
        runs.mkdir()
        more = queue.enqueue_many(
            [
                JobSpec("sleepy", {"seconds": 0.3, "startedFile": str(runs / str(i))})
                for i in range(30)
            ]
        )

        def all_done() -> bool:
            with engine.connect() as conn:
                states = conn.execute(
                    select(jobs.c.status).where(jobs.c.id.in_([m.id for m in more]))
                ).scalars()
                return set(states) == {"completed"}

        wait_until(all_done, timeout=90, interval=0.2, message="the jobs after the cut")
        ran_on = {int(f.read_text()) for f in runs.iterdir()}
        assert pid in ran_on, "the cut-off worker took no job after the link came back"
    finally:
        codes = {ns: _stop(p) for ns, p in procs.items()}
    assert set(codes.values()) == {0}, {
        ns: (tmp_path / f"{ns}.log").read_text()[-2000:] for ns in procs
    }
    # The late outcome was refused: one success, after the rescue's "lost".
    assert [e["status"] for e in logs(engine, jid)] == ["lost", "success"]
    assert job(engine, jid)["attempts"] == 2


def _set_clock(path, when: datetime) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(when.isoformat())
    os.replace(tmp, path)


@pytest.mark.parametrize("backend", ["postgresql"])  # a PostgreSQL matter
def test_a_scheduler_host_cut_off_another_keeps_every_tick_once(hosts, engine, db_url, tmp_path):
    clock_file = tmp_path / "clock"
    _set_clock(clock_file, T0)
    Schedules(engine, build_registry(), ManualClock(T0)).create(
        "hourly", "noop", "0 * * * *", misfire_policy="all", overlap_policy="allow"
    )
    procs = [
        h.python(
            tmp_path / f"{h.ns}.log",
            "-m",
            "tests.support.run_scheduler_forever",
            h.db_url(db_url),
            str(clock_file),
            # A pass cut off mid-transaction holds its schedule's row lock (the other
            # scheduler skips locked schedules): PostgreSQL ends that session after this.
            DB_IDLE_IN_TRANSACTION_TIMEOUT_S=3,
        )
        for h in hosts
    ]

    def ticks() -> list:
        with engine.connect() as conn:
            return (
                conn.execute(select(jobs.c.scheduled_for).where(jobs.c.schedule_id.is_not(None)))
                .scalars()
                .all()
            )

    try:
        for hour in range(1, 25):
            if hour == 5:
                hosts[0].cut()
            if hour == 17:
                hosts[0].restore()
            _set_clock(clock_file, T0 + timedelta(hours=hour, seconds=1))
            wait_until(lambda h=hour: len(ticks()) >= h, timeout=60, message=f"tick {hour}")
    finally:
        (tmp_path / "clock.stop").write_text("")
        hosts[0].restore()
        codes = [p.wait(60) for p in procs]
    assert codes == [0, 0]
    assert sorted(ticks()) == [T0 + timedelta(hours=h) for h in range(1, 25)]
