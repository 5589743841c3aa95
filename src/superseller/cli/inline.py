"""Run one job now, through the real engine, from the command line.

The job goes to a private queue that an in-process burst worker drains, so it
gets its job_logs row, retries and time-outs like any other run, and no other
job is touched.
"""

from __future__ import annotations

import threading
import uuid

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine

from superseller.cli.common import console, engine, registry
from superseller.config import Settings, get_settings
from superseller.jobs.admin import JobAdmin
from superseller.jobs.queue import Queue
from superseller.jobs.registry import Registry
from superseller.jobs.worker import Worker, WorkerOptions


def run_job_now(
    job_type: str,
    payload: dict,
    tenant_id: str | None,
    label: str,
    max_attempts: int = 1,
    *,
    eng: Engine | None = None,
    reg: Registry | None = None,
    settings: Settings | None = None,
) -> dict:
    eng, reg = eng or engine(), reg or registry()
    queue = f"cli-{uuid.uuid4().hex[:8]}"
    job_id = (
        Queue(eng, reg)
        .enqueue(job_type, payload, tenant_id=tenant_id, queue=queue, max_attempts=max_attempts)
        .id
    )
    opts = WorkerOptions.from_settings(
        settings or get_settings(), concurrency=1, queues=[queue], burst=True, listen=False
    )
    worker = Worker(eng, reg, opts)
    thread = threading.Thread(target=worker.run, daemon=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=None)
        thread.start()
        while thread.is_alive():
            running = worker._inflight.get(job_id)
            done = running.ctx.records_processed if running else 0
            progress.update(task, description=f"{label} (job {job_id}): {done} records")
            thread.join(0.2)
    return JobAdmin(eng).get(job_id)
