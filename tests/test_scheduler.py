"""The scheduler: exactly once per tick across processes, misfire and overlap policies,
deadlines, backfill, run-now, default schedules, validation."""

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from superseller.db.schema import job_schedules, jobs, schedule_occurrences
from superseller.jobs import JobType
from superseller.jobs.clock import ManualClock
from superseller.jobs.cron import InvalidSchedule
from superseller.jobs.default_schedules import ensure_defaults
from superseller.jobs.scheduler import Scheduler
from superseller.jobs.schedules import ScheduleNotFound, Schedules
from tests.support.handlers import build_registry
from tests.support.procs import ROOT, start_worker
from tests.support.waiting import wait_until

# 2026-01-19 00:00 in São Paulo (UTC-3).
T0 = datetime(2026, 1, 19, 3, 0, tzinfo=UTC)


def ledger(engine, name=None):
    stmt = select(
        schedule_occurrences.c.fire_time,
        schedule_occurrences.c.outcome,
        schedule_occurrences.c.job_id,
    ).order_by(schedule_occurrences.c.fire_time)
    if name:
        stmt = stmt.join(job_schedules).where(job_schedules.c.name == name)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(stmt)]


def scheduled_jobs(engine):
    with engine.connect() as conn:
        return conn.execute(
            select(jobs.c.id, jobs.c.scheduled_for, jobs.c.status)
            .where(jobs.c.schedule_id.isnot(None))
            .order_by(jobs.c.id)
        ).all()


@pytest.fixture
def clock():
    return ManualClock(T0)


@pytest.fixture
def sched(engine, clock):
    return Scheduler(engine, build_registry(), clock)


def make(sched, name="daily", cron="0 3 * * *", job_type="noop", **options):
    return sched.schedules.create(name, job_type, cron, **options)


