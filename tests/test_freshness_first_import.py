"""`superseller freshness` (the operator's cron alarm) during a new seller's first import:
reported as `importing`, exit 0, not `stale`/`never_synced` (an alarm for every new seller);
`stale` again, reason `importing`, once the import has been queued longer than the
freshness objective. The real command, a real connection to the sandbox and its real first
import, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from superseller.db.schema import jobs
from superseller.mercadolivre.connect import enqueue_backfill
from superseller.metrics.freshness import OBJECTIVE
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support.api import PASSWORD, client, serving
from tests.support.cli import cli
from tests.support.inproc import running_worker, wait_status
from tests.support.ml import connected_tenant, sandbox, settings_for


def _freshness(db_url: str) -> tuple[int, dict]:
    proc = cli(db_url, "freshness", "--json")
    return proc.returncode, json.loads(proc.stdout)[0]


def test_a_first_import_in_progress_is_importing_not_an_alarm_until_it_lasts(
    engine, db_url, tmp_path
):
    with sandbox(listings=5) as sb:
        settings = settings_for(sb, tmp_path)
        registry = build_registry(settings)
        connected_tenant(engine, settings)
        # What the connection's callback queues: the first import (no worker runs it yet).
        job = enqueue_backfill(engine, registry, settings, "t1")

        code, fresh = _freshness(db_url)
        assert code == 0, fresh
        assert fresh["status"] == "importing" and fresh["label"] == "Importando"
        assert fresh["connection"] == "connected"
        codes = [r["code"] for r in fresh["reasons"]]
        assert "importing" in codes and "never_synced" not in codes

        # Queued longer ago than the objective and still not done: stuck, an alarm again.
        with engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job.id)
                .values(created_at=datetime.now(UTC) - OBJECTIVE - timedelta(hours=1))
            )
        code, fresh = _freshness(db_url)
        assert code == 1 and fresh["status"] == "stale", fresh
        slow = next(r for r in fresh["reasons"] if r["code"] == "importing")
        assert slow["message"].startswith("Importação em andamento desde")
        # The seller's badge says the same as the alarm (it stayed "em andamento", neutral).
        create_user(engine, "ana@loja1.com", PASSWORD, "seller", "t1")
        with serving(settings, engine, registry) as url, client(url, "ana@loja1.com") as ana:
            page = ana.get("/").text
        before, after = page.split('id="freshness"', 1)
        badge = before.rsplit("<div", 1)[1] + after.split("</div>", 1)[0]
        assert 'class="badge stale"' in badge and 'data-status="stale"' in badge
        assert "Importação em andamento desde" in badge

        # The import runs to the end (with its rebuild): an ordinary fresh seller.
        with running_worker(engine, registry):
            done = wait_status(engine, job.id, "completed", "failed", timeout=120)
            assert done["status"] == "completed", done["last_error"]
            for rid in done["result"]["rebuildJobIds"]:
                rebuilt = wait_status(engine, rid, "completed", "failed", timeout=120)
                assert rebuilt["status"] == "completed", rebuilt["last_error"]
        code, fresh = _freshness(db_url)
        assert code == 0 and fresh["status"] == "ok", fresh
