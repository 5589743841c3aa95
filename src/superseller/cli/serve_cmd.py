"""`superseller serve`: the API, optionally with a worker and the scheduler in-process.

In-process loops are supervised (`superseller.jobs.supervise`): one that dies is logged
and restarted with back-off, and `/readyz` reports it (and a database they cannot
reach) until it runs and gets through to the database again."""

from __future__ import annotations

import signal

import typer
import uvicorn

from superseller import logs
from superseller.cli.common import CliError, engine, refuse_unsafe_settings, registry
from superseller.config import get_settings
from superseller.jobs.clock import SystemClock
from superseller.jobs.scheduler import Scheduler
from superseller.jobs.supervise import SupervisedLoop
from superseller.jobs.worker import Worker, WorkerOptions

ROLES = ("api", "worker", "scheduler", "all")

WORKER_EXPECTED_PERIOD_S = 30.0  # an idle worker reads the pause state every second
SCHEDULER_INTERVAL_S = 15.0
SCHEDULER_EXPECTED_PERIOD_S = 4 * SCHEDULER_INTERVAL_S


def serve(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000, min=1, max=65535),
    role: str = typer.Option("api", help="api | worker | scheduler | all (api + both)."),
    with_worker: bool = typer.Option(False, help="Also run jobs in this process."),
    with_scheduler: bool = typer.Option(False, help="Also turn cron ticks into jobs here."),
    concurrency: int = typer.Option(4, min=1, max=1000, help="Worker concurrency."),
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) and the dashboard, or run one process role.
    `--role all` suits small installs; the scheduler's ledger keeps it safe with replicas."""
    if role not in ROLES:
        raise CliError(f"--role must be one of {', '.join(ROLES)}", 2)
    refuse_unsafe_settings()
    logs.configure(get_settings().log_format)
    if role == "worker":
        raise typer.Exit(
            Worker(
                engine(),
                registry(),
                WorkerOptions.from_settings(get_settings(), concurrency=concurrency),
            ).run()
        )
    if role == "scheduler":
        scheduler = Scheduler(engine(), registry())
        signal.signal(signal.SIGTERM, lambda *_: scheduler.stop())
        signal.signal(signal.SIGINT, lambda *_: scheduler.stop())
        scheduler.run_forever()
        return
    from superseller.api.deps import Services  # the web stack loads only for the roles using it

    settings = get_settings()
    svc = Services(settings=settings, engine=engine(), registry=registry(), clock=SystemClock())
    run_server(
        svc, host, port, with_worker or role == "all", with_scheduler or role == "all", concurrency
    )


def run_server(
    svc,
    host: str,
    port: int,
    with_worker: bool,
    with_scheduler: bool,
    concurrency: int = 4,
    log_level: str = "info",
) -> None:
    """uvicorn in the foreground, a worker and the scheduler in supervised threads; a
    graceful stop of all three on SIGTERM/SIGINT. `svc` is the API's `Services`."""
    from superseller.api.app import create_app, uvicorn_options

    settings = svc.settings
    loops = embedded_loops(svc, with_worker, with_scheduler, concurrency)
    for loop in loops:
        loop.start()
    # uvicorn handles SIGTERM/SIGINT and, once shut down, raises the signal again
    # against the handlers it found: make those ours, so that the worker and the
    # scheduler below get their graceful stop instead of the process dying.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    app = create_app(svc)
    app.state.loops = loops
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, **uvicorn_options(settings))
    finally:
        for loop in loops:
            loop.stop()
        for loop in loops:
            loop.join(timeout=settings.job_shutdown_grace_s + 5)


def embedded_loops(
    svc, with_worker: bool, with_scheduler: bool, concurrency: int = 4
) -> list[SupervisedLoop]:
    """The worker and the scheduler of a `serve` process, each under a supervisor that
    builds a fresh one whenever the last one died."""
    settings = svc.settings
    loops = []
    if with_worker:
        loops.append(
            SupervisedLoop(
                "worker",
                lambda: Worker(
                    svc.engine,
                    svc.registry,
                    WorkerOptions.from_settings(settings, concurrency=concurrency),
                ),
                lambda worker: worker.run(),
                WORKER_EXPECTED_PERIOD_S,
            )
        )
    if with_scheduler:
        loops.append(
            SupervisedLoop(
                "scheduler",
                lambda: Scheduler(svc.engine, svc.registry),
                lambda scheduler: scheduler.run_forever(SCHEDULER_INTERVAL_S),
                SCHEDULER_EXPECTED_PERIOD_S,
                unresponsive_s=30.0,  # one pass may catch up thousands of missed ticks
            )
        )
    return loops
