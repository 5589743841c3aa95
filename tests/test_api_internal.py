"""Internal job endpoints and health checks, over real HTTP, on SQLite and PostgreSQL."""

import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import delete, func, select, update

from superseller.api import internal
from superseller.api import job_status as job_status_routes
from superseller.config import Settings
from superseller.db.schema import audit_log, jobs, marketplace_accounts
from superseller.jobs.queue import Queue
from superseller.tenant_jobs import sync_key
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import serving
from tests.support.inproc import job, running_worker

KEY = "s3cr3t-key-for-tests-0123456"  # >= 24 characters, or serve refuses to start


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=tmp_path, internal_jobs_key=KEY)


@pytest.fixture
def registry(settings):
    return build_registry(settings)


@pytest.fixture
def api(engine, settings, registry):
    with serving(settings, engine, registry) as url:
        yield httpx.Client(base_url=url, headers={"X-Internal-Key": KEY}, timeout=30)


def test_health_and_readiness(api, engine):
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    with engine.begin() as conn:  # migrations behind: not ready
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
    assert api.get("/readyz").status_code == 503


@pytest.mark.parametrize(
    "given",
    ["", "wrong", KEY[:-1], KEY + "x", KEY.upper()],
    ids=["empty", "wrong", "prefix", "longer", "case"],
)
def test_a_wrong_key_is_401(api, given):
    r = api.post(
        "/api/v1/jobs/sync-mercadolivre", json={"tenantId": "t1"}, headers={"X-Internal-Key": given}
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_a_missing_key_is_401_and_the_right_key_gets_past_the_door(api, engine):
    url = f"{api.base_url}/api/v1/jobs/sync-mercadolivre"
    no_header = httpx.post(url, json={"tenantId": "t1"})
    assert no_header.status_code == 401 and no_header.json()["error"]["code"] == "unauthorized"
    mk.tenant(engine)
    mk.account(engine, "t1")  # a sync of a tenant never connected is a 409, not a 202
    assert api.post("/api/v1/jobs/sync-mercadolivre", json={"tenantId": "t1"}).status_code == 202


def test_no_configured_key_is_503_not_an_open_door(engine, tmp_path, registry):
    with serving(Settings(data_dir=tmp_path), engine, registry) as url:
        r = httpx.post(
            f"{url}/api/v1/jobs/sync-mercadolivre",
            json={"tenantId": "t1"},
            headers={"X-Internal-Key": "anything"},
        )
    assert r.status_code == 503 and "internal jobs disabled" in r.json()["error"]["message"]


def test_sync_is_accepted_and_idempotent(api, engine, caplog):
    mk.tenant(engine)
    mk.account(engine, "t1")
    caplog.set_level(logging.INFO, logger="superseller.api.internal")
    first = api.post("/api/v1/jobs/sync-mercadolivre", json={"tenantId": "t1"})
    assert first.status_code == 202
    body = first.json()
    assert body["status"] == "pending" and body["statusUrl"] == f"/api/v1/jobs/{body['jobId']}"
    again = api.post("/api/v1/jobs/sync-mercadolivre", json={"tenantId": "t1", "daysBack": 30})
    assert again.json()["jobId"] == body["jobId"]  # EventBridge retried: same job
    assert job(engine, body["jobId"])["payload"] == {"tenantId": "t1", "daysBack": 30}
    status = api.get(body["statusUrl"]).json()
    assert status["job"]["type"] == "sync_mercadolivre"
    lines = [r.getMessage() for r in caplog.records if "[INTERNAL-JOB]" in r.getMessage()]
    assert len(lines) == 2 and all(KEY not in line for line in lines)
    k1 = api.post(
        "/api/v1/jobs/sync-mercadolivre",
        json={"tenantId": "all"},
        headers={"Idempotency-Key": "run-2026-01-19"},
    ).json()
    k2 = api.post(
        "/api/v1/jobs/sync-mercadolivre",
        json={"tenantId": "all"},
        headers={"Idempotency-Key": "run-2026-01-19"},
    ).json()
    assert k1["jobId"] == k2["jobId"] != body["jobId"]


def test_a_repeated_sync_says_the_status_of_the_job_it_returns(api, engine):
    mk.tenant(engine)
    mk.account(engine, "t1")
    first = api.post("/api/v1/jobs/sync-mercadolivre", json={"tenantId": "t1"}).json()
    with engine.begin() as conn:  # a worker took it meanwhile
        conn.execute(update(jobs).where(jobs.c.id == first["jobId"]).values(status="running"))
    again = api.post("/api/v1/jobs/sync-mercadolivre", json={"tenantId": "t1"})
    assert again.status_code == 202
    assert again.json()["jobId"] == first["jobId"] and again.json()["status"] == "running"


def test_a_body_that_is_not_json_names_the_body(api, engine):
    mk.tenant(engine)
    r = api.post(
        "/api/v1/jobs/sync-mercadolivre",
        content=b'{"tenantId": "t1", oops}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    [field] = r.json()["error"]["fields"]
    assert field["field"] == "body" and field["problem"].startswith("invalid JSON"), field


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "sync-mercadolivre-typo"),
        ("POST", "unknown"),
        ("GET", "unknown"),
        ("PUT", "sync-mercadolivre/more"),
        ("DELETE", "1/logs"),
        ("GET", "-1"),
    ],
)
def test_an_unknown_job_endpoint_is_404(api, engine, method, path):
    r = api.request(method, f"/api/v1/jobs/{path}", json={"tenantId": "t1"})
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"
    assert "allow" not in r.headers
    with engine.connect() as conn:  # nothing queued
        assert conn.execute(select(func.count()).select_from(jobs)).scalar() == 0


