"""`GET /metrics`: Prometheus text format (prometheus-client).

Job, schedule and freshness figures are read from the database at scrape time, so
every replica exposes the same truth however many workers run elsewhere; run
counts and durations come from the maintained counters (`superseller.jobs.stats`),
never a count over history. Mercado Livre request counters are this process's.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from superseller.api.deps import Services, services
from superseller.jobs import pause, reads, stats
from superseller.jobs.admin import schedule_views
from superseller.jobs.dbwatch import DB_ERRORS
from superseller.metrics.freshness import ON_TIME, PARTIAL, REAUTH_REQUIRED, all_freshness

router = APIRouter(include_in_schema=False)


class DatabaseCollector(Collector):
    def __init__(self, svc: Services):
        self.svc = svc

    def collect(self):
        svc = self.svc
        by_type = GaugeMetricFamily(
            "superseller_jobs", "Unfinished jobs by state and type.", labels=["state", "type"]
        )
        for status, job_type, n in reads.unfinished_by_type(svc.engine):
            by_type.add_metric([status, job_type], n)
        yield by_type
        counts = stats.queue_counts(svc.engine, svc.clock)
        due = GaugeMetricFamily("superseller_jobs_due", "Pending jobs already due to run.")
        due.add_metric([], counts["due"])
        yield due
        age = GaugeMetricFamily(
            "superseller_jobs_oldest_due_age_seconds", "How long the oldest due job has waited."
        )
        age.add_metric([], counts["oldestDueAgeS"] or 0)
        yield age

        runs = CounterMetricFamily(
            "superseller_job_runs",
            "Job runs (job_logs rows) by type and outcome.",
            labels=["type", "status"],
        )
        failures = CounterMetricFamily(
            "superseller_job_failures",
            "Job runs that failed (error, timeout), by type; interrupted runs (given back, "
            "rescued) and cancellations are not failures: see superseller_job_runs.",
            labels=["type"],
        )
        retries = CounterMetricFamily(
            "superseller_job_retries",
            "Job runs that were a retry (attempt > 1), by type.",
            labels=["type"],
        )
        seconds = CounterMetricFamily(
            "superseller_job_run_duration_seconds",
            "Total run time of job runs, by type (divide by runs for the mean).",
            labels=["type"],
        )
        for t in stats.job_type_stats(svc.engine, svc.clock)["types"]:
            for status, n in t["byStatus"].items():
                runs.add_metric([t["jobType"], status], n)
            failures.add_metric(
                [t["jobType"]],
                sum(n for s, n in t["byStatus"].items() if s in stats.FAILURE_STATUSES),
            )
            retries.add_metric([t["jobType"]], t["retries"])
            seconds.add_metric([t["jobType"]], t["totalDurationMs"] / 1000)
        yield from (runs, failures, retries, seconds)

        late = GaugeMetricFamily(
            "superseller_schedule_late",
            "1 when a schedule's latest tick has no successful job by its deadline.",
            labels=["schedule"],
        )
        enabled = GaugeMetricFamily(
            "superseller_schedule_enabled", "1 when a schedule is on.", labels=["schedule"]
        )
        for s in schedule_views(svc.engine, svc.registry, svc.clock):
            late.add_metric([s["name"]], 1 if (s["lateness"] or {}).get("late") else 0)
            enabled.add_metric([s["name"]], 1 if s["enabled"] else 0)
        yield from (late, enabled)

        stale = GaugeMetricFamily(
            "superseller_tenant_stale",
            "1 when a tenant's numbers are stale ('Desatualizado').",
            labels=["tenant"],
        )
        reauth = GaugeMetricFamily(
            "superseller_tenant_reauth_required",
            "1 when a tenant's Mercado Livre authorization was revoked or lost: nothing "
            "syncs until the seller reconnects (an alert: no retry fixes it).",
            labels=["tenant"],
        )
        partial = GaugeMetricFamily(
            "superseller_tenant_partial",
            "1 while a tenant's last sync left listings whose visits it could not fetch "
            "('Parcial'): the next sync retries them.",
            labels=["tenant"],
        )
        for f in all_freshness(svc.engine, svc.clock.now()):
            stale.add_metric([f["tenantId"]], 0 if f["status"] in ON_TIME else 1)
            partial.add_metric([f["tenantId"]], 1 if f["status"] == PARTIAL else 0)
            reauth.add_metric([f["tenantId"]], 1 if f["connection"] == REAUTH_REQUIRED else 0)
        yield from (stale, partial, reauth)
        state = pause.state(svc.engine)
        paused = GaugeMetricFamily("superseller_engine_paused", "1 while the engine is paused.")
        paused.add_metric([], 1 if state["paused"] else 0)
        yield paused
        queues = GaugeMetricFamily(
            "superseller_queue_paused",
            "1 for each queue paused on its own (absent: not paused).",
            labels=["queue"],
        )
        for q in state["pausedQueues"]:
            queues.add_metric([q["queue"]], 1)
        yield queues


class LoopCollector(Collector):
    """Liveness of the loops this process embeds (`serve --with-worker/--with-scheduler`,
    `--role all`, `demo`): read from memory, so it answers while the database is away."""

    def __init__(self, loops):
        self.loops = loops

    def collect(self):
        up = GaugeMetricFamily(
            "superseller_loop_up",
            "1 while an embedded loop runs and reaches the database (what /readyz checks).",
            labels=["loop"],
        )
        progress = GaugeMetricFamily(
            "superseller_loop_last_progress_timestamp_seconds",
            "When an embedded loop last got through to the database (claim, poll, pass).",
            labels=["loop"],
        )
        restarts = CounterMetricFamily(
            "superseller_loop_restarts",
            "Times an embedded loop died and was restarted.",
            labels=["loop"],
        )
        for loop in self.loops:
            status = loop.status()
            up.add_metric([loop.name], 1 if status["state"] == "ok" else 0)
            progress.add_metric([loop.name], loop.last_progress() or 0)
            restarts.add_metric([loop.name], loop.restarts)
        yield from (up, progress, restarts)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    loops = CollectorRegistry()
    loops.register(LoopCollector(getattr(request.app.state, "loops", [])))
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(services(request)))
    reachable = 1
    try:
        from_db = generate_latest(registry)
    except DB_ERRORS:  # the database is away: say so, keep the rest of the scrape
        from_db, reachable = b"", 0
    up = (
        "# HELP superseller_database_up 1 when the database answered this scrape.\n"
        "# TYPE superseller_database_up gauge\n"
        f"superseller_database_up {reachable}\n"
    ).encode()
    body = generate_latest(loops) + up + from_db + generate_latest(REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
