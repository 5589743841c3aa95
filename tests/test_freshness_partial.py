"""Freshness says `partial` while the last sync could not fetch some listings' visits (both
passes ran out of tries), until a sync fetches them all; the self-heal retries such a sync
once, not every hour. Real syncs against the sandbox, on SQLite and PostgreSQL."""

import json
from datetime import UTC, datetime

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from superseller.db.schema import jobs
from superseller.jobs.queue import Queue
from superseller.metrics.freshness import healable, tenant_freshness
from superseller.sandbox import data
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support.api import PASSWORD, client, serving
from tests.support.cli import cli
from tests.support.inproc import running_worker, wait_status
from tests.support.ml import connected_tenant, run_sync, sandbox, settings_for

SELLER = "ana@loja1.com"


def freshness(engine) -> dict:
    return tenant_freshness(engine, "t1", datetime.now(UTC))


def finish(engine, registry, sync: dict) -> dict:
    """Wait for the jobs a completed sync queued (rebuild, score); the sync's result."""
    assert sync["status"] == "completed", sync["last_error"]
    with running_worker(engine, registry):
        wait_status(engine, sync["result"]["rebuildJobId"], "completed")
        wait_status(engine, sync["result"]["scoreJobId"], "completed")
    return sync["result"]


def fail_visits_of(sb, ids: list[str]) -> None:
    """From now on the sandbox answers 500 to these listings' visits calls, every try."""
    r = httpx.post(f"{sb.url}/_sandbox/faults", json={"visits_fail_ids": ids})
    assert r.status_code == 200


def gauges(url: str) -> dict:
    text = httpx.get(f"{url}/metrics").text
    return {
        (s.name, s.labels.get("tenant")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_missing_visits_make_the_tenant_partial_everywhere_until_a_clean_sync(
    engine, db_url, tmp_path
):
    with sandbox(listings=20) as sb:
        settings = settings_for(sb, tmp_path, ml_max_tries=2)
        connected_tenant(engine, settings)
        registry = build_registry(settings)
        finish(engine, registry, run_sync(engine, registry))
        assert freshness(engine)["status"] == "ok"

        victims = sorted(data.item_id(sb.state.spec, i) for i in (3, 7))
        fail_visits_of(sb, victims)
        result = finish(engine, registry, run_sync(engine, registry))
        assert sorted(e["id"] for e in result["visitErrors"]) == victims
        assert result["visitsMissing"] == 2
        f = freshness(engine)
        assert (f["status"], f["label"], f["missingVisits"]) == ("partial", "Parcial", 2)
        assert [r["code"] for r in f["reasons"]] == ["visits_missing"]
        message = f["reasons"][0]["message"]
        assert "Faltam as visitas de 2 anúncios" in message
        assert "a próxima sincronização busca de novo" in message
        assert healable(f)  # the first sync in a row that left a gap: the heal retries it

        # Every reader of the status says so: the API, Prometheus, the CLI (which lists it
        # without alarming: the next sync retries).
        create_user(engine, SELLER, PASSWORD, "seller", "t1")
        with serving(settings, engine, registry) as url:
            with client(url, SELLER) as c:
                api = c.get("/api/v1/freshness")
            metrics = gauges(url)
        assert api.status_code == 200, api.text
        assert (api.json()["status"], api.json()["missingVisits"]) == ("partial", 2)
        assert metrics[("superseller_tenant_partial", "t1")] == 1
        assert metrics[("superseller_tenant_stale", "t1")] == 0
        listed = cli(db_url, "freshness", "--json")
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout)[0]["status"] == "partial"

        fail_visits_of(sb, [])  # Mercado Livre answers again: the next sync fetches them
        result = finish(engine, registry, run_sync(engine, registry))
        assert result["visitErrors"] == [] and result["visitsMissing"] == 0
        f = freshness(engine)
        assert (f["status"], f["reasons"], f["missingVisits"]) == ("ok", [], 0)
        with serving(settings, engine, registry) as url:
            assert gauges(url)[("superseller_tenant_partial", "t1")] == 0


def test_the_self_heal_retries_a_partial_tenants_sync_once_not_every_hour(engine, tmp_path):
    with sandbox(listings=10) as sb:
        settings = settings_for(sb, tmp_path, ml_max_tries=2)
        connected_tenant(engine, settings)
        registry = build_registry(settings)
        fail_visits_of(sb, [data.item_id(sb.state.spec, 2)])  # a listing ML keeps failing
        finish(engine, registry, run_sync(engine, registry))
        assert freshness(engine)["status"] == "partial"

        queue = Queue(engine, registry)
        heal = queue.enqueue("freshness_heal").id
        with running_worker(engine, registry):
            healed = wait_status(engine, heal, "completed")["result"]["healed"]
            assert [(h["tenantId"], h["reasons"]) for h in healed] == [("t1", ["visits_missing"])]
            retry = wait_status(engine, healed[0]["jobId"], "completed", "failed", timeout=120)
        assert retry["type"] == "sync_mercadolivre"
        finish(engine, registry, retry)
        f = freshness(engine)
        assert f["status"] == "partial" and f["partialSyncs"] == 2 and not healable(f)

        heal = queue.enqueue("freshness_heal").id
        with running_worker(engine, registry):
            result = wait_status(engine, heal, "completed")["result"]
        assert result["healed"] == []
        assert "next nightly sync" in result["notHealed"]["t1"]
        with engine.connect() as conn:
            syncs = conn.execute(
                select(func.count()).where(jobs.c.type == "sync_mercadolivre")
            ).scalar()
        assert syncs == 2  # the first sync and the one retry, no more

        fail_visits_of(sb, [])
        finish(engine, registry, run_sync(engine, registry))  # the next night's
        f = freshness(engine)
        assert (f["status"], f["partialSyncs"]) == ("ok", 0)


def test_a_listing_mercado_livre_refuses_is_no_gap(engine, tmp_path):
    """A 403 on a listing's visits is the listing's own lasting answer: reported among the
    sync's visit errors, but the store is not "Parcial" for it (no retry would fill it, and
    it would stay partial every day); a listing Mercado Livre did not answer still is."""
    with sandbox(listings=20) as sb:
        settings = settings_for(sb, tmp_path, ml_max_tries=2)
        connected_tenant(engine, settings)
        registry = build_registry(settings)
        refused, unanswered = (data.item_id(sb.state.spec, i) for i in (4, 9))
        r = httpx.post(
            f"{sb.url}/_sandbox/faults",
            json={"visits_refuse_ids": [refused], "visits_fail_ids": [unanswered]},
        )
        assert r.status_code == 200
        result = finish(engine, registry, run_sync(engine, registry))
        assert sorted(e["id"] for e in result["visitErrors"]) == sorted([refused, unanswered])
        assert result["visitsMissing"] == 1
        f = freshness(engine)
        assert (f["status"], f["missingVisits"]) == ("partial", 1)

        # Mercado Livre answers the other listing again (the faults are set as a whole).
        httpx.post(f"{sb.url}/_sandbox/faults", json={"visits_refuse_ids": [refused]})
        result = finish(engine, registry, run_sync(engine, registry))
        assert [e["id"] for e in result["visitErrors"]] == [refused]
        assert result["visitsMissing"] == 0
        assert freshness(engine)["status"] == "ok"
