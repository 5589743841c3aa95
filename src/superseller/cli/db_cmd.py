"""`superseller db …`: migrations and the schema check."""

from __future__ import annotations

import typer

from superseller.cli.common import CliError, console, engine, registry
from superseller.config import get_settings

app = typer.Typer(help="Database migrations.", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from superseller.db import migrate

    migrate.upgrade(engine(), revision)
    console.print(f"database at revision {migrate.current(engine())}")
    if migrate.current(engine()) == migrate.head():
        from superseller.jobs.default_schedules import ensure_defaults

        for change in ensure_defaults(engine(), registry(), timezone=get_settings().timezone):
            console.print(f"schedule: {change}")


@app.command()
def downgrade(revision: str = typer.Argument(..., help="Target revision, or 'base'.")) -> None:
    """Revert migrations down to REVISION."""
    from superseller.db import migrate

    if (
        revision != "base"
        and not revision.startswith(("-", "+"))
        and revision not in migrate.known_revisions()
    ):
        raise CliError(f"unknown revision {revision!r}", 2)
    migrate.downgrade(engine(), revision)
    console.print(f"database at revision {migrate.current(engine()) or 'base'}")


@app.command()
def current() -> None:
    """Print the database's revision and the newest one."""
    from superseller.db import migrate

    console.print(f"current: {migrate.current(engine()) or 'base'}  head: {migrate.head()}")


@app.command()
def check() -> None:
    """Verify every expected table and index exists; exit 1 if anything is missing."""
    from superseller.db import migrate

    report = migrate.check(engine())
    for table in report.missing_tables:
        console.print(f"missing table: {table}")
    for index in report.missing_indexes:
        console.print(f"missing index: {index}")
    if report.revision != report.head:
        console.print(f"revision {report.revision or 'base'} is not head {report.head}")
    if not report.ok:
        raise typer.Exit(1)
    console.print(f"ok: all tables and indexes present at revision {report.revision}")