def job_routes() -> list[tuple[str, set[str]]]:
    """(a concrete path, its methods) of every route under /api/v1/jobs: the internal
    endpoints and the JWT status routes that share the prefix."""
    found = [
        (re.sub(r"\{[^}]+\}", "7", route.path_format), set(route.methods))
        for route in (*internal.router.routes, *job_status_routes.router.routes)
        if isinstance(route, APIRoute)
    ]
    assert {"/api/v1/jobs/sync-mercadolivre", "/api/v1/jobs/7"} <= {p for p, _ in found}
    return found


def test_a_known_job_path_with_another_method_is_405_naming_the_allowed_ones(api, engine):
    """GET to a POST-only endpoint, POST to the status resource...: 405 with `Allow` and
    the API's JSON error, with or without the key (routing comes before the key check)."""
    mk.tenant(engine)
    mk.account(engine, "t1")
    asked = 0
    keyless = httpx.Client(base_url=api.base_url, timeout=30)
    for path, methods in job_routes():
        for method in sorted({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} - methods):
            for caller in (api, keyless):
                r = caller.request(method, path, json={"tenantId": "t1"})
                where = f"{method} {path}: {r.status_code} {r.text[:200]}"
                assert r.status_code == 405, where
                assert set(r.headers["allow"].split(", ")) == methods, where
                if method != "HEAD":
                    assert r.json()["error"]["code"] == "method_not_allowed", where
                    assert method in r.json()["error"]["message"], where
                asked += 1
    keyless.close()
    assert asked >= 20
    with engine.connect() as conn:  # nothing queued
        assert conn.execute(select(func.count()).select_from(jobs)).scalar() == 0


