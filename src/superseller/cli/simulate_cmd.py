"""`superseller simulate`: N simulated days with faults; every seller fresh by 06:00?"""

from __future__ import annotations

import signal
from pathlib import Path

import typer
from rich.table import Table

from superseller.cli.common import CliError, console

MAX_SEED = 999_999  # the seller seeds (seed * 1000 + n) and tenant ids stay small


def simulate(
    days: int = typer.Option(30, "--days", min=1, max=366, help="Local days to simulate."),
    seed: int = typer.Option(
        1, "--seed", min=0, max=MAX_SEED, help="Draws tenants, orders and faults."
    ),
    database: str | None = typer.Option(
        None,
        "--database",
        help="A new, empty database: sqlite:///PATH or postgresql:// (psycopg 3); default: a "
        "SQLite file in a temporary directory. A database holding rows is refused.",
    ),
    tenants: int = typer.Option(20, "--tenants", min=1, max=200, help="Sellers (one large)."),
    large_listings: int = typer.Option(
        10_000, "--large-listings", min=1, max=10_000, help="Listings of the large seller."
    ),
    small_listings: int = typer.Option(
        300, "--small-listings", min=10, max=10_000, help="Most listings of a small seller."
    ),
    faults: str = typer.Option(
        "all", "--faults", help="all, none, or a comma list of fault kinds."
    ),
    notifications: bool = typer.Option(
        True,
        "--notifications/--no-notifications",
        help="Every other seller's sandbox notifies the API's webhook (the others do not).",
    ),
    workdir: Path | None = typer.Option(
        None,
        "--workdir",
        help="A new directory for the logs (and the SQLite file); default: a temporary one, "
        "removed after a run where every morning was fresh, kept after a miss or a failure.",
    ),
) -> None:
    """Run the real engine through simulated days with faults; check every 06:00.

    Exit codes: 0 every seller fresh every morning, 1 a morning missed, 2 a usage error
    (including a database that is not empty), 3 the run itself failed (a process died, a
    database error), 130 interrupted.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from superseller.simulation import faults as fault_plan
    from superseller.simulation.guard import EXIT_FAILED, EXIT_MISSED, SimError, database_url
    from superseller.simulation.runner import SimOptions
    from superseller.simulation.runner import simulate as run

    if not faults.strip():
        raise CliError('--faults is empty: say "none" for a run without faults', 2)
    try:
        fault_plan.parse_kinds(faults)
        database = database if database is None else database_url(database)
    except ValueError as exc:
        raise CliError(str(exc), 2) from None
    except SimError as exc:
        raise CliError(str(exc), exc.code) from None
    opts = SimOptions(
        days=days,
        seed=seed,
        database_url=database,
        tenants=tenants,
        large_listings=large_listings,
        small_listings=(max(5, small_listings // 15), small_listings),
        faults=faults,
        notifications=notifications,
        workdir=workdir,
        progress=lambda line: console.print(line, highlight=False, soft_wrap=True),
    )
    console.print(f"[b]simulate[/b] seed {seed}, {days} day(s), {tenants} tenant(s)")
    # SIGTERM ends the run like Ctrl-C: the worker and scheduler it started are stopped.
    signal.signal(signal.SIGTERM, _terminated)
    try:
        result = run(opts)
    except SimError as exc:
        raise CliError(str(exc), exc.code) from None
    except SQLAlchemyError as exc:  # before the run started: the database refused us
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise CliError(f"database error: {first}", EXIT_FAILED) from None
    render(result)
    if result.misses:
        raise CliError(
            f"{result.misses} tenant-morning(s) not fresh at 06:00 (see the table"
            + (f"; logs in {result.kept_dir}" if result.kept_dir else "")
            + ")",
            EXIT_MISSED,
        )


def _terminated(*_) -> None:
    raise KeyboardInterrupt


def render(result) -> None:
    schedule = Table(title=f"Fault schedule (seed {result.seed})")
    schedule.add_column("fault")
    for f in result.schedule:
        schedule.add_row(f.describe())
    console.print(schedule)
    table = Table(title=f"Mornings at 06:00 ({result.backend}, {result.tenants} tenants)")
    cols = ("day", "fresh", "reauth", "late", "jobs", "retries", "wall s", "faults")
    cols += ("effects", "late: cause")
    for col in cols:
        table.add_column(col, overflow="fold")
    for m in result.mornings:
        causes = "\n".join(f"{t}: {c}" for t, c in m.late.items())
        table.add_row(
            str(m.day),
            str(m.fresh),
            str(m.flagged),
            str(len(m.late)),
            str(m.jobs_run),
            str(m.retries),
            f"{m.wall_s:.0f}",
            "\n".join(m.faults),
            m.effects().replace("; ", "\n"),
            causes,
        )
    console.print(table)
    fresh = sum(m.fresh for m in result.mornings)
    jobs = sum(m.jobs_run for m in result.mornings)
    retries = sum(m.retries for m in result.mornings)
    if result.notified:
        e = result.emitted
        console.print(
            f"notifications ({', '.join(result.notified)}): {e.get('created', 0)} sent, "
            f"{e.get('delivered', 0)} delivered, {e.get('failed_attempts', 0)} failed attempts, "
            f"{e.get('missed', 0)} never delivered (left to /missed_feeds); "
            f"{result.stored_notifications} stored by the webhook",
            highlight=False,
        )
    console.print(
        f"totals: {fresh} fresh, {result.misses} late, {jobs} jobs, {retries} retries, "
        f"{len(result.schedule)} faults, {result.wall_s:.0f} s wall; "
        f"schedules off in the simulation: {', '.join(result.off_schedules)}",
        highlight=False,
    )
    ms = result.mornings
    console.print(
        f"fault effects: {sum(m.ml_429 for m in ms)} 429s and {sum(m.ml_5xx for m in ms)} "
        f"5xx answered by the sandbox, {sum(m.rescued for m in ms)} job(s) rescued, "
        f"{sum(m.resumed_parts for m in ms)} sync part(s) resumed, "
        f"{sum(m.outage_s for m in ms):.0f} s of database outage (wall) with "
        f"{sum(m.outage_logged for m in ms)} 'database unreachable' log line(s), "
        f"{sum(len(m.kills) for m in ms)} worker kill(s)",
        highlight=False,
    )
