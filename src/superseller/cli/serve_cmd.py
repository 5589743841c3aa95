"""`superseller serve`: the API, optionally with a worker and the scheduler in-process.

In-process loops are supervised (`superseller.jobs.supervise`): one that dies is logged
and restarted with back-off, and `/readyz` reports it (and a database they cannot
reach) until it runs and gets through to the database again."""

from __future__ import annotations

import logging
import signal
from urllib.parse import urlsplit

import typer
import uvicorn

from superseller import logs
from superseller.cli.common import (
    CliError,
    engine,
    refuse_unsafe_settings,
    refuse_unusable_database,
    registry,
)
from superseller.config import get_settings
from superseller.jobs.clock import SystemClock
from superseller.jobs.scheduler import Scheduler
from superseller.jobs.supervise import SupervisedLoop
from superseller.jobs.worker import Worker, WorkerOptions

ROLES = ("api", "worker", "scheduler", "all")
CALLBACK_PATH = "/api/v1/mercadolivre/callback"
LOOPBACK = ("127.0.0.1", "localhost", "::1")

log = logging.getLogger("superseller.serve")

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
    refuse_unusable_database()
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
    settle_redirect_uri(settings, host, port)
    svc = Services(settings=settings, engine=engine(), registry=registry(), clock=SystemClock())
    run_server(
        svc, host, port, with_worker or role == "all", with_scheduler or role == "all", concurrency
    )


def own_redirect_uri(public_url: str, host: str, port: int) -> str:
    """This service's OAuth callback: at PUBLIC_URL when set, else at the address `serve`
    listens on (every interface, 0.0.0.0 or ::, is reached at the loopback one)."""
    if public_url:
        return public_url.rstrip("/") + CALLBACK_PATH
    if host in ("", "0.0.0.0", "127.0.0.1", "localhost"):
        host = "127.0.0.1"
    elif host in ("::", "::1"):
        host = "[::1]"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{CALLBACK_PATH}"


def settle_redirect_uri(settings, host: str, port: int) -> None:
    """ML_REDIRECT_URI unset: this server's own callback (`own_redirect_uri`), not the
    default's :8000 (nothing, or someone else, may listen there and receive the code). Set
    to a loopback address on another port than this server's: one warning."""
    if "ml_redirect_uri" not in settings.model_fields_set:
        settings.ml_redirect_uri = own_redirect_uri(settings.public_url, host, port)
        return
    try:
        given = urlsplit(settings.ml_redirect_uri)
        given_port = given.port or (443 if given.scheme == "https" else 80)
    except ValueError:
        return  # not a URL: Mercado Livre refuses it, the connect flow says so
    if given.hostname in LOOPBACK and given_port != port:
        log.warning(
            "ML_REDIRECT_URI names port %s of this machine but serve listens on %s: "
            "Mercado Livre will send sellers back where this server is not; unset it "
            "(this server's own callback is then used) or fix its port",
            given_port,
            port,
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
