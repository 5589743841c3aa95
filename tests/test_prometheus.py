"""`GET /metrics` exposes jobs, runs, retries, lateness, freshness and Mercado Livre calls
after real work: a sandbox sync with injected 429s, run by the job engine."""

from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families

from superseller.jobs.queue import Queue
from superseller.jobs.schedules import Schedules
from superseller.tenants import create_tenant
from superseller.wiring import build_registry
from tests.support.api import serving
from tests.support.ml import connected_tenant, run_sync, sandbox, settings_for


def samples(text: str) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(data, name, **labels):
    return data.get((name, tuple(sorted(labels.items()))))


def test_metrics_after_a_sync_with_429s(engine, tmp_path):
    with sandbox(listings=30) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        registry = build_registry(settings)
        httpx.post(f"{sb.url}/_sandbox/faults", json={"rate_429": 0.3, "retry_after_s": 0.01})
        done = run_sync(engine, registry, days_back=7)
        assert done["status"] == "completed", done["last_error"]
        Queue(engine, registry).enqueue("cleanup", run_at=datetime.now(UTC) + timedelta(hours=1))
        create_tenant(engine, "Loja Nova", tenant_id="t2")  # never synced
        Schedules(engine, registry).create(
            "nightly-rebuild",
            "metrics_aggregation",
            "0 3 * * *",
            payload={"tenantId": "t1"},
            deadline_s=3600,
        )
        with serving(settings, engine, registry) as url:
            r = httpx.get(f"{url}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    data = samples(r.text)
    assert (
        value(data, "superseller_job_runs_total", type="sync_mercadolivre", status="success") == 1
    )
    assert (
        value(data, "superseller_job_run_duration_seconds_total", type="sync_mercadolivre")
        >= done["result"]["durationMs"] / 1000
        > 0
    )
    assert value(data, "superseller_job_failures_total", type="sync_mercadolivre") == 0
    assert value(data, "superseller_jobs", state="pending", type="cleanup") == 1
    assert value(data, "superseller_schedule_late", schedule="nightly-rebuild") == 0
    assert value(data, "superseller_schedule_enabled", schedule="nightly-rebuild") == 1
    assert value(data, "superseller_tenant_stale", tenant="t2") == 1
    assert value(data, "superseller_engine_paused") == 0
    # This process made the calls: requests by status, 429s, retries, the connect's tokens.
    ok = value(data, "superseller_ml_requests_total", status="200")
    limited = value(data, "superseller_ml_rate_limited_total")
    assert ok >= done["result"]["requests"] - done["result"]["retries"]
    assert limited >= 1 and value(data, "superseller_ml_requests_total", status="429") >= limited
    assert value(data, "superseller_ml_retries_total") >= done["result"]["retries"]
    assert "# TYPE superseller_ml_token_refreshes_total counter" in r.text


def test_paused_queues_are_a_gauge_per_queue(engine, tmp_path):
    from superseller.config import Settings
    from superseller.jobs import pause
    from tests.support import handlers

    pause.set_queue_paused(engine, "slow", True, "quota")
    with serving(Settings(data_dir=tmp_path), engine, handlers.build_registry()) as url:
        data = samples(httpx.get(f"{url}/metrics").text)
        assert value(data, "superseller_queue_paused", queue="slow") == 1
        assert value(data, "superseller_engine_paused") == 0
        pause.set_queue_paused(engine, "slow", False)
        data = samples(httpx.get(f"{url}/metrics").text)
        assert value(data, "superseller_queue_paused", queue="slow") is None


def test_a_seller_who_revoked_the_app_raises_the_reconnect_alert(engine, tmp_path):
    """`superseller_tenant_reauth_required` goes 0 -> 1 when Mercado Livre refuses the
    seller's grant: no retry can fix that, someone must ask the seller to reconnect."""
    with sandbox(listings=5) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        create_tenant(engine, "Loja Nova", tenant_id="t2")  # never connected: not this alert
        registry = build_registry(settings)
        with serving(settings, engine, registry) as url:
            before = samples(httpx.get(f"{url}/metrics").text)
            httpx.post(f"{sb.url}/_sandbox/revoke", json={})
            done = run_sync(engine, registry, days_back=7)
            after = samples(httpx.get(f"{url}/metrics").text)
    assert done["status"] == "failed" and "re-authorization" in done["last_error"]
    assert value(before, "superseller_tenant_reauth_required", tenant="t1") == 0
    assert value(after, "superseller_tenant_reauth_required", tenant="t1") == 1
    assert value(after, "superseller_tenant_reauth_required", tenant="t2") == 0
    assert value(after, "superseller_tenant_stale", tenant="t1") == 1
