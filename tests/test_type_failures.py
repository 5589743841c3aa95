"""The console's "Por tipo" table and the stats API count as failures only attempts that
failed (an error, a time-out). An attempt cut off without the job's fault (its database
connection lost and given back, its worker lost and rescued, its worker shut down) is an
interruption, counted apart; a success or a cancel is neither. Read from the live job_logs
tail and from the folded hourly counters alike."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import insert

from superseller.config import Settings
from superseller.db.schema import job_logs
from superseller.jobs import stats
from superseller.jobs.clock import ManualClock
from superseller.users.accounts import create_user
from tests.support import handlers
from tests.support.api import serving
from tests.support.browser import ADMIN, PASSWORD

NOW = datetime.now(UTC).replace(microsecond=0)
STATUSES = ["success", "error", "timeout", "disconnected", "lost", "interrupted", "cancelled"]


def _log_runs(engine) -> None:
    with engine.begin() as conn:
        for i, status in enumerate(STATUSES, start=1):
            started = NOW - timedelta(hours=2)
            conn.execute(
                insert(job_logs).values(
                    job_id=i,
                    job_type="sync_mercadolivre",
                    tenant_id="t1",
                    status=status,
                    attempt=1,
                    started_at=started,
                    completed_at=started + timedelta(seconds=1),
                    duration_ms=1000,
                    records_processed=0,
                    error_message=None if status == "success" else status,
                )
            )


def _counts(engine) -> tuple[int, int, int]:
    [row] = stats.job_type_stats(engine, ManualClock(NOW))["types"]
    hours = stats.hourly(engine, 24, clock=ManualClock(NOW))["buckets"]
    return row["failures24h"], row["interrupted24h"], sum(b["failures"] for b in hours)


@pytest.mark.parametrize("folded", [False, True], ids=["live", "folded"])
def test_interrupted_attempts_are_not_failures(engine, folded):
    _log_runs(engine)
    if folded:
        assert stats.fold(engine, ManualClock(NOW + timedelta(minutes=5))) == len(STATUSES)
    assert _counts(engine) == (2, 3, 2)  # error + timeout; disconnected + lost + interrupted


def test_the_console_shows_interruptions_in_their_own_column(engine, tmp_path):
    _log_runs(engine)
    create_user(engine, ADMIN, PASSWORD, "admin")
    registry = handlers.build_registry()
    with (
        serving(Settings(data_dir=tmp_path), engine, registry) as url,
        httpx.Client(base_url=url) as admin,
    ):
        admin.post("/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})
        html = admin.get("/jobs").text
        stats_api = admin.get("/api/admin/jobs/stats").json()
        metrics = admin.get("/metrics").text
    assert ">Falhas 24 h</th>" in html and ">Interrompidas 24 h</th>" in html
    row = re.search(r"<tr><td>sync_mercadolivre</td>(.*?)</tr>", html).group(1)
    cells = re.findall(r'<td class="num">([^<]*)</td>', row)
    assert cells[:4] == ["7", "7", "2", "3"]  # runs, 24 h, failures, interrupted
    [api_row] = [t for t in stats_api["types"] if t["jobType"] == "sync_mercadolivre"]
    assert (api_row["failures24h"], api_row["interrupted24h"]) == (2, 3)
    # Prometheus' failure counter, which alerts fire on, follows the same rule.
    assert 'superseller_job_failures_total{type="sync_mercadolivre"} 2.0' in metrics
