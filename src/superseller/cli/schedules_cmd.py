"""`superseller schedules …` and `superseller scheduler`."""

from __future__ import annotations

from datetime import UTC, date, datetime

import typer
from rich.table import Table

from superseller import limits, logs
from superseller.cli.common import (
    TIMEZONE,
    CliError,
    console,
    engine,
    parse_json_object,
    print_json,
    refuse_unusable_database,
    registry,
    zone_or_default,
)
from superseller.config import get_settings
from superseller.jobs import audit
from superseller.jobs.cron import zone
from superseller.jobs.scheduler import Scheduler
from superseller.jobs.schedules import Schedules

app = typer.Typer(help="Cron schedules in the seller's time zone.", no_args_is_help=True)


def _schedules() -> Schedules:
    return Schedules(engine(), registry())


def _scheduler() -> Scheduler:
    return Scheduler(engine(), registry())


def _day(value: str, what: str) -> date:
    try:
        return limits.check_date(date.fromisoformat(value), what)
    except limits.LimitError as exc:
        raise CliError(str(exc), 2) from None
    except ValueError:
        raise CliError(f"{what} must be a date YYYY-MM-DD, got {value!r}", 2) from None


def _zoned(value: str | None, tz: str) -> datetime | None:
    """A stored instant (ISO, UTC) in the schedule's own zone: the same instant, read as
    the seller's wall clock."""
    if not value:
        return None
    dt = datetime.fromisoformat(value)
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(zone(tz))


def _in_zone(value: str | None, tz: str) -> str | None:
    """`_zoned` as ISO-8601, for machines."""
    dt = _zoned(value, tz)
    return dt.isoformat() if dt else value


def _shown(value: str | None, tz: str) -> str:
    """A stored instant for a person, in the schedule's own zone with its offset:
    2026-12-07 19:15 -03:00 (what the admin console shows, and which zone it is)."""
    dt = _zoned(value, tz)
    if dt is None:
        return ""
    offset = dt.strftime("%z")
    return f"{dt:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


def _local(s: dict) -> dict:
    """A schedule as printed: its next run in its own zone."""
    return {**s, "next_run_at": _in_zone(s["next_run_at"], s["timezone"])}


@app.command("list")
def list_(json_out: bool = typer.Option(False, "--json")) -> None:
    """Every schedule with its next run, last outcome and lateness."""
    sched = _scheduler()
    rows = []
    for s in _schedules().list():
        last = sched.occurrences(s["name"], limit=1)
        late = sched.lateness(s["name"])
        rows.append({**_local(s), "lastOccurrence": last[0] if last else None, "lateness": late})
    if json_out:
        print_json(rows)
        return
    table = Table("name", "type", "cron", "timezone", "on", "next run", "last", "late")
    for r in rows:
        last = r["lastOccurrence"]
        late = r["lateness"]
        table.add_row(
            r["name"],
            r["job_type"],
            r["cron"],
            r["timezone"],
            "yes"
            if r["enabled"]
            else f"no{' (' + r['disabled_reason'] + ')' if r['disabled_reason'] else ''}",
            _shown(r["next_run_at"], r["timezone"]),
            f"{last['outcome']} {_shown(last['fire_time'], r['timezone'])}" if last else "",
            ("[red]LATE[/red]" if late["late"] else "ok") if late else "",
        )
    console.print(table)


@app.command()
def show(name: str) -> None:
    """One schedule."""
    print_json({**_local(_schedules().get(name)), "lateness": _scheduler().lateness(name)})


@app.command()
def create(
    name: str,
    job_type: str = typer.Option(..., "--type"),
    cron: str = typer.Option(..., help="'0 3 * * *' or AWS 'cron(0 3 * * ? *)'."),
    timezone: str | None = TIMEZONE,
    payload: str = typer.Option("{}"),
    misfire: str = typer.Option("latest", help="latest | all | skip"),
    overlap: str = typer.Option("skip", help="allow | skip | queue_one"),
    deadline_minutes: int | None = typer.Option(
        None, min=1, max=limits.DEADLINE_MAX_S // 60, help="Must succeed this long after a tick."
    ),
    disabled: bool = typer.Option(False, help="Create it switched off."),
) -> None:
    """Create a schedule."""
    s = _schedules().create(
        name,
        job_type,
        cron,
        payload=parse_json_object(payload),
        timezone=zone_or_default(timezone),
        misfire_policy=misfire,
        overlap_policy=overlap,
        enabled=not disabled,
        deadline_s=deadline_minutes * 60 if deadline_minutes else None,
    )
    console.print(f"created {s['name']}: next run {_shown(s['next_run_at'], s['timezone'])}")


