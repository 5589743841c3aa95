"""Jobs made by hand (the admin API, the CLI) belong to the tenant their payload names, an
unknown tenant is refused up front, `superseller sync` joins the sync "Atualizar dados"
queued, and the CLI's job actions are in the audit trail: on both databases."""

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from superseller.config import Settings
from superseller.db.schema import jobs
from superseller.jobs import audit
from superseller.jobs.admin import JobAdmin
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import ADMIN, client, serving
from tests.support.cli import ROOT, cli
from tests.support.ml import connected_tenant, sandbox, sandbox_env, settings_for


def job_count(engine, **where) -> int:
    stmt = select(func.count()).select_from(jobs)
    for column, value in where.items():
        stmt = stmt.where(jobs.c[column] == value)
    with engine.connect() as conn:
        return conn.execute(stmt).scalar_one()


@pytest.fixture
def url(engine, tmp_path):
    for tid in ("t1", "t2"):
        mk.tenant(engine, tid)
        mk.account(engine, tid)
    create_user(engine, "ana@loja1.com", "correct horse battery", "seller", "t1")
    create_user(engine, "ops@superseller.dev", "correct horse battery", "admin")
    settings = Settings(data_dir=tmp_path)
    with serving(settings, engine, build_registry(settings)) as u:
        yield u


def test_a_job_created_through_the_admin_api_belongs_to_its_payloads_tenant(url, engine):
    with client(url, "ops@superseller.dev") as admin:
        made = admin.post(
            ADMIN, json={"type": "metrics_aggregation", "payload": {"tenantId": "t1"}}
        )
        assert made.status_code == 201, made.text
        job = made.json()["job"]
        assert job["tenantId"] == "t1"  # the console's Loja, its filter, the per-tenant cap
        listed = admin.get(ADMIN, params={"tenantId": "t1"}).json()["jobs"]
        assert [j["id"] for j in listed] == [job["id"]]
        # A fan-out over every tenant is no one tenant's.
        every = admin.post(
            ADMIN, json={"type": "metrics_aggregation", "payload": {"tenantId": "all"}}
        )
        assert every.status_code == 201 and every.json()["job"]["tenantId"] is None

        before = job_count(engine)
        ghost = admin.post(
            ADMIN, json={"type": "sync_mercadolivre", "payload": {"tenantId": "walk1"}}
        )
        assert ghost.status_code == 404, ghost.text
        assert ghost.json()["error"]["code"] == "tenant_not_found"
        assert "walk1" in ghost.json()["error"]["message"]
        other = admin.post(
            ADMIN,
            json={"type": "metrics_aggregation", "payload": {"tenantId": "t1"}, "tenantId": "t2"},
        )
        assert other.status_code == 400 and other.json()["error"]["code"] == "tenant_mismatch"
        # A type whose payload names its store, given the store beside it: that store's job.
        given = admin.post(ADMIN, json={"type": "sync_mercadolivre", "tenantId": "t2"})
        assert given.status_code == 201, given.text
        assert given.json()["job"]["tenantId"] == "t2"
        assert given.json()["job"]["payload"]["tenantId"] == "t2"
        before = job_count(engine)
        unknown_given = admin.post(ADMIN, json={"type": "cleanup", "tenantId": "walk1"})
        assert unknown_given.status_code == 404
        assert job_count(engine) == before  # nothing stored for a refused job
        assert job_count(engine, tenant_id="walk1") == 0

    created = [e["target_id"] for e in audit.entries(engine, action="job.create")]
    made_ids = [given.json()["job"]["id"], every.json()["job"]["id"], job["id"]]
    assert created == [str(i) for i in made_ids]


def test_cli_enqueue_gives_the_job_its_tenant_refuses_an_unknown_one_and_is_audited(db_url, engine):
    mk.tenant(engine, "walk1")
    as_ana = {"LOGNAME": "ana"}  # the OS user the CLI's actions are recorded under
    out = cli(
        db_url,
        "jobs", "enqueue", "metrics_aggregation", "--payload", '{"tenantId":"walk1"}',
        env=as_ana, check=True,
    ).stdout  # fmt: skip
    job_id = int(out.split()[-1])
    listed = json.loads(cli(db_url, "jobs", "list", "--tenant", "walk1", "--json").stdout)
    assert [j["id"] for j in listed] == [job_id]

    ghost = cli(db_url, "jobs", "enqueue", "sync_mercadolivre", "--payload", '{"tenantId":"nope"}')
    assert ghost.returncode == 1 and "tenant 'nope' not found" in ghost.stderr
    assert len(ghost.stderr.strip().splitlines()) == 1 and "Traceback" not in ghost.stderr
    mismatch = cli(
        db_url, "jobs", "enqueue", "metrics_aggregation",
        "--payload", '{"tenantId":"walk1"}', "--tenant", "t9",
    )  # fmt: skip
    assert mismatch.returncode == 2 and "differ" in mismatch.stderr  # bad input, like a typo
    assert job_count(engine) == 1

    # --tenant alone names the store of a type whose payload asks for one.
    by_option = cli(db_url, "jobs", "enqueue", "sync_mercadolivre", "--tenant", "walk1")
    assert by_option.returncode == 0, by_option.stderr
    shown = json.loads(cli(db_url, "jobs", "show", by_option.stdout.split()[-1]).stdout)["job"]
    assert (shown["tenant_id"], shown["payload"]) == ("walk1", {"tenantId": "walk1"})
    cli(db_url, "jobs", "cancel", str(shown["id"]), check=True)
    assert job_count(engine) == 2

    cli(db_url, "jobs", "cancel", str(job_id), env=as_ana, check=True)
    cli(db_url, "jobs", "retry", str(job_id), env=as_ana, check=True)
    trail = [
        (e["actor"], e["action"], e["target_id"])
        for e in audit.entries(engine)
        if e["target_id"] == str(job_id)
    ]
    assert trail == [
        ("cli:ana", "job.retry", str(job_id)),
        ("cli:ana", "job.cancel", str(job_id)),
        ("cli:ana", "job.create", str(job_id)),
    ]


def test_cli_sync_runs_the_sync_atualizar_dados_queued_when_no_worker_is_up(
    db_url, engine, tmp_path
):
    """The seller pressed "Atualizar dados" with no worker running; the operator then runs
    `superseller sync`: the command takes that same job (no second sync behind it), runs it
    here to the end and exits 0; the move is audited."""
    with sandbox(listings=3, orders_per_day=2) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings, "t1")
        create_user(engine, "ana@loja1.com", "correct horse battery", "seller", "t1")
        with serving(settings, engine, build_registry(settings)) as url:
            with client(url, "ana@loja1.com") as ana:
                refresh = ana.post("/api/v1/refresh", json={"days": 7})
        assert refresh.status_code == 202, refresh.text
        [queued] = refresh.json()["jobIds"]
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            **sandbox_env(sb.url, DATA_DIR=tmp_path, ML_REQUESTS_PER_S=0),
        }
        done = subprocess.run(
            [sys.executable, "-m", "superseller.cli", "sync", "--tenant", "t1"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
    assert done.returncode == 0, done.stderr
    assert f"joined job {queued} (pending; daysBack=7, tenantId=t1)" in done.stderr
    assert job_count(engine, type="sync_mercadolivre") == 1  # no second sync behind it
    job = JobAdmin(engine).get(queued)
    assert (job["status"], job["queue"]) == ("completed", "cli")
    [moved] = audit.entries(engine, action="job.move", target_id=str(queued))
    assert moved["actor"].startswith("cli")
    assert audit.entries(engine, action="job.create") == []  # it created nothing
