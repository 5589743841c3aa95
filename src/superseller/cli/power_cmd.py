"""`superseller pause` / `superseller resume`: the seeds' "power" routine, losing nothing."""

from __future__ import annotations

import typer

from superseller import limits
from superseller.cli.common import console, engine
from superseller.jobs import audit
from superseller.jobs import pause as engine_pause


def pause(
    reason: str = typer.Option("", help="Why (shown in `jobs stats` and the API)."),
) -> None:
    """Stop claiming and scheduling everywhere; running jobs finish, queued ones wait, due
    ticks are caught up on resume by each schedule's misfire policy."""
    limits.check_len(reason, limits.REASON_MAX_LEN, "the reason")
    audit.record(engine(), audit.CLI, "engine.pause", "engine", None, {"reason": reason or None})
    s = engine_pause.set_paused(engine(), True, reason or None)
    console.print(f"paused at {s['changedAt']}" + (f": {s['reason']}" if s["reason"] else ""))


def resume() -> None:
    """Claim and schedule again; ticks missed while paused meet their misfire policy."""
    audit.record(engine(), audit.CLI, "engine.resume", "engine")
    s = engine_pause.set_paused(engine(), False)
    console.print(f"resumed at {s['changedAt']}")