@app.command()
def update(
    name: str,
    cron: str | None = typer.Option(None),
    timezone: str | None = typer.Option(None, "--timezone"),
    payload: str | None = typer.Option(None),
    misfire: str | None = typer.Option(None),
    overlap: str | None = typer.Option(None),
    deadline_minutes: int | None = typer.Option(None, min=1, max=limits.DEADLINE_MAX_S // 60),
) -> None:
    """Change a schedule."""
    changes = {
        k: v
        for k, v in {
            "cron": cron,
            "timezone": timezone,
            "payload": parse_json_object(payload) if payload is not None else None,
            "misfire_policy": misfire,
            "overlap_policy": overlap,
            "deadline_s": deadline_minutes * 60 if deadline_minutes else None,
        }.items()
        if v is not None
    }
    if not changes:
        raise CliError("nothing to change: give at least one option", 2)
    s = _schedules().update(name, **changes)
    audit.record(engine(), audit.cli_actor(), "schedule.update", "schedule", name, changes)
    console.print(f"updated {s['name']}: next run {_shown(s['next_run_at'], s['timezone'])}")


@app.command()
def enable(name: str) -> None:
    """Switch a schedule on (its next tick from now on)."""
    s = _schedules().set_enabled(name, True)
    audit.record(
        engine(), audit.cli_actor(), "schedule.update", "schedule", name, {"enabled": True}
    )
    console.print(f"{name} enabled: next run {_shown(s['next_run_at'], s['timezone'])}")


@app.command()
def disable(name: str) -> None:
    """Switch a schedule off; its ledger is kept."""
    _schedules().set_enabled(name, False)
    audit.record(
        engine(), audit.cli_actor(), "schedule.update", "schedule", name, {"enabled": False}
    )
    console.print(f"{name} disabled")


@app.command("run-now")
def run_now(name: str) -> None:
    """Enqueue one run now."""
    job_id = _scheduler().run_now(name)
    audit.record(
        engine(), audit.cli_actor(), "schedule.run_now", "schedule", name, {"jobId": job_id}
    )
    console.print(f"enqueued job {job_id}")


@app.command()
def occurrences(
    name: str,
    limit: int = typer.Option(30, min=1, max=1000),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """The ledger: every tick and what became of it, newest first."""
    rows = _scheduler().occurrences(name, limit)
    if json_out:
        print_json(rows)
        return
    table = Table("fire time (UTC)", "outcome", "job", "job state", "reason")
    for r in rows:
        table.add_row(
            r["fire_time"],
            r["outcome"],
            str(r["job_id"] or ""),
            r["job_status"] or "",
            r["reason"] or "",
        )
    console.print(table)


@app.command()
def backfill(
    name: str,
    from_: str = typer.Option(..., "--from", help="First local day, YYYY-MM-DD."),
    to: str = typer.Option(..., "--to", help="Last local day, YYYY-MM-DD."),
    mode: str = typer.Option("missing", help="missing | failed | all"),
    concurrency: int = typer.Option(2, min=1, max=50),
) -> None:
    """Enqueue one job per tick in a date range."""
    start, end = _day(from_, "--from"), _day(to, "--to")
    try:
        limits.check_range(start, end)
    except limits.LimitError as exc:
        raise CliError(str(exc), 2) from None
    done = _scheduler().backfill(name, start, end, mode, concurrency)
    detail = {"from": from_, "to": to, "mode": mode, "jobs": len(done)}
    audit.record(engine(), audit.cli_actor(), "schedule.backfill", "schedule", name, detail)
    console.print(f"backfilled {len(done)} tick(s)")
    for d in done:
        console.print(f"  {d['fireTime']} -> job {d['jobId']}")


def scheduler(
    once: bool = typer.Option(False, help="One pass, then exit."),
    interval: float = typer.Option(
        15.0, min=0.1, max=3600, help="Longest sleep between passes (s)."
    ),
) -> None:
    """Turn due cron ticks into jobs (safe to run in any number of copies)."""
    refuse_unusable_database()
    logs.configure(get_settings().log_format)
    s = _scheduler()
    if once:
        r = s.run_pass()
        console.print(f"enqueued {r.enqueued}, skipped {r.skipped}, missed {r.missed}")
        return
    import signal

    signal.signal(signal.SIGTERM, lambda *_: s.stop())
    try:
        s.run_forever(interval)
    except KeyboardInterrupt:
        pass
