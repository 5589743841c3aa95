"""A store whose last sync failed for good (Mercado Livre answering 500 to everything, all
attempts spent) after a good one is told so on every load of the overview and by
GET /api/v1/freshness, not only in the tab that clicked "Atualizar dados": the numbers are
those of the last good sync and the next scheduled sync tries again. A later success
clears it; a cancelled sync (an operator's) is no failure, nor a sync still retrying.
Real syncs against the sandbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from superseller.db.schema import job_schedules
from superseller.jobs.admin import JobAdmin
from superseller.jobs.default_schedules import ensure_defaults
from superseller.jobs.queue import Queue
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support.api import PASSWORD, client, drain, serving
from tests.support.inproc import job, running_worker
from tests.support.ml import connected_tenant, run_sync, sandbox, settings_for
from tests.support.waiting import wait_until

SELLER = "ana@loja1.com"
SP = ZoneInfo("America/Sao_Paulo")  # the tenant's time zone (the default)
FAILED = re.compile(
    r"A última atualização, (?:às|ontem às|em \d\d/\d\d às) (\d\d:\d\d), não foi concluída: "
    r"a busca de pedidos e visitas no Mercado Livre falhou\. Os números são de (.+?)\. "
    r"Tentaremos de novo (?:amanhã )?às 02:00 — ou clique em Atualizar dados\."
)


def faults(sb, **rates) -> None:
    assert httpx.post(f"{sb.url}/_sandbox/faults", json=rates).status_code == 200


def seen(c) -> tuple[dict, str]:
    """What the seller sees: the freshness API and the overview's freshness badge (a fresh
    load of the page, as in any other tab)."""
    api = c.get("/api/v1/freshness")
    assert api.status_code == 200, api.text
    page = c.get("/")
    assert page.status_code == 200, page.text
    badge = re.search(r'<div id="freshness" class="badge (\w+)".*?</div>', page.text, re.S)
    assert badge, page.text
    return api.json(), html.unescape(re.sub(r"<[^>]+>|\s+", " ", badge.group(0))).strip()


def test_a_sync_that_failed_for_good_is_said_until_a_later_success(engine, tmp_path):
    with sandbox(listings=5) as sb:
        settings = settings_for(sb, tmp_path, ml_max_tries=1)
        connected_tenant(engine, settings)
        registry = build_registry(settings)
        ensure_defaults(engine, registry)  # the nightly sync at 02:00
        create_user(engine, SELLER, PASSWORD, "seller", "t1")
        assert run_sync(engine, registry)["status"] == "completed"
        drain(engine, registry)  # its rebuild and score: "Atualizado até …"
        with serving(settings, engine, registry) as url, client(url, SELLER) as c:
            fresh, badge = seen(c)
            assert fresh["status"] == "ok" and fresh.get("lastSyncFailed") is None, fresh
            good_until = fresh["updatedUntil"]
            assert badge == f"Atualizado até {good_until}", badge

            # Mercado Livre answers 500 to everything: the sync spends all its attempts.
            faults(sb, rate_500=1.0)
            failed = run_sync(engine, registry)
            assert failed["status"] == "failed"
            assert failed["attempts"] == failed["max_attempts"] == 3
            fresh, badge = seen(c)
            assert fresh["status"] == "ok", fresh  # within 26 h: not stale, but not silent
            said = fresh.get("lastSyncFailed")
            assert said is not None, fresh
            assert said["at"] == failed["finished_at"].isoformat()
            assert said["reason"] == "A busca de pedidos e visitas no Mercado Livre falhou"
            with engine.connect() as conn:
                nightly = conn.execute(
                    select(job_schedules.c.next_run_at).where(
                        job_schedules.c.name == "mercadolivre-daily-sync"
                    )
                ).scalar_one()
            assert said["nextSyncAt"] == nightly.isoformat()
            m = FAILED.fullmatch(said["message"])
            assert m, said["message"]
            assert m.group(1) == failed["finished_at"].astimezone(SP).strftime("%H:%M")
            assert m.group(2) == good_until
            # The overview, freshly loaded: the failure, not the green "Atualizado até".
            assert badge.startswith(said["message"]), badge
            assert "Atualizado até" not in badge
            assert "badge warn" in c.get("/").text

            # An operator's cancel is no success: the failure still stands.
            queued = Queue(engine, registry).enqueue(
                "sync_mercadolivre", {"tenantId": "t1", "daysBack": 8}, tenant_id="t1"
            )
            assert JobAdmin(engine).cancel(queued.id) == "cancelled"
            assert seen(c)[0]["lastSyncFailed"] == said

            # Mercado Livre answers again: the next sync clears it, everywhere.
            faults(sb)
            assert run_sync(engine, registry)["status"] == "completed"
            drain(engine, registry)
            fresh, badge = seen(c)
            assert fresh["status"] == "ok" and fresh.get("lastSyncFailed") is None, fresh
            assert badge.startswith("Atualizado até "), badge
            assert "last-sync-failed" not in c.get("/").text

            # A cancelled sync after the success is no failure.
            queued = Queue(engine, registry).enqueue(
                "sync_mercadolivre", {"tenantId": "t1", "daysBack": 8}, tenant_id="t1"
            )
            assert JobAdmin(engine).cancel(queued.id) == "cancelled"
            fresh, badge = seen(c)
            assert fresh.get("lastSyncFailed") is None and badge.startswith("Atualizado até "), (
                badge
            )

            # Nor is a sync still retrying (an attempt failed, attempts left): the refresh's
            # progress says it waits; it has not failed yet.
            faults(sb, rate_500=1.0)
            retrying = Queue(engine, registry).enqueue(
                "sync_mercadolivre", {"tenantId": "t1", "daysBack": 8}, tenant_id="t1"
            )
            with running_worker(engine, registry, retry_base_s=600):
                wait_until(
                    lambda: (
                        (j := job(engine, retrying.id))["attempts"] == 1
                        and j["status"] == "pending"
                    ),
                    timeout=120,
                    message="the sync's first attempt to fail and wait for its retry",
                )
            fresh, badge = seen(c)
            assert fresh.get("lastSyncFailed") is None and badge.startswith("Atualizado até "), (
                badge
            )
