"""`superseller jobs …`: enqueue, list, show, cancel, retry, stats."""

from __future__ import annotations

import typer
from rich.table import Table
from sqlalchemy import Engine, exists, select

from superseller import limits
from superseller.cli import power_cmd
from superseller.cli.common import (
    CliError,
    console,
    engine,
    err_console,
    parse_json_object,
    print_json,
    registry,
)
from superseller.cli.inline import CLI_QUEUE
from superseller.db.schema import JOB_STATES, jobs
from superseller.jobs import audit
from superseller.jobs.admin import JobAdmin
from superseller.jobs.errors import UnknownJobType
from superseller.jobs.pause import state as pause_state
from superseller.jobs.queue import JobSpec
from superseller.jobs.registry import Registry
from superseller.jobs.stats import queue_counts
from superseller.tenant_jobs import enqueue_by_hand

app = typer.Typer(help="Inspect and steer jobs.", no_args_is_help=True)
# The engine's controls, also under `jobs` (the same commands as `superseller pause|resume`).
app.command()(power_cmd.resume)


def job_id_value(text: str) -> int:
    """A job id from the command line: a whole number within the ids' bounds."""
    try:
        value = int(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a job id (a whole number)") from None
    if not 1 <= value <= limits.ID_MAX:
        raise typer.BadParameter(f"job id {text} is out of range (job ids are 1 to 2^62)")
    return value


JOB_ID = typer.Argument(..., metavar="ID", parser=job_id_value)


def _state_value(value: str | None) -> str | None:
    """A job state from the command line: bad input, exit 2, like the other options."""
    if value is not None and value not in JOB_STATES:
        raise typer.BadParameter(f"unknown state {value!r} (one of {', '.join(JOB_STATES)})")
    return value


@app.command()
def pause(
    reason: str = typer.Option("", help="Why (shown in `jobs stats` and the API)."),
    queue: str | None = power_cmd.QUEUE,
) -> None:
    """Stop claiming and scheduling everywhere; running jobs finish, queued ones wait, due
    ticks are caught up on resume by each schedule's misfire policy. With --queue: stop
    claiming from that queue only (a queue nothing uses is paused too, with a warning)."""
    power_cmd.pause(reason, queue)
    if queue is not None:
        known = known_queues(engine(), registry())
        if queue not in known and not _has_jobs(engine(), queue):
            err_console.print(
                f"warning: no job type uses queue {queue!r} and no job is on it (a typo?); "
                f"known queues: {', '.join(sorted(known))}",
                highlight=False,
                soft_wrap=True,
            )


def known_queues(eng: Engine, reg: Registry) -> set[str]:
    """The queues jobs go to: the job types' own, the command line's, and those of the
    unfinished jobs (a small, indexed set)."""
    with eng.connect() as conn:
        unfinished = conn.execute(
            select(jobs.c.queue).where(jobs.c.status.in_(("pending", "running"))).distinct()
        )
        used = set(unfinished.scalars())
    return {reg.get(name).queue for name in reg.names()} | {CLI_QUEUE} | used


def _has_jobs(eng: Engine, queue: str) -> bool:
    """Whether any job, in any state, is on `queue`."""
    with eng.connect() as conn:
        return bool(conn.execute(select(exists().where(jobs.c.queue == queue))).scalar())


@app.command()
def enqueue(
    job_type: str = typer.Argument(..., metavar="TYPE"),
    payload: str = typer.Option("{}", help="JSON object."),
    tenant: str | None = typer.Option(
        None, help="Tenant id (default: the payload's tenantId, whose job it is)."
    ),
    queue: str | None = typer.Option(None),
    priority: int = typer.Option(
        0, min=limits.PRIORITY_MIN, max=limits.PRIORITY_MAX, help="Higher runs first."
    ),
    unique_key: str | None = typer.Option(None, help="Deduplicate against unfinished jobs."),
    max_attempts: int | None = typer.Option(None, min=1, max=limits.MAX_ATTEMPTS_MAX),
) -> None:
    """Add a job to the queue; it belongs to the tenant its payload names (which must
    exist). Audited as `cli:<OS user>`."""
    spec = JobSpec(
        job_type,
        parse_json_object(payload),
        tenant_id=tenant,
        queue=queue,
        priority=priority,
        unique_key=unique_key,
        max_attempts=max_attempts,
    )
    result = enqueue_by_hand(engine(), registry(), spec, audit.cli_actor())
    word = "enqueued" if result.created else "already queued as"
    console.print(f"{word} job {result.id}")


@app.command("list")
def list_(
    state: str | None = typer.Option(
        None, help="pending|running|completed|failed|cancelled", callback=_state_value
    ),
    job_type: str | None = typer.Option(None, "--type"),
    tenant: str | None = typer.Option(None),
    limit: int = typer.Option(20, min=1, max=500),
    before: int | None = typer.Option(
        None, min=1, max=limits.ID_MAX, help="Show jobs older than this id (paging)."
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Newest jobs first; a running job with the worker running it. The error of a job that
    still runs or waits to run again is its previous attempt's, and says so."""
    rows = JobAdmin(engine()).list(
        status=state, job_type=job_type, tenant_id=tenant, limit=limit, before_id=before
    )
    if not rows and job_type is not None and not _known_type(engine(), job_type):
        raise CliError(f"{UnknownJobType(job_type, registry().names())}", 2)
    if json_out:
        print_json(rows)
        return
    table = Table("id", "type", "state", "attempts", "worker", "tenant", "run_at", "error")
    for r in rows:
        running = r["status"] == "running"
        table.add_row(
            str(r["id"]),
            r["type"],
            r["status"],
            f"{r['attempts']}/{r['max_attempts']}",
            (r["worker_id"] or "") if running else "",
            r["tenant_id"] or "",
            r["run_at"],
            _error(r),
        )
    console.print(table)


def _known_type(eng: Engine, job_type: str) -> bool:
    """A type some code registers, or one that still has jobs (a type a release retired):
    a mistyped type would read as "no such jobs ran", while an empty page of a known one
    (other filters, the last page of `--before`) is just empty."""
    if job_type in registry():
        return True
    with eng.connect() as conn:
        return bool(conn.execute(select(exists().where(jobs.c.type == job_type))).scalar())


def _error(job: dict) -> str:
    """The error column: a finished job's own; an unfinished one's is the previous attempt's."""
    error = (job["last_error"] or "")[:60]
    if error and job["status"] in ("pending", "running"):
        return f"previous attempt: {error}"
    return error


@app.command()
def show(job_id: int = JOB_ID) -> None:
    """One job and its attempts (job_logs)."""
    admin = JobAdmin(engine())
    print_json({"job": admin.get(job_id), "logs": admin.logs(job_id)})


@app.command()
def cancel(job_id: int = JOB_ID) -> None:
    """Cancel a pending job, or ask a running one to stop."""
    what = JobAdmin(engine(), actor=audit.cli_actor()).cancel(job_id)
    console.print(f"job {job_id}: {what.replace('_', ' ')}")


@app.command()
def retry(job_id: int = JOB_ID) -> None:
    """Re-queue a failed or cancelled job."""
    JobAdmin(engine(), actor=audit.cli_actor()).retry(job_id)
    console.print(f"job {job_id} re-queued")


@app.command()
def stats(json_out: bool = typer.Option(False, "--json")) -> None:
    """Job counts by state and queue (unfinished exactly, finished over the last 24 h),
    and whether the engine is paused."""
    data = {**queue_counts(engine()), "engine": pause_state(engine())}
    if json_out:
        print_json(data)
        return
    table = Table("queue", *data["byState"].keys(), title="jobs (finished: last 24 h)")
    for queue, counts in sorted(data["byQueue"].items()):
        table.add_row(queue, *(str(n) for n in counts.values()))
    table.add_row("[b]all[/b]", *(str(n) for n in data["byState"].values()))
    console.print(table)
    if data["engine"]["paused"]:
        console.print(
            f"[red]engine PAUSED[/red] since {data['engine']['changedAt']}"
            f"{': ' + data['engine']['reason'] if data['engine']['reason'] else ''}"
            " — `superseller resume` to continue"
        )
    for q in data["engine"]["pausedQueues"]:
        console.print(
            f"[red]queue {q['queue']} PAUSED[/red] since {q['pausedAt']} by {q['actor']}"
            f"{': ' + q['reason'] if q['reason'] else ''}"
            f" — `superseller resume --queue {q['queue']}` to continue"
        )
