"""The engine's processes in a simulation: `python -m superseller.simulation.proc
worker|scheduler|api CONFIG`. The same Worker and Scheduler as `superseller worker` /
`superseller scheduler`, and the same API app as `superseller serve` (the Mercado Livre
webhook and /metrics), on the simulated clock (the only difference), so the driver can
SIGKILL and restart them for real."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

from superseller.simulation.clock import SimClock


def engine_settings(cfg: dict):
    from superseller.config import Settings

    return Settings(
        data_dir=Path(cfg["data_dir"]),
        database_url=cfg["database_url"],
        database_pooler_url="",  # exactly the simulation's database, never the environment's
        ml_api_url=cfg["ml_url"],
        ml_auth_url=f"{cfg['ml_url']}/authorization",
        ml_client_id="sandbox-app",
        ml_client_secret="sandbox-secret",
        ml_redirect_uri="http://127.0.0.1/mercadolivre/callback",
        ml_requests_per_s=0,
        ml_concurrency=8,
        ml_backfill_days=cfg["backfill_days"],
        token_encryption_key=cfg["token_key"],
        job_heartbeat_s=cfg["heartbeat_s"],
        job_rescue_after_s=cfg["rescue_after_s"],
        job_sqlite_poll_s=0.05,
        job_poll_s=0.2,
        openai_api_key=None,
    )


def _die_with_parent(driver: int) -> None:
    """A simulation's process ends when its driver does, however the driver ended (on
    Linux the kernel sees to it too: PR_SET_PDEATHSIG, set before this process started).
    `driver` is the driver's pid from the config, checked before the heavy imports: a
    driver gone meanwhile is noticed too (getppid() then names another process)."""
    if os.getppid() != driver:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == driver:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def main(argv: list[str]) -> int:
    role, config = argv
    cfg = json.loads(Path(config).read_text())
    _die_with_parent(cfg["driver_pid"])
    logging.basicConfig(
        filename=Path(cfg["data_dir"]) / f"{role}.log",
        level=logging.INFO,
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request: too many
    from superseller.jobs.scheduler import Scheduler
    from superseller.jobs.worker import Worker, WorkerOptions
    from superseller.simulation.guard import sim_engine
    from superseller.wiring import build_registry

    settings = engine_settings(cfg)
    clock = SimClock(Path(cfg["clock_file"]))
    engine = sim_engine(cfg["database_url"])
    registry = build_registry(settings)
    if role == "worker":
        opts = WorkerOptions.from_settings(settings, concurrency=cfg["concurrency"])
        return Worker(engine, registry, opts, clock=clock).run()
    if role == "api":
        return _serve_api(settings, engine, registry, clock, cfg["api_port"])
    scheduler = Scheduler(engine, registry, clock=clock)
    # The clock's jumps wake it (SimClock.wait); between them it sleeps until its next tick
    # at 1x, looking at least once a second.
    scheduler.run_forever(interval_s=1.0)
    return 0


def _serve_api(settings, engine, registry, clock, port: int) -> int:
    import uvicorn

    from superseller.api.app import create_app, uvicorn_options
    from superseller.http.deps import Services

    app = create_app(Services(settings=settings, engine=engine, registry=registry, clock=clock))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", **uvicorn_options(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
