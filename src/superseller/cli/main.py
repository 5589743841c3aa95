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
    simulate_cmd,
    users_cmd,
    worker_cmd,
)
from superseller.cli.common import CliError, database_label, err_console
from superseller.cli.help_text import unwrap_help
from superseller.config import SettingsError
from superseller.errors import UserFacingError
from superseller.jobs.cron import InvalidSchedule
from superseller.jobs.errors import InvalidPayload, UnknownJobType
from superseller.limits import LimitError
from superseller.metrics.rebuild import InvalidRange
from superseller.tenant_jobs import TenantMismatch
from superseller.users.accounts import InvalidUserInput

try:  # Typer >= 0.20 carries its own copy of click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older Typer uses click itself
    import click.exceptions as click_errors

_NO_ARGS = getattr(click_errors, "NoArgsIsHelpError", ())
# Exit codes: 2 when the input itself is unusable, whatever the database holds (a value out
# of bounds, an unknown job type or time zone, a payload its type refuses, a job's tenant
# that its payload contradicts, a bad range);
# 1 when well-formed input meets the data (not found, already exists, a job whose state
# refuses the action) or the work failed. Click's usage errors and settings are 2 too.
BAD_INPUT = (  # LimitError too, caught above with the same exit code
    InvalidRange,
    InvalidSchedule,
    InvalidPayload,
    UnknownJobType,
    TenantMismatch,
    InvalidUserInput,
)

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
app.command()(jobs_cmd.pause)  # with its warning for a queue nothing uses
app.command()(power_cmd.resume)
app.command()(ml_cmd.sync)
app.add_typer(ml_cmd.ml_app, name="ml")
app.add_typer(ml_cmd.sandbox_app, name="sandbox")
app.command()(demo_cmd.demo)
app.command()(serve_cmd.serve)
app.add_typer(users_cmd.app, name="users")
app.add_typer(aws_cmd.app, name="aws")
app.add_typer(market_cmd.app, name="market")
app.command()(simulate_cmd.simulate)
unwrap_help(app)  # every command's help as prose: the terminal decides the line breaks


def main() -> None:
    """Run the CLI; known errors become one line on stderr and a non-zero exit.

    Click's usage errors (a missing or unknown option, a value of the wrong type or out
    of range, an extra argument, an unknown command) are one line and exit 2 too: the
    command runs with `standalone_mode=False` so that they come here instead of being
    drawn as a box."""
    try:
        code = app(standalone_mode=False)
    except _NO_ARGS as exc:
        exc.show()  # a group without a command: its help, as before
        sys.exit(exc.exit_code)
    except click_errors.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "superseller"
        _fail(f"{exc.format_message()} (see `{where} --help`)", exc.exit_code)
    except click_errors.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except typer.Abort:
        _fail("aborted", 1)
    except LimitError as exc:
        _fail(str(exc), 2)
    except CliError as exc:
        _fail(str(exc), exc.code)
    except SettingsError as exc:  # a bad environment variable: a configuration error, as in serve
        _fail(str(exc), 2)
    except BAD_INPUT as exc:
        _fail(str(exc), 2)
    except (UserFacingError, ValueError) as exc:
        _fail(str(exc), 1)
    except SQLAlchemyError as exc:
        reason = str(exc.orig if hasattr(exc, "orig") else exc).strip()
        _fail(f"database error on {_database()}: {reason}", 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:
        if os.environ.get("SUPERSELLER_DEBUG"):
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (set SUPERSELLER_DEBUG=1 for details)", 1)

    if code == 130:  # Typer turns Ctrl-C into exit code 130
        _fail("interrupted", 130)
    if isinstance(code, int) and code:
        sys.exit(code)


def _database() -> str:
    """Which database failed, for the one line (its password hidden)."""
    try:
        return database_label()
    except Exception:  # the settings themselves: the line still says what failed
        return "DATABASE_URL"


def _fail(message: str, code: int) -> None:
    first = message.splitlines()[0] if message else "failed"
    err_console.print(f"[red]error:[/red] {first}", highlight=False, soft_wrap=True)
    sys.exit(code)
