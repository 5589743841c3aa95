"""The seeds' commands and SQL, pasted exactly as printed (shared/seeds/002 and 004):
SQL on SQLite and PostgreSQL, the AWS CLI against a moto server. The Terraform ones are in
tests/test_terraform.py (deploy/terraform/tests/seed.tftest.hcl)."""

import os
import shutil
import socket
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import insert, text, update

from superseller.config import Settings
from superseller.db.schema import job_logs
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import serving
from tests.support.inproc import running_worker
from tests.support.waiting import wait_until

# shared/seeds/004 "Ver Logs", and the others of its "COMANDOS SQL ÚTEIS", as printed.
SEE_LOGS = "SELECT * FROM job_logs ORDER BY timestamp DESC LIMIT 10;"
SEE_JOBS = "SELECT * FROM jobs ORDER BY created_at DESC;"
SEE_SCHEDULES = "SELECT * FROM job_schedules WHERE enabled = true;"
STATS = "SELECT status, COUNT(*) FROM jobs GROUP BY status;"
# shared/seeds/002 "Cenario 2", step 2, as printed (tenant and dates filled in).
DATA_FIX = """DELETE FROM listing_metrics_daily
   WHERE tenant_id = 'SEU_TENANT_ID'
     AND date BETWEEN '2024-01-01' AND '2024-01-31'
     AND source = 'internal_job';"""
PERIODS = """SELECT date, COUNT(*), source
   FROM listing_metrics_daily
   WHERE tenant_id = 'SEU_TENANT_ID'
   GROUP BY date, source
   ORDER BY date DESC;"""

# shared/seeds/004 "Verificar Tabelas" (information_schema: PostgreSQL), as printed.
TABLES = """SELECT table_name 
FROM information_schema.tables 
WHERE table_schema = 'public' 
  AND table_name LIKE '%job%';"""
# shared/seeds/002 "Via job_logs no Banco de Dados" and the freshness checks, as printed.
LAST_REBUILDS = """SELECT 
  id,
  job_type,
  status,
  started_at,
  completed_at,
  duration_ms,
  records_processed,
  error_message,
  metadata
FROM job_logs
WHERE job_type = 'metrics_aggregation'
ORDER BY started_at DESC
LIMIT 10;"""
MAX_DATE = """SELECT 
  tenant_id,
  MAX(date) as max_date,
  COUNT(*) as total_records
FROM listing_metrics_daily
GROUP BY tenant_id;"""
UP_TO_DATE = """SELECT 
  CASE 
    WHEN MAX(date) >= CURRENT_DATE - INTERVAL '1 day' THEN 'OK'
    ELSE 'DESATUALIZADO'
  END as status,
  MAX(date) as ultima_data
FROM listing_metrics_daily
WHERE tenant_id = 'SEU_TENANT_ID';"""

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def _log(i: int) -> dict:
    start = T0 + timedelta(minutes=7 * ((i * 5) % 23))  # not in insertion order
    return dict(
        job_id=i,
        job_type="cleanup",
        status="success",
        attempt=1,
        started_at=start,
        completed_at=start + timedelta(seconds=1),
        duration_ms=1000,
    )


def test_see_logs_orders_by_timestamp_kept_equal_to_started_at(engine):
    with engine.begin() as conn:
        conn.execute(insert(job_logs), [_log(i) for i in range(23)])
        rows = conn.execute(text(SEE_LOGS)).mappings().all()
    assert len(rows) == 10
    expected = sorted((_log(i)["started_at"] for i in range(23)), reverse=True)[:10]
    got = [r["started_at"] for r in rows]
    if isinstance(got[0], str):  # SQLite text
        got = [datetime.fromisoformat(g).replace(tzinfo=UTC) for g in got]
    assert got == expected
    assert all(r["timestamp"] == r["started_at"] for r in rows)
    # kept in step by the database: a corrected started_at moves timestamp with it
    with engine.begin() as conn:
        conn.execute(update(job_logs).where(job_logs.c.job_id == 0).values(started_at=T0))
        t = conn.execute(text("SELECT timestamp FROM job_logs WHERE job_id = 0")).scalar()
    assert t == (T0 if engine.dialect.name == "postgresql" else "2026-01-10 12:00:00.000000")
    with engine.connect() as conn:
        for sql in (SEE_JOBS, SEE_SCHEDULES, STATS):
            conn.execute(text(sql)).all()  # runs as printed on both databases


