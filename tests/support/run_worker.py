"""A real worker process with the test job types: `python -m tests.support.run_worker URL`.

Options come from SS_WORKER_* environment variables (floats in seconds)."""

from __future__ import annotations

import logging
import os
import sys

from superseller.db.engine import make_engine
from superseller.jobs.worker import Worker, WorkerOptions
from tests.support.handlers import build_registry


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    env = os.environ
    opts = WorkerOptions(
        concurrency=int(env.get("SS_WORKER_CONCURRENCY", "4")),
        burst=env.get("SS_WORKER_BURST") == "1",
        heartbeat_s=float(env.get("SS_WORKER_HEARTBEAT", "0.2")),
        rescue_after_s=float(env.get("SS_WORKER_RESCUE_AFTER", "2")),
        poll_s=float(env.get("SS_WORKER_POLL", "0.1")),
        shutdown_grace_s=float(env.get("SS_WORKER_GRACE", "5")),
        listen=env.get("SS_WORKER_LISTEN", "1") == "1",
    )
    engine = make_engine(sys.argv[1])
    print("ready", flush=True)
    return Worker(engine, build_registry(), opts).run()


if __name__ == "__main__":
    sys.exit(main())
