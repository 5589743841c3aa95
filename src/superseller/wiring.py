"""The composition root: which job types exist. Features register their handlers here,
so that the job engine itself never imports a feature."""

from __future__ import annotations

from superseller.config import Settings
from superseller.jobs import cleanup, stats
from superseller.jobs.registry import Registry
from superseller.market import jobs as market_jobs
from superseller.mercadolivre import notification_jobs as ml_notifications
from superseller.mercadolivre import sync as ml_sync
from superseller.metrics import jobs as metrics_jobs
from superseller.scoring import jobs as scoring_jobs


def build_registry(settings: Settings) -> Registry:
    registry = Registry()
    cleanup.register(
        registry, job_days=settings.job_retention_days, log_days=settings.job_log_retention_days
    )
    stats.register(registry)
    metrics_jobs.register(registry)
    ml_sync.register(registry, settings)
    ml_notifications.register(registry, settings)
    scoring_jobs.register(registry)
    market_jobs.register(registry, settings)
    return registry
