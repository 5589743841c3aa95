"""Job types used by the engine tests (registered only in tests)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from superseller.jobs import JobContext, JobType, PermanentJobError, Registry, cleanup


def _trace_dir() -> Path | None:
    d = os.environ.get("SS_TEST_TRACE_DIR")
    return Path(d) if d else None


def noop(ctx: JobContext) -> dict:
    ctx.add_records(1)
    return {"ok": True}


def trace(ctx: JobContext) -> dict:
    """Record (job id, lock key, start, end) to a per-process file, to prove exactly-once
    execution and lock_key exclusivity across processes."""
    start = time.time_ns()
    hold = float(ctx.raw_payload.get("holdMs", 0)) / 1000
    if hold:
        time.sleep(hold)
    end = time.time_ns()
    d = _trace_dir()
    if d is not None:
        with open(d / f"trace-{os.getpid()}.log", "a") as f:
            f.write(f"{ctx.job_id} {ctx.raw_payload.get('lock') or '-'} {start} {end}\n")
    return {"pid": os.getpid()}


def flaky(ctx: JobContext) -> dict:
    """Fail the first `failTimes` attempts."""
    if ctx.attempt <= int(ctx.raw_payload.get("failTimes", 0)):
        raise RuntimeError(f"planned failure on attempt {ctx.attempt}")
    return {"attempt": ctx.attempt}


def sleepy(ctx: JobContext) -> dict:
    """Sleep cooperatively: stops when cancelled (or put back on shutdown)."""
    seconds = float(ctx.raw_payload.get("seconds", 1))
    marker = ctx.raw_payload.get("startedFile")
    if marker:
        Path(marker).write_text(str(os.getpid()))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ctx.raise_if_cancelled()
        ctx.wait(min(0.05, max(0.0, deadline - time.monotonic())))
    ctx.add_records(1)
    return {
        "slept": seconds,
        "scheduledFor": ctx.scheduled_for.isoformat() if ctx.scheduled_for else None,
    }


def stubborn(ctx: JobContext) -> dict:
    """Ignores cancellation entirely."""
    time.sleep(float(ctx.raw_payload.get("seconds", 1)))
    return {"done": True}


async def async_sleep(ctx: JobContext) -> dict:
    await asyncio.sleep(float(ctx.raw_payload.get("seconds", 1)))
    return {"done": True}


def permanent(ctx: JobContext) -> dict:
    raise PermanentJobError("this cannot work")


def bad_result(ctx: JobContext):
    return ["not", "a", "dict"]


def build_registry() -> Registry:
    reg = Registry()
    cleanup.register(reg)
    reg.add(JobType("noop", noop))
    reg.add(JobType("trace", trace, lock_key=lambda p, t: p.get("lock")))
    reg.add(JobType("flaky", flaky, retry_base_s=0.05))
    reg.add(JobType("flaky_default_backoff", flaky))
    reg.add(JobType("sleepy", sleepy, retry_base_s=0.05))
    reg.add(JobType("stubborn", stubborn, retry_base_s=0.05))
    reg.add(JobType("async_sleep", async_sleep, retry_base_s=0.05))
    reg.add(JobType("permanent", permanent))
    reg.add(JobType("bad_result", bad_result, max_attempts=1))
    reg.add(JobType("logged_as", noop, log_type="metrics_aggregation"))
    return reg
