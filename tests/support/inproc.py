"""Run a worker in a thread of the test process, with fast test timings."""

from __future__ import annotations

import contextlib
import threading

from sqlalchemy import Engine, select

from superseller.db.schema import job_logs, jobs
from superseller.jobs.worker import Worker, WorkerOptions
from tests.support.waiting import wait_until

FAST = dict(
    heartbeat_s=0.1, rescue_after_s=5.0, poll_s=0.05, retry_base_s=0.05, shutdown_grace_s=2.0
)


@contextlib.contextmanager
def running_worker(engine: Engine, registry, clock=None, **options):
    opts = WorkerOptions(**{**FAST, **options})
    worker = Worker(engine, registry, opts, clock=clock)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "worker did not stop"


def job(engine: Engine, job_id: int) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(jobs).where(jobs.c.id == job_id)).one()._mapping)


def logs(engine: Engine, job_id: int) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(job_logs).where(job_logs.c.job_id == job_id).order_by(job_logs.c.id)
        ).all()
    return [dict(r._mapping) for r in rows]


def wait_status(engine: Engine, job_id: int, *states: str, timeout: float = 15.0) -> dict:
    return wait_until(
        lambda: (j := job(engine, job_id))["status"] in states and j,
        timeout=timeout,
        message=f"job {job_id} to reach {states}",
    )
