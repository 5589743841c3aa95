"""`superseller worker`: run jobs."""

from __future__ import annotations

import typer

from superseller import logs
from superseller.cli.common import (
    engine,
    refuse_unsafe_settings,
    refuse_unusable_database,
    registry,
)
from superseller.config import get_settings
from superseller.jobs.worker import Worker, WorkerOptions


def worker(
    concurrency: int = typer.Option(4, min=1, max=1000, help="Jobs run at once."),
    queues: str | None = typer.Option(None, help="Comma-separated queues (default: all)."),
    burst: bool = typer.Option(False, help="Exit 0 when nothing is due."),
) -> None:
    """Claim and run jobs until stopped (SIGTERM/SIGINT stop gracefully)."""
    refuse_unsafe_settings()  # e.g. a TOKEN_ENCRYPTION_KEY every sync would fail on
    refuse_unusable_database()  # a SQLite directory that does not exist; PostgreSQL down: retried
    logs.configure(get_settings().log_format)
    queue_list = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
    opts = WorkerOptions.from_settings(
        get_settings(), concurrency=concurrency, queues=queue_list, burst=burst
    )
    raise typer.Exit(Worker(engine(), registry(), opts).run())