def test_the_data_fix_query_finds_what_the_internal_endpoint_rebuilt(engine, tmp_path):
    key = "s3cr3t-key-for-tests"
    settings = Settings(data_dir=tmp_path, internal_jobs_key=key)
    registry = build_registry(settings)
    mk.tenant(engine, "SEU_TENANT_ID")
    mk.listing(engine, "SEU_TENANT_ID", "MLB1", date(2024, 1, 1))
    with serving(settings, engine, registry) as url, running_worker(engine, registry):
        r = httpx.post(
            f"{url}/api/v1/jobs/rebuild-daily-metrics",
            headers={"X-Internal-Key": key},
            json={"tenantId": "SEU_TENANT_ID", "from": "2024-01-01", "to": "2024-01-31"},
            timeout=30,
        )
    assert r.status_code == 200 and r.json()["rowsUpserted"] == 31, r.text
    with engine.connect() as conn:
        [log] = conn.execute(text(LAST_REBUILDS)).mappings().all()
        assert log["status"] == "success" and log["records_processed"] == 31
        assert conn.execute(text(MAX_DATE)).all() == [
            ("SEU_TENANT_ID", date(2024, 1, 31) if engine.dialect.name == "postgresql"
             else "2024-01-31", 31)
        ]  # fmt: skip
        if engine.dialect.name == "postgresql":  # INTERVAL and information_schema: PostgreSQL's
            assert conn.execute(text(UP_TO_DATE)).one()[0] == "DESATUALIZADO"
            names = set(conn.execute(text(TABLES)).scalars())
            assert {"jobs", "job_logs", "job_schedules"} <= names
    with engine.begin() as conn:
        periods = conn.execute(text(PERIODS)).all()
        assert {row[2] for row in periods} == {"internal_job"} and len(periods) == 31
        assert conn.execute(text(DATA_FIX)).rowcount == 31
        assert conn.execute(text(PERIODS)).all() == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def moto_server(monkeypatch):
    """A moto server in its own process: the real `aws` CLI talks to it over HTTP."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/moto-api/", timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, timeout=30, message="moto server")
        env = {
            "AWS_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-2",
        }
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        yield env
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _aws(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["aws", *args], capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_the_runbook_aws_commands_name_the_schedule_apply_created(moto_server):
    from superseller.aws import schedules as aws

    aws.apply(aws.Clients.default(), "https://api.superseller.example", "k3y-0123456789")
    got = _aws(
        "scheduler", "get-schedule", "--name", "superseller-daily-metrics-rebuild",
        "--region", "us-east-2",
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    # Cenario 1 as printed: the AWS CLI itself refuses it (UpdateSchedule replaces the whole
    # schedule, so it requires the expression, window and target). docs/OPERATIONS.md gives
    # `superseller aws schedules disable` beside it; that is what switches it off.
    seed_disable = _aws(
        "scheduler", "update-schedule", "--name", "superseller-daily-metrics-rebuild",
        "--state", "DISABLED", "--region", "us-east-2",
    )  # fmt: skip
    assert seed_disable.returncode != 0 and "--schedule-expression" in seed_disable.stderr
    aws.set_state(aws.Clients.default(), False)
    state = _aws(
        "scheduler", "get-schedule", "--name", "superseller-daily-metrics-rebuild",
        "--region", "us-east-2", "--query", "State", "--output", "text",
    )  # fmt: skip
    assert state.stdout.strip() == "DISABLED"
    # Cenario 3 as printed.
    deleted = _aws(
        "scheduler", "delete-schedule", "--name", "superseller-daily-metrics-rebuild",
        "--region", "us-east-2",
    )  # fmt: skip
    assert deleted.returncode == 0, deleted.stderr
    left = _aws("scheduler", "list-schedules", "--region", "us-east-2", "--query",
                "Schedules[].Name", "--output", "text")  # fmt: skip
    assert left.stdout.split() == ["superseller-sync"]
