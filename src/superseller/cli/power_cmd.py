"""`superseller pause` / `superseller resume` (also `superseller jobs pause|resume`): the
seeds' "power" routine, losing nothing; with `--queue NAME`, one queue only."""

from __future__ import annotations

import typer

from superseller import limits
from superseller.cli.common import console, engine
from superseller.jobs import audit
from superseller.jobs import pause as engine_pause

QUEUE = typer.Option(
    None,
    "--queue",
    help="Only this queue (any name of 1-100 characters): its jobs wait, other queues run.",
)


def pause(
    reason: str = typer.Option("", help="Why (shown in `jobs stats` and the API)."),
    queue: str | None = QUEUE,
) -> None:
    """Stop claiming and scheduling everywhere; running jobs finish, queued ones wait, due
    ticks are caught up on resume by each schedule's misfire policy. With --queue: stop
    claiming from that queue only."""
    limits.check_len(reason, limits.REASON_MAX_LEN, "the reason")
    if queue is not None:
        engine_pause.set_queue_paused(engine(), queue, True, reason or None, audit.cli_actor())
        console.print(f"queue {queue} paused" + (f": {reason}" if reason else ""))
        return
    audit.record(
        engine(), audit.cli_actor(), "engine.pause", "engine", None, {"reason": reason or None}
    )
    s = engine_pause.set_paused(engine(), True, reason or None)
    console.print(f"paused at {s['changedAt']}" + (f": {s['reason']}" if s["reason"] else ""))


def resume(
    queue: str | None = typer.Option(
        None,
        "--queue",
        help="Only this queue (one paused with `pause --queue`): its jobs are claimed again; "
        "the engine's own pause is left as it is.",
    ),
) -> None:
    """Claim and schedule again; ticks missed while paused meet their misfire policy.
    With --queue: claim from that queue again. Queues paused on their own stay paused
    (said, with how to resume them)."""
    if queue is not None:
        engine_pause.check_queue_name(queue)
        was = {q["queue"] for q in engine_pause.state(engine())["pausedQueues"]}
        if queue not in was:
            console.print(f"queue {queue} was not paused; nothing to resume", highlight=False)
            return
        s = engine_pause.set_queue_paused(engine(), queue, False, None, audit.cli_actor())
        still = ", ".join(q["queue"] for q in s["pausedQueues"])
        console.print(f"queue {queue} resumed" + (f" (still paused: {still})" if still else ""))
        return
    audit.record(engine(), audit.cli_actor(), "engine.resume", "engine")
    s = engine_pause.set_paused(engine(), False)
    console.print(f"resumed at {s['changedAt']}")
    if still := [q["queue"] for q in s["pausedQueues"]]:
        how = "; ".join(f"superseller resume --queue {q}" for q in still)
        console.print(
            f"queues still paused on their own: {', '.join(still)} (resume each with: {how})",
            highlight=False,
            soft_wrap=True,
        )
