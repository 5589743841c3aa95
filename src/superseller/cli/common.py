"""Shared CLI plumbing: settings, engine, registry, and one-line errors."""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path

import typer
from rich.console import Console
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from superseller.config import get_settings
from superseller.db.engine import make_engine, normalize_url

# Under cron, CI or a pipe there is no terminal to fit: Rich would assume 80 columns and cut
# table cells ("2026-1…"); each line is as long as its content instead.
UNBOUNDED_WIDTH = 100_000


def make_console(stderr: bool = False) -> Console:
    """The CLI's console: a terminal's own width, else unbounded (nothing truncated)."""
    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty() if hasattr(stream, "isatty") else False
    return Console(stderr=stderr, width=None if tty else UNBOUNDED_WIDTH)


console = make_console()
err_console = make_console(stderr=True)
# `--timezone`: when omitted, the `TIMEZONE` setting (see `zone_or_default`).
TIMEZONE = typer.Option(None, "--timezone", help="IANA zone; default: the TIMEZONE setting.")


class CliError(Exception):
    """A message for the user; the command exits with `code`."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def refuse_unsafe_settings() -> None:
    """A process that serves or runs jobs does not start on settings that would fail it
    later (a weak secret, a token key that cannot decrypt): one line, exit 2."""
    if problems := get_settings().startup_problems():
        raise CliError("; ".join(problems), 2)


def database_label(url: str | None = None) -> str:
    """The database a command uses, as one may print it: its URL with any password
    hidden (`postgresql+psycopg://app:***@db/prod`)."""
    url = get_settings().resolved_database_url() if url is None else url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "DATABASE_URL (not a database URL)"


def refuse_unusable_database() -> None:
    """A process that runs for good (worker, scheduler, serve) does not start on a SQLite
    file whose directory does not exist: SQLite creates the file, never its directory, so
    no retry can succeed. One line naming the path, exit 2. A PostgreSQL server that is
    down is an outage, not a mistake: those processes start and retry until it is back."""
    url = make_url(normalize_url(get_settings().resolved_database_url()))
    path = url.database if url.get_backend_name() == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    directory = Path(path).absolute().parent
    if not directory.is_dir():
        raise CliError(
            f"database {database_label()}: directory {directory} does not exist "
            "(SQLite creates the database file, not its directory)",
            2,
        )


@lru_cache
def engine():
    refuse_unusable_database()  # every command: say why SQLite cannot open, not "unable to open"
    return make_engine(get_settings().resolved_database_url())


@lru_cache
def registry():
    from superseller.wiring import build_registry

    return build_registry(get_settings())


def parse_json_object(text: str, what: str = "payload") -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{what} is not valid JSON: {exc.msg} at position {exc.pos}", 2) from None
    if not isinstance(value, dict):
        raise CliError(f"{what} must be a JSON object", 2)
    return value


def print_json(value) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n")


def zone_or_default(timezone: str | None) -> str:
    """The zone given on the command line, else the `TIMEZONE` setting."""
    return timezone or get_settings().timezone
