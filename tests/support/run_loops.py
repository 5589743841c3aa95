"""Real processes running the product's loops with the test job types:

    python -m tests.support.run_loops scheduler URL     # Scheduler.run_forever, as `serve --role scheduler`
    python -m tests.support.run_loops serve URL PORT    # run_server(...), as `serve --role all`

Settings (JOB_HEARTBEAT_S, JOB_RESCUE_AFTER_S, ...) come from the environment."""

from __future__ import annotations

import logging
import signal
import sys

from superseller.config import Settings
from superseller.db.engine import make_engine
from superseller.jobs.clock import SystemClock
from superseller.jobs.scheduler import Scheduler
from tests.support.handlers import build_registry


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    role, url = sys.argv[1], sys.argv[2]
    engine = make_engine(url)
    if role == "scheduler":
        scheduler = Scheduler(engine, build_registry())
        signal.signal(signal.SIGTERM, lambda *_: scheduler.stop())
        signal.signal(signal.SIGINT, lambda *_: scheduler.stop())
        print("ready", flush=True)
        scheduler.run_forever(float(sys.argv[3]) if len(sys.argv) > 3 else 15.0)
        return 0
    from superseller.api.deps import Services
    from superseller.cli.serve_cmd import run_server

    svc = Services(
        settings=Settings(database_url=url),
        engine=engine,
        registry=build_registry(),
        clock=SystemClock(),
    )
    run_server(svc, "127.0.0.1", int(sys.argv[3]), True, True, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
