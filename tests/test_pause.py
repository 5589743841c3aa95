"""`superseller pause` / `resume`: nothing claimed or scheduled while paused, nothing lost,
missed ticks caught up on resume by each schedule's misfire policy."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from superseller.db.schema import jobs, schedule_occurrences
from superseller.jobs import pause
from superseller.jobs.clock import ManualClock
from superseller.jobs.queue import Queue
from superseller.jobs.scheduler import Scheduler
from superseller.jobs.worker import Worker, WorkerOptions
from tests.support.cli import cli
from tests.support.handlers import build_registry
from tests.support.inproc import FAST, running_worker, wait_status
from tests.support.waiting import wait_until

T0 = datetime(2026, 1, 19, 3, 0, tzinfo=UTC)  # 00:00 in São Paulo


def burst(engine, registry, clock=None) -> int:
    worker = Worker(engine, registry, WorkerOptions(**{**FAST, "burst": True}), clock=clock)
    worker.run()
    return worker.processed


def outcomes(engine):
    with engine.connect() as conn:
        return [
            (r.fire_time, r.outcome)
            for r in conn.execute(
                select(schedule_occurrences).order_by(schedule_occurrences.c.fire_time)
            )
        ]


def test_a_paused_worker_claims_nothing_and_loses_nothing(engine):
    reg = build_registry()
    pause.set_paused(engine, True, "saving money at night")
    assert pause.state(engine)["reason"] == "saving money at night"
    ids = [Queue(engine, reg).enqueue("noop").id for _ in range(5)]
    assert burst(engine, reg) == 0
    with engine.connect() as conn:
        assert set(conn.execute(select(jobs.c.status).where(jobs.c.id.in_(ids))).scalars()) == {
            "pending"
        }
    pause.set_paused(engine, False)
    assert burst(engine, reg) == 5


def _status(engine, job_id):
    with engine.connect() as conn:
        return conn.execute(select(jobs.c.status).where(jobs.c.id == job_id)).scalar_one()


def test_a_running_worker_stops_claiming_on_pause_and_picks_up_on_resume(engine, caplog):
    reg = build_registry()
    caplog.set_level("INFO", logger="superseller.jobs.worker")

    def said(words):
        return any(words in r.getMessage() for r in caplog.records)

    with running_worker(engine, reg) as worker:
        first = Queue(engine, reg).enqueue("noop").id
        wait_status(engine, first, "completed")
        pause.set_paused(engine, True)
        # The worker reads the flag at most once a second and says when it sees a change.
        wait_until(lambda: said("sees the engine paused"), message="the worker to see the pause")
        held = Queue(engine, reg).enqueue("noop").id
        looked = worker.idle_waits
        # The job is due, yet three trips round the worker's loop later it is still pending.
        wait_until(lambda: worker.idle_waits >= looked + 3, message="three idle loops")
        assert _status(engine, held) == "pending"
        pause.set_paused(engine, False)
        wait_status(engine, held, "completed")
        assert said("sees the engine resumed")


@pytest.mark.parametrize(
    "policy, expected",
    [
        ("latest", ["missed", "missed", "enqueued"]),
        ("all", ["enqueued", "enqueued", "enqueued"]),
        ("skip", ["missed", "missed", "missed"]),
    ],
)
def test_ticks_missed_while_paused_meet_the_misfire_policy_on_resume(engine, policy, expected):
    clock = ManualClock(T0)
    sched = Scheduler(engine, build_registry(), clock)
    sched.schedules.create("daily", "noop", "0 3 * * *", misfire_policy=policy)
    pause.set_paused(engine, True, clock=clock)
    for _ in range(3):  # three nights paused, a scheduler pass every hour would do nothing
        clock.advance(timedelta(days=1))
        assert sched.run_pass().enqueued == 0
    assert outcomes(engine) == []
    clock.advance(timedelta(hours=1))
    pause.set_paused(engine, False, clock=clock)
    sched.run_pass()
    assert [o for _, o in outcomes(engine)] == expected
    assert len({t for t, _ in outcomes(engine)}) == 3  # each night recorded once


def test_pause_and_resume_from_the_cli(db_url, engine):
    cli(db_url, "pause", "--reason", "manutenção", check=True)
    assert (pause.state(engine)["paused"], pause.state(engine)["reason"]) == (True, "manutenção")
    stats = cli(db_url, "jobs", "stats", check=True).stdout
    assert "PAUSED" in stats
    cli(db_url, "resume", check=True)
    assert pause.state(engine)["paused"] is False


def _statuses(engine, ids):
    with engine.connect() as conn:
        return set(conn.execute(select(jobs.c.status).where(jobs.c.id.in_(ids))).scalars())


def test_a_paused_queue_waits_while_other_queues_run_and_runs_once_resumed(engine):
    reg = build_registry()
    state = pause.set_queue_paused(engine, "slow", True, "the marketplace is down")
    [paused] = state["pausedQueues"]
    assert (paused["queue"], paused["reason"], paused["actor"]) == (
        "slow",
        "the marketplace is down",
        "cli",
    )
    assert state["paused"] is False  # the engine itself runs
    q = Queue(engine, reg)
    held = [q.enqueue("noop", queue="slow").id for _ in range(3)]
    others = [q.enqueue("noop", queue=name).id for name in ("default", "fast", "default")]
    assert burst(engine, reg) == 3
    assert _statuses(engine, others) == {"completed"}
    assert _statuses(engine, held) == {"pending"}
    # A worker serving only the paused queue has nothing to claim.
    only_slow = Worker(engine, reg, WorkerOptions(**{**FAST, "burst": True, "queues": ["slow"]}))
    only_slow.run()
    assert only_slow.processed == 0
    assert pause.set_queue_paused(engine, "slow", False)["pausedQueues"] == []
    assert burst(engine, reg) == 3
    assert _statuses(engine, held) == {"completed"}


def test_a_running_worker_sees_a_queue_paused_and_resumed(engine, caplog):
    reg = build_registry()
    caplog.set_level("INFO", logger="superseller.jobs.worker")

    def said(words):
        return any(words in r.getMessage() for r in caplog.records)

    with running_worker(engine, reg) as worker:
        pause.set_queue_paused(engine, "slow", True)
        wait_until(lambda: said("sees paused queues: slow"), message="the worker to see it")
        held = Queue(engine, reg).enqueue("noop", queue="slow").id
        other = Queue(engine, reg).enqueue("noop").id
        wait_status(engine, other, "completed")
        looked = worker.idle_waits
        wait_until(lambda: worker.idle_waits >= looked + 3, message="three idle loops")
        assert _status(engine, held) == "pending"
        pause.set_queue_paused(engine, "slow", False)
        wait_status(engine, held, "completed")
        assert said("sees paused queues: none")


def test_pausing_a_queue_is_audited_and_bounded(engine):
    from superseller.jobs import audit
    from superseller.limits import LimitError

    pause.set_queue_paused(engine, "slow", True, "quota", actor="ops@superseller.dev")
    pause.set_queue_paused(engine, "slow", True, "quota again")  # again: new reason and actor
    [row] = pause.state(engine)["pausedQueues"]
    assert (row["reason"], row["actor"]) == ("quota again", "cli")
    pause.set_queue_paused(engine, "slow", False, actor="internal-key")
    pause.set_queue_paused(engine, "never-paused", False)  # resuming a running queue: a no-op
    trail = [(e["actor"], e["action"], e["target_id"]) for e in audit.entries(engine)]
    assert trail[:3] == [
        ("cli", "queue.resume", "never-paused"),
        ("internal-key", "queue.resume", "slow"),
        ("cli", "queue.pause", "slow"),
    ]
    for bad in ("", "q" * 101):
        with pytest.raises(LimitError):
            pause.set_queue_paused(engine, bad, True)
    with pytest.raises(LimitError):
        pause.set_queue_paused(engine, "slow", True, "r" * 501)
    assert pause.state(engine)["pausedQueues"] == []


def test_pause_and_resume_one_queue_from_the_cli(db_url, engine):
    from superseller.jobs import audit

    me = audit.cli_actor()  # `cli:<OS user>`, the user this test (and its CLI) runs as
    cli(db_url, "jobs", "pause", "--queue", "slow", "--reason", "cota", check=True)
    assert [(q["queue"], q["reason"], q["actor"]) for q in pause.state(engine)["pausedQueues"]] == [
        ("slow", "cota", me)
    ]
    assert pause.state(engine)["paused"] is False
    stats = cli(db_url, "jobs", "stats", check=True).stdout
    assert "queue slow PAUSED" in stats and "engine PAUSED" not in stats
    bad = cli(db_url, "pause", "--queue", "q" * 101)
    assert bad.returncode != 0 and "at most 100" in bad.stderr and "Traceback" not in bad.stderr
    cli(db_url, "resume", "--queue", "slow", check=True)
    assert pause.state(engine)["pausedQueues"] == []
    trail = [(e["actor"], e["action"], e["target_id"]) for e in audit.entries(engine, limit=2)]
    assert trail == [(me, "queue.resume", "slow"), (me, "queue.pause", "slow")]
