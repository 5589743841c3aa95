"""The seed's default schedules, created idempotently at `superseller db upgrade`.

A default whose job type is not installed is created disabled, with the reason
recorded; a later upgrade that finds the type installed turns it on. Defaults
are editable afterwards and never overwritten.
"""

from __future__ import annotations

from sqlalchemy import Engine, insert, select, update

from superseller.config import DEFAULT_TIMEZONE
from superseller.db.schema import job_schedules
from superseller.jobs.clock import Clock, SystemClock
from superseller.jobs.cron import next_fire
from superseller.jobs.errors import JobError
from superseller.jobs.registry import Registry

NOT_INSTALLED = "job type not installed"

# name, job type, cron (America/Sao_Paulo), payload, deadline (s after the tick)
DEFAULTS = (
    (
        "mercadolivre-daily-sync",
        "sync_mercadolivre",
        "0 2 * * *",
        {"tenantId": "all", "daysBack": 30},
        4 * 3600,
    ),
    ("daily-metrics-rebuild", "metrics_aggregation", "0 3 * * *", {"tenantId": "all"}, 3 * 3600),
    ("daily-cleanup", "cleanup", "0 3 * * *", {}, None),
    ("weekly-stats", "update_stats", "0 4 * * 0", {}, None),
    # Stats readers add the unfolded job_logs tail on the fly (they never write): folding
    # hourly keeps that tail to about an hour of logs.
    ("hourly-stats-fold", "update_stats", "5 * * * *", {}, None),
    ("freshness-heal", "freshness_heal", "15 * * * *", {}, None),
    # The seed's Daily Harvest (02:00) and Weekly Embedding Generation (Saturday 01:00).
    ("daily-harvest", "harvest", "0 2 * * *", {"tenantId": "all"}, 4 * 3600),
    ("weekly-embeddings", "generate_embeddings", "0 1 * * 6", {"tenantId": "all"}, 6 * 3600),
    # Buyer questions of the day before, drafted before the seller starts the day.
    ("daily-questions", "generate_questions", "0 6 * * *", {"tenantId": "all"}, 4 * 3600),
    # Mercado Livre notifications that never arrived (listed by /missed_feeds for 2 days).
    ("mercadolivre-missed-feeds", "ml_missed_feeds", "*/15 * * * *", {}, None),
)


def ensure_defaults(
    engine: Engine,
    registry: Registry,
    clock: Clock | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> list[str]:
    """Create missing defaults; enable those whose type got installed. Returns what changed."""
    clock = clock or SystemClock()
    now = clock.now()
    changed = []
    with engine.begin() as conn:
        existing = {r.name: r for r in conn.execute(select(job_schedules))}
        for name, job_type, cron, payload, deadline in DEFAULTS:
            installed = job_type in registry and _payload_ok(registry, job_type, payload)
            row = existing.get(name)
            if row is None:
                conn.execute(
                    insert(job_schedules).values(
                        name=name,
                        job_type=job_type,
                        payload=payload,
                        cron=cron,
                        timezone=timezone,
                        enabled=installed,
                        disabled_reason=None if installed else NOT_INSTALLED,
                        deadline_s=deadline,
                        next_run_at=next_fire(cron, timezone, now),
                        created_at=now,
                        updated_at=now,
                    )
                )
                changed.append(f"created {name}" + ("" if installed else " (disabled)"))
            elif installed and not row.enabled and row.disabled_reason == NOT_INSTALLED:
                conn.execute(
                    update(job_schedules)
                    .where(job_schedules.c.id == row.id)
                    .values(
                        enabled=True,
                        disabled_reason=None,
                        updated_at=now,
                        next_run_at=next_fire(row.cron, row.timezone, now),
                    )
                )
                changed.append(f"enabled {name}")
    return changed


def _payload_ok(registry: Registry, job_type: str, payload: dict) -> bool:
    try:
        registry.parse_payload(job_type, payload)
        return True
    except JobError:
        return False
