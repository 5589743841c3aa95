"""Entry point of the `superseller` command."""

from __future__ import annotations

import os
import sys

import typer
from sqlalchemy.exc import SQLAlchemyError

from superseller.cli import (
    aws_cmd,
    db_cmd,
    demo_cmd,
    jobs_cmd,
    market_cmd,
    metrics_cmd,
    ml_cmd,
    power_cmd,
    schedules_cmd,
    score_cmd,
    serve_cmd,
    users_cmd,
    worker_cmd,
)
from superseller.cli.common import CliError, err_console
from superseller.jobs.errors import JobError

app = typer.Typer(
    help="SuperSeller: a Mercado Livre seller's numbers, fresh, correct and explained.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db_cmd.app, name="db")
app.add_typer(jobs_cmd.app, name="jobs")
app.add_typer(schedules_cmd.app, name="schedules")
app.command()(worker_cmd.worker)
app.command()(schedules_cmd.scheduler)
app.add_typer(metrics_cmd.tenants_app, name="tenants")
app.command()(metrics_cmd.rebuild)
app.command()(metrics_cmd.freshness)
app.command()(score_cmd.score)
app.command()(power_cmd.pause)
app.command()(power_cmd.resume)
app.command()(ml_cmd.sync)
app.add_typer(ml_cmd.sandbox_app, name="sandbox")
app.command()(demo_cmd.demo)
app.command()(serve_cmd.serve)
app.add_typer(users_cmd.app, name="users")
app.add_typer(aws_cmd.app, name="aws")
app.add_typer(market_cmd.app, name="market")


def main() -> None:
    """Run the CLI; known errors become one line on stderr and a non-zero exit."""
    try:
        app()
    except CliError as exc:
        _fail(str(exc), exc.code)
    except (JobError, ValueError) as exc:
        _fail(str(exc), 1)
    except SQLAlchemyError as exc:
        _fail(f"database error: {str(exc.orig if hasattr(exc, 'orig') else exc).strip()}", 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:
        if os.environ.get("SUPERSELLER_DEBUG"):
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (set SUPERSELLER_DEBUG=1 for details)", 1)


def _fail(message: str, code: int) -> None:
    first = message.splitlines()[0] if message else "failed"
    err_console.print(f"[red]error:[/red] {first}", highlight=False, soft_wrap=True)
    sys.exit(code)