def test_rebuild_answers_200_with_the_seed_shape_when_quick(api, engine, registry):
    mk.tenant(engine)
    mk.listing(engine, "t1", "MLB1", date(2026, 1, 1))
    with running_worker(engine, registry):
        r = api.post(
            "/api/v1/jobs/rebuild-daily-metrics",
            json={"tenantId": "t1", "from": "2026-01-01", "to": "2026-01-31"},
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["daysProcessed"] == 31
    assert body["rowsUpserted"] == 31 and body["listingsProcessed"] == 1
    assert body["dateRange"] == {
        "from": "2026-01-01",
        "to": "2026-01-31",
        "maxDateAfterRebuild": "2026-01-31",
    }
    assert isinstance(body["jobLogId"], int) and isinstance(body["duration"], int)


def test_rebuild_without_dates_covers_30_local_days_and_202_when_slow(engine, settings, registry):
    mk.tenant(engine)
    with serving(settings, engine, registry, short_wait_s=0.3) as url:  # no worker running
        r = httpx.post(
            f"{url}/api/v1/jobs/rebuild-daily-metrics",
            json={"tenantId": "t1"},
            headers={"X-Internal-Key": KEY},
        )
    assert r.status_code == 202
    payload = job(engine, r.json()["jobId"])["payload"]
    assert (date.fromisoformat(payload["to"]) - date.fromisoformat(payload["from"])).days == 29


def test_rebuild_all_fans_out(api, engine, registry):
    for t in ("t1", "t2"):
        mk.tenant(engine, t)
    with running_worker(engine, registry):
        r = api.post(
            "/api/v1/jobs/rebuild-daily-metrics",
            json={"tenantId": "all", "from": "2026-01-01", "to": "2026-01-02"},
        )
    assert r.status_code == 200 and r.json()["fannedOut"] == 2


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("sync-mercadolivre", {"tenantId": "ghost"}, 404, "tenant_not_found"),
        # No Mercado Livre account: a sync could only fail, so none is queued.
        ("sync-mercadolivre", {"tenantId": "t1"}, 409, "not_connected"),
        ("sync-mercadolivre", {"tenantId": "t1", "daysBack": 0}, 422, "invalid_request"),
        ("sync-mercadolivre", {"tenantId": "t1", "extra": 1}, 422, "invalid_request"),
        ("sync-mercadolivre", {}, 422, "invalid_request"),
        (
            "rebuild-daily-metrics",
            {"tenantId": "t1", "from": "2026-02-01", "to": "2026-01-01"},
            400,
            "invalid_range",
        ),
        (
            "rebuild-daily-metrics",
            {"tenantId": "t1", "from": "01/02/2026", "to": "2026-02-03"},
            400,
            "invalid_range",
        ),
        ("rebuild-daily-metrics", {"tenantId": "t1", "from": "2026-01-01"}, 422, "invalid_request"),
    ],
)
def test_bad_input_is_a_clear_4xx(api, engine, path, body, status, code):
    mk.tenant(engine)
    r = api.post(f"/api/v1/jobs/{path}", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    with engine.connect() as conn:  # nothing queued
        assert conn.execute(select(func.count()).select_from(jobs)).scalar() == 0
    not_json = api.post(
        f"/api/v1/jobs/{path}", content=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 422
    assert api.get("/api/v1/jobs/999999").status_code == 404


def test_all_in_one_serve_runs_jobs_and_stops_on_sigterm(db_url, engine, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from superseller.sandbox.server import free_port
    from tests.support.procs import ROOT
    from tests.support.waiting import wait_until

    mk.tenant(engine)
    mk.listing(engine, "t1", "MLB1", date(2026, 1, 1))
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "INTERNAL_JOBS_KEY": KEY,
        "DATA_DIR": str(tmp_path),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "superseller.cli",
            "serve",
            "--port",
            str(port),
            "--with-worker",
            "--with-scheduler",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def ready():
        try:
            return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, timeout=30, message="serve ready")
        r = httpx.post(
            f"{url}/api/v1/jobs/rebuild-daily-metrics",
            headers={"X-Internal-Key": KEY},
            json={"tenantId": "t1", "from": "2026-01-01", "to": "2026-01-05"},
            timeout=30,
        )
        assert r.status_code == 200 and r.json()["rowsUpserted"] == 5  # its own worker ran it
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0, proc.stderr.read()[-2000:]


def sync_jobs(engine) -> list[int]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(jobs.c.id).where(jobs.c.type == "sync_mercadolivre").order_by(jobs.c.id)
            ).scalars()
        )


def finish_job(engine, job_id: int, status: str = "completed") -> None:
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(status=status))


