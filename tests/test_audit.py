"""The audit trail records what the scheduler did on its own (actor `scheduler`): each tick
it enqueued, skipped (the previous run still busy) or missed (downtime), with the job and
the reason, in the same transaction as the ledger."""

from datetime import UTC, datetime, timedelta

from superseller.jobs import audit
from superseller.jobs.clock import ManualClock
from superseller.jobs.scheduler import Scheduler
from tests.support.handlers import build_registry

T0 = datetime(2026, 1, 19, 3, 0, tzinfo=UTC)  # 00:00 in São Paulo


def test_the_scheduler_is_the_actor_of_what_it_enqueues_skips_and_misses(engine):
    clock = ManualClock(T0)
    sched = Scheduler(engine, build_registry(), clock)
    sched.schedules.create("daily", "noop", "0 3 * * *", misfire_policy="latest")
    clock.advance(timedelta(days=2, hours=1))  # 01:00 on the 21st: the 19th and 20th are due
    assert sched.run_pass().enqueued == 1
    clock.advance(timedelta(days=1))  # the 21st's tick, while the 20th's job is still pending
    assert sched.run_pass().skipped == 1

    trail = audit.entries(engine, actor=audit.SCHEDULER)
    by_tick = {e["detail"]["fireTime"]: e for e in trail}
    assert {e["action"] for e in trail} == {"schedule.miss", "schedule.enqueue", "schedule.skip"}
    day = lambda d: (T0 + timedelta(days=d, hours=3)).isoformat()  # noqa: E731
    assert by_tick[day(0)]["action"] == "schedule.miss"
    enqueued = by_tick[day(1)]
    assert enqueued["action"] == "schedule.enqueue" and isinstance(enqueued["detail"]["jobId"], int)
    skipped = by_tick[day(2)]
    assert skipped["action"] == "schedule.skip" and "still pending" in skipped["detail"]["reason"]
    assert {(e["target_type"], e["target_id"]) for e in trail} == {("schedule", "daily")}
    assert sched.run_pass().enqueued == 0
    assert len(audit.entries(engine, actor=audit.SCHEDULER)) == 3  # nothing recorded twice