def set_clock(path, when: datetime) -> None:
    """Atomically: the scheduler processes read this file on every clock look-up."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(when.isoformat())
    os.replace(tmp, path)


def test_three_scheduler_processes_enqueue_each_of_48_hourly_ticks_once(engine, db_url, tmp_path):
    clock_file = tmp_path / "clock"
    set_clock(clock_file, T0)
    Schedules(engine, build_registry(), ManualClock(T0)).create(
        "hourly", "noop", "0 * * * *", misfire_policy="all", overlap_policy="allow"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.support.run_scheduler", db_url, str(clock_file)], cwd=ROOT
        )
        for _ in range(3)
    ]
    try:
        for hour in range(1, 49):
            set_clock(clock_file, T0 + timedelta(hours=hour, seconds=1))
            wait_until(
                lambda h=hour: len(ledger(engine)) >= h, timeout=30, message=f"tick {hour} recorded"
            )
    finally:
        (tmp_path / "clock.stop").write_text("")
        for p in procs:
            assert p.wait(30) == 0
    rows = ledger(engine)
    assert len(rows) == 48 and {r[1] for r in rows} == {"enqueued"}
    assert [r[0] for r in rows] == [T0 + timedelta(hours=h) for h in range(1, 49)]
    found = scheduled_jobs(engine)
    assert len(found) == 48
    assert sorted(j.scheduled_for for j in found) == [r[0] for r in rows]


@pytest.mark.parametrize(
    ("policy", "enqueued", "missed"), [("latest", 1, 2), ("all", 3, 0), ("skip", 0, 3)]
)
def test_misfire_policies_after_three_days_down(engine, sched, clock, policy, enqueued, missed):
    make(sched, misfire_policy=policy, overlap_policy="allow")
    clock.advance(timedelta(days=3, hours=2))  # 02:00 local on the 22nd: 19th, 20th, 21st missed
    result = sched.run_pass()
    assert (result.enqueued, result.missed) == (enqueued, missed)
    rows = ledger(engine)
    assert len(rows) == 3  # every tick is in the ledger, whatever the policy
    assert [r[0] for r in rows] == [T0 + timedelta(days=d, hours=3) for d in range(3)]
    if policy == "latest":
        assert [r[1] for r in rows] == ["missed", "missed", "enqueued"]
    assert sched.run_pass().enqueued == 0  # nothing twice


def test_latest_never_runs_a_stale_tick_however_many_were_missed(engine, sched, clock):
    # Every minute, 8 days down: 11,520 missed ticks, more than one pass takes at once.
    make(sched, "minutely", cron="* * * * *", misfire_policy="latest", overlap_policy="allow")
    clock.advance(timedelta(days=8, seconds=30))
    for _ in range(3):  # two passes take every tick; the third finds nothing due
        sched.run_pass()
    grace = timedelta(seconds=300)
    enqueued = [r.scheduled_for for r in scheduled_jobs(engine)]
    assert enqueued, "the ticks inside the grace period run"
    assert all(clock.now() - t <= grace for t in enqueued), [
        t for t in enqueued if clock.now() - t > grace
    ]
    assert len(ledger(engine)) == 8 * 24 * 60  # every tick recorded all the same


def test_on_time_ticks_run_and_the_job_carries_its_tick(engine, sched, clock):
    make(sched)
    clock.advance(timedelta(hours=3, seconds=20))
    assert sched.run_pass().enqueued == 1
    [job] = scheduled_jobs(engine)
    assert job.scheduled_for == datetime(2026, 1, 19, 6, 0, tzinfo=UTC)  # 03:00 BRT
    s = sched.schedules.get("daily")
    assert s["next_run_at"] == datetime(2026, 1, 20, 6, 0, tzinfo=UTC).isoformat()


@pytest.mark.parametrize(
    ("policy", "busy", "enqueued"),
    [
        ("skip", "running", 0),
        ("skip", "pending", 0),
        ("queue_one", "running", 1),
        ("queue_one", "pending", 0),
        ("allow", "running", 1),
    ],
)
def test_overlap_policy(engine, sched, clock, policy, busy, enqueued):
    make(sched, cron="0 * * * *", overlap_policy=policy)
    clock.advance(timedelta(hours=1, seconds=5))
    assert sched.run_pass().enqueued == 1
    with engine.begin() as conn:
        conn.execute(update(jobs).values(status=busy))
    clock.advance(timedelta(hours=1))
    result = sched.run_pass()
    assert result.enqueued == enqueued and result.skipped == 1 - enqueued
    if not enqueued:
        assert ledger(engine)[-1][1] == "skipped"


def test_deadline_lateness(engine, sched, clock):
    make(sched, deadline_s=3 * 3600)  # must succeed by 06:00 local
    clock.advance(timedelta(hours=3, seconds=1))
    sched.run_pass()
    # The only tick (03:00 local) has until 06:00: nothing can be late yet.
    assert sched.lateness("daily") == {"late": False, "tick": None}
    clock.advance(timedelta(hours=3))  # 06:00:01 local, job never ran
    late = sched.lateness("daily")
    assert late["late"] is True and late["tick"] == "2026-01-19T06:00:00+00:00"
    with engine.begin() as conn:
        conn.execute(update(jobs).values(status="completed"))
    assert sched.lateness("daily")["late"] is False
    assert sched.lateness(sched._row("daily")) is not None
    make(sched, name="nodeadline")
    assert sched.lateness("nodeadline") is None


def test_backfill_modes(engine, sched, clock):
    make(sched, misfire_policy="skip")
    clock.advance(timedelta(days=4, hours=1))  # ticks 19th-22nd at 03:00 local all missed
    sched.run_pass()
    assert [r[1] for r in ledger(engine)] == ["missed"] * 4
    done = sched.backfill("daily", date(2026, 1, 19), date(2026, 1, 20), "missing")
    assert len(done) == 2
    assert [r[1] for r in ledger(engine)] == ["backfilled"] * 2 + ["missed"] * 2
    assert sched.backfill("daily", date(2026, 1, 19), date(2026, 1, 20), "missing") == []
    # Fail one backfilled job: mode failed picks exactly that tick.
    first_job = ledger(engine)[0][2]
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == first_job).values(status="failed"))
    again = sched.backfill("daily", date(2026, 1, 19), date(2026, 1, 22), "failed")
    assert [d["fireTime"] for d in again] == ["2026-01-19T06:00:00+00:00"]
    everything = sched.backfill("daily", date(2026, 1, 19), date(2026, 1, 22), "all")
    assert len(everything) == 4
    lock_keys = {
        j
        for (j,) in engine.connect().execute(
            select(jobs.c.lock_key).where(jobs.c.schedule_id.isnot(None))
        )
    }
    assert lock_keys <= {"backfill:daily:0", "backfill:daily:1"}  # bounded concurrency
    with pytest.raises(InvalidSchedule, match="mode"):
        sched.backfill("daily", date(2026, 1, 19), date(2026, 1, 20), "some")
    with pytest.raises(InvalidSchedule, match="after"):
        sched.backfill("daily", date(2026, 1, 20), date(2026, 1, 19))


def test_run_now_and_paused_schedule_keeps_its_ledger(engine, sched, clock):
    make(sched)
    job_id = sched.run_now("daily")
    assert ledger(engine)[0][1:] == ("enqueued", job_id)
    sched.schedules.set_enabled("daily", False)
    clock.advance(timedelta(days=2))
    assert sched.run_pass().enqueued == 0
    assert len(ledger(engine)) == 1
    s = sched.schedules.set_enabled("daily", True)
    assert datetime.fromisoformat(s["next_run_at"]) > clock.now()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cron": "99 * * * *"}, "invalid cron"),
        ({"timezone": "Nowhere/City"}, "unknown time zone"),
        ({"job_type": "nope"}, "unknown job type"),
        ({"misfire_policy": "sometimes"}, "misfire policy"),
        ({"overlap_policy": "maybe"}, "overlap policy"),
        ({"payload": {"batchSize": 0}, "job_type": "cleanup"}, "batchSize"),
        ({"deadline_s": -5}, "deadline_s"),
    ],
)
def test_invalid_schedule_input(sched, kwargs, message):
    args = {"cron": "0 3 * * *", "job_type": "noop", **kwargs}
    with pytest.raises(Exception, match=message):
        sched.schedules.create("x", args.pop("job_type"), args.pop("cron"), **args)
    with pytest.raises(ScheduleNotFound):
        sched.schedules.get("x")


def test_duplicate_name_and_update_validation(sched):
    make(sched)
    with pytest.raises(InvalidSchedule, match="already exists"):
        make(sched)
    with pytest.raises(InvalidSchedule, match="invalid cron"):
        sched.schedules.update("daily", cron="0 3 * * nope")
    updated = sched.schedules.update("daily", cron="cron(0 6 * * ? *)", timezone="UTC")
    assert updated["cron"] == "0 6 * * *" and updated["timezone"] == "UTC"


def test_default_schedules_are_idempotent_and_follow_installed_types(engine, clock):
    reg = build_registry()
    first = ensure_defaults(engine, reg, clock)
    assert "created daily-cleanup" in first
    assert "created daily-metrics-rebuild (disabled)" in first
    assert ensure_defaults(engine, reg, clock) == []
    rows = {s["name"]: s for s in Schedules(engine, reg, clock).list()}
    assert rows["daily-cleanup"]["enabled"] and rows["daily-cleanup"]["cron"] == "0 3 * * *"
    assert rows["daily-metrics-rebuild"]["disabled_reason"] == "job type not installed"
    assert rows["weekly-stats"]["cron"] == "0 4 * * 0"
    reg.add(JobType("metrics_aggregation", lambda ctx: None))
    assert ensure_defaults(engine, reg, clock) == ["enabled daily-metrics-rebuild"]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(job_schedules)).scalar() == 10


def test_scheduled_job_runs_on_a_worker(engine, db_url, sched, clock):
    make(sched, job_type="sleepy", payload={"seconds": 0})
    clock.advance(timedelta(hours=3, seconds=1))
    sched.run_pass()
    [job] = scheduled_jobs(engine)
    proc = start_worker(db_url, SS_WORKER_BURST="1")
    assert proc.wait(60) == 0
    with engine.connect() as conn:
        result = conn.execute(select(jobs.c.result).where(jobs.c.id == job.id)).scalar()
    assert result["scheduledFor"] == "2026-01-19T06:00:00+00:00"