def test_a_keyed_sync_joins_the_tenants_pending_sync_and_keeps_answering_it(api, engine, registry):
    """The nightly fan-out (or "Atualizar dados") queued the tenant's sync: a call with an
    Idempotency-Key joins it instead of queueing a second sync of the same store; a retry
    with that key answers the same job once it finished, rather than syncing again."""
    mk.tenant(engine)
    mk.account(engine, "t1")
    nightly = Queue(engine, registry).enqueue(
        "sync_mercadolivre", {"tenantId": "t1"}, tenant_id="t1", unique_key=sync_key("t1")
    )
    key = {"Idempotency-Key": "eventbridge-2026-01-19"}
    joined = api.post("/api/v1/jobs/sync-mercadolivre", json={"tenantId": "t1"}, headers=key)
    assert joined.status_code == 202, joined.text
    assert joined.json()["jobId"] == nightly.id and joined.json()["status"] == "pending"
    assert sync_jobs(engine) == [nightly.id]
    finish_job(engine, nightly.id)
    again = api.post("/api/v1/jobs/sync-mercadolivre", json={"tenantId": "t1"}, headers=key)
    assert again.status_code == 202
    assert again.json() == {**joined.json(), "status": "completed"}
    assert sync_jobs(engine) == [nightly.id]  # not synced twice for one request
    # Without the key, or with a new one, the finished sync does not stop a new one.
    fresh = api.post("/api/v1/jobs/sync-mercadolivre", json={"tenantId": "t1"}).json()
    other = api.post(
        "/api/v1/jobs/sync-mercadolivre",
        json={"tenantId": "t1"},
        headers={"Idempotency-Key": "eventbridge-2026-01-20"},
    ).json()
    assert fresh["jobId"] == other["jobId"] != nightly.id
    assert sync_jobs(engine) == [nightly.id, fresh["jobId"]]


def test_an_idempotency_key_names_one_request_for_24_hours(api, engine):
    mk.tenant(engine)
    mk.account(engine, "t1")
    key = {"Idempotency-Key": "run-42"}
    first = api.post("/api/v1/jobs/sync-mercadolivre", json={"tenantId": "t1"}, headers=key)
    assert first.status_code == 202 and first.json()["status"] == "pending"
    finish_job(engine, first.json()["jobId"], "failed")
    same = api.post(
        "/api/v1/jobs/sync-mercadolivre", json={"tenantId": "t1", "daysBack": 30}, headers=key
    )
    assert same.json() == {**first.json(), "status": "failed"}  # the same request's answer
    # The same key for another request: refused, nothing queued.
    for path, body in [
        ("sync-mercadolivre", {"tenantId": "t1", "daysBack": 7}),
        ("rebuild-daily-metrics", {"tenantId": "t1"}),
    ]:
        reused = api.post(f"/api/v1/jobs/{path}", json=body, headers=key)
        assert reused.status_code == 422, reused.text
        assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert sync_jobs(engine) == [first.json()["jobId"]]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(jobs)).scalar() == 1
    # A day later the key is forgotten: it queues a new sync.
    with engine.begin() as conn:
        day_ago = datetime.now(UTC) - timedelta(hours=24, seconds=1)
        conn.execute(update(audit_log).values(at=day_ago))
    later = api.post("/api/v1/jobs/sync-mercadolivre", json={"tenantId": "t1"}, headers=key)
    assert later.status_code == 202 and later.json()["jobId"] != first.json()["jobId"]
    assert later.json()["status"] == "pending"


def test_a_keyed_rebuild_joins_the_same_ranges_pending_rebuild(engine, settings, registry):
    """The rebuild a sync queued for a range is pending: a keyed call for that range joins
    it (it queued a second one), and its retry answers it."""
    mk.tenant(engine)
    queued = Queue(engine, registry).enqueue(
        "metrics_aggregation",
        {"tenantId": "t1", "from": "2026-01-01", "to": "2026-01-05"},
        tenant_id="t1",
        unique_key="rebuild:t1:2026-01-01:2026-01-05",  # as the sync queues it
    )
    body = {"tenantId": "t1", "from": "2026-01-01", "to": "2026-01-05"}
    key = {"X-Internal-Key": KEY, "Idempotency-Key": "rebuild-jan"}
    with serving(settings, engine, registry, short_wait_s=0.2) as url:  # no worker running
        r = httpx.post(f"{url}/api/v1/jobs/rebuild-daily-metrics", json=body, headers=key)
        assert r.status_code == 202 and r.json()["jobId"] == queued.id
        finish_job(engine, queued.id)
        again = httpx.post(f"{url}/api/v1/jobs/rebuild-daily-metrics", json=body, headers=key)
    assert again.status_code == 200 and again.json()["jobId"] == queued.id
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(jobs)).scalar() == 1


