"""The simulation's clock: a jump wakes a scheduler sleeping until its next tick (the
simulation's time advances in jumps, and a scheduler that slept on would leave the
engine's time running at 1x with nothing happening); the system clock's sleep is a
plain wait, ended by a stop request."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from superseller.db.schema import jobs
from superseller.jobs.clock import SystemClock, sleep
from superseller.jobs.scheduler import Scheduler
from superseller.simulation.clock import SimClock
from tests.support.handlers import build_registry
from tests.support.waiting import wait_until

T0 = datetime(2026, 3, 2, 10, 5, tzinfo=UTC)  # 07:05 in São Paulo


class WatchedClock(SimClock):
    """A SimClock that says when a caller starts waiting on it."""

    def __init__(self, path):
        super().__init__(path)
        self.waiting = threading.Event()

    def wait(self, stop, timeout):
        self.waiting.set()
        return super().wait(stop, timeout)


def enqueued(engine) -> datetime | None:
    """The tick of the job the scheduler enqueued, if any."""
    with engine.connect() as conn:
        return conn.execute(select(jobs.c.scheduled_for).where(jobs.c.type == "noop")).scalar()


def test_a_jump_wakes_the_scheduler_sleeping_until_its_next_tick(engine, tmp_path):
    clock = WatchedClock(tmp_path / "clock")
    clock.set(T0)
    sched = Scheduler(engine, build_registry(), clock)
    sched.schedules.create("hourly", "noop", "0 * * * *")  # next tick 08:00, 55 min away
    runner = threading.Thread(target=sched.run_forever, kwargs={"interval_s": 3600})
    runner.start()
    try:
        wait_until(clock.waiting.is_set, message="the scheduler asleep until its tick")
        assert enqueued(engine) is None
        clock.set(T0 + timedelta(minutes=55))  # the driver jumps to the tick
        # Without the wake it would sleep ~55 minutes of wall time before enqueuing.
        wait_until(
            lambda: enqueued(engine) == T0 + timedelta(minutes=55),
            message="the tick's job enqueued after the jump",
        )
    finally:
        sched.stop()
        runner.join(10)
    assert not runner.is_alive()  # a stop request still ends its sleep


def test_the_simulated_clock_wait_ends_on_a_set_on_stop_or_at_its_timeout(tmp_path):
    clock = SimClock(tmp_path / "clock")
    clock.set(T0)
    clock.now()  # what this process saw
    stop = threading.Event()
    assert clock.wait(stop, 0.05) is False  # nothing happened: the timeout
    threading.Timer(0.05, lambda: clock.set(T0 + timedelta(hours=1))).start()
    assert clock.wait(stop, 60) is False  # the jump ends it (long before 60 s)
    assert clock.now() >= T0 + timedelta(hours=1)
    threading.Timer(0.05, stop.set).start()
    assert clock.wait(stop, 60) is True


def test_the_system_clock_sleep_is_a_plain_wait_ended_by_stop():
    stop = threading.Event()
    assert sleep(SystemClock(), stop, 0.01) is False
    threading.Timer(0.05, stop.set).start()
    assert sleep(SystemClock(), stop, 60) is True