def keyed_entries(engine, key: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count())
            .select_from(audit_log)
            .where(audit_log.c.detail["idempotencyKey"].as_string() == key)
        ).scalar()


def test_two_calls_with_one_key_at_once_get_one_answer(api, engine, monkeypatch):
    """EventBridge sends a retry while the first call is still in flight: both look the key
    up before either has recorded it. The second must still see the first: here the bodies
    differ, so exactly one is accepted and the other refused (before, both were accepted,
    and the key named two requests)."""
    mk.tenant(engine)
    mk.account(engine, "t1")
    barrier = threading.Barrier(2)
    looked_up = internal._remembered

    def both_missed(*args):
        found = looked_up(*args)
        barrier.wait(timeout=30)  # both calls have looked the key up, neither recorded it
        return found

    monkeypatch.setattr(internal, "_remembered", both_missed)
    key = "retry-in-flight"

    def call(days: int) -> httpx.Response:
        return httpx.post(
            f"{api.base_url}/api/v1/jobs/sync-mercadolivre",
            json={"tenantId": "t1", "daysBack": days},
            headers={"X-Internal-Key": KEY, "Idempotency-Key": key},
            timeout=60,
        )

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(call, [7, 30]))
    assert sorted(r.status_code for r in answers) == [202, 422], [r.text for r in answers]
    refused = next(r for r in answers if r.status_code == 422)
    assert refused.json()["error"]["code"] == "idempotency_key_reused"
    accepted = next(r for r in answers if r.status_code == 202)
    assert sync_jobs(engine) == [accepted.json()["jobId"]]
    assert keyed_entries(engine, key) == 1


def test_two_calls_with_one_key_and_body_at_once_answer_one_job(api, engine, monkeypatch):
    """The same race with the same body: one call queues the rebuild, the other answers it
    as a repeat (one keyed audit entry: the key names one request)."""
    mk.tenant(engine)
    barrier = threading.Barrier(2)
    looked_up = internal._remembered

    def both_missed(*args):
        found = looked_up(*args)
        barrier.wait(timeout=30)
        return found

    monkeypatch.setattr(internal, "_remembered", both_missed)
    key = "rebuild-in-flight"

    def call(_: int) -> httpx.Response:
        return httpx.post(
            f"{api.base_url}/api/v1/jobs/rebuild-daily-metrics",
            json={"tenantId": "t1", "from": "2026-01-01", "to": "2026-01-05"},
            headers={"X-Internal-Key": KEY, "Idempotency-Key": key},
            timeout=60,
        )

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(call, [0, 1]))
    assert {r.status_code for r in answers} <= {200, 202}, [r.text for r in answers]
    assert answers[0].json()["jobId"] == answers[1].json()["jobId"]
    assert keyed_entries(engine, key) == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(jobs)).scalar() == 1


def test_a_retry_answers_its_job_even_after_the_store_disconnected(api, engine):
    """A retry of an accepted call answers the job the first call got, before the tenant
    checks: the store disconnecting in between does not turn it into a 409 (a call
    without the key, or with a new one, gets the 409)."""
    mk.tenant(engine)
    mk.account(engine, "t1")
    key = {"Idempotency-Key": "nightly-2026-01-19"}
    first = api.post("/api/v1/jobs/sync-mercadolivre", json={"tenantId": "t1"}, headers=key)
    assert first.status_code == 202, first.text
    with engine.begin() as conn:
        conn.execute(delete(marketplace_accounts))
    again = api.post("/api/v1/jobs/sync-mercadolivre", json={"tenantId": "t1"}, headers=key)
    assert again.status_code == 202 and again.json()["jobId"] == first.json()["jobId"]
    fresh = api.post(
        "/api/v1/jobs/sync-mercadolivre",
        json={"tenantId": "t1"},
        headers={"Idempotency-Key": "nightly-2026-01-20"},
    )
    assert fresh.status_code == 409 and fresh.json()["error"]["code"] == "not_connected"
