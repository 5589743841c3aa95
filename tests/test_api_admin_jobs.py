"""The admin jobs API and the job status/stats API, over real HTTP, on both databases."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from superseller.config import Settings
from superseller.db.schema import job_logs, job_stats_state
from superseller.jobs import stats
from superseller.jobs.clock import ManualClock
from superseller.jobs.schedules import Schedules
from superseller.users.accounts import create_user
from tests.support import handlers
from tests.support import marketplace as mk
from tests.support.api import ADMIN, PASSWORD, client, drain, serving


@pytest.fixture
def registry():
    reg = handlers.build_registry()
    stats.register(reg)
    return reg


@pytest.fixture
def url(engine, registry, tmp_path):
    mk.tenant(engine, "t1")
    mk.tenant(engine, "t2")
    create_user(engine, "ana@loja1.com", PASSWORD, "seller", "t1")
    create_user(engine, "ops@superseller.dev", PASSWORD, "admin")
    with serving(Settings(data_dir=tmp_path), engine, registry) as u:
        yield u


@pytest.fixture
def admin(url):
    with client(url, "ops@superseller.dev") as c:
        yield c


def test_admin_routes_need_an_admin(url):
    with client(url, "ana@loja1.com") as seller:
        for method, path in [
            ("GET", ADMIN),
            ("GET", f"{ADMIN}/stats"),
            ("GET", f"{ADMIN}/1"),
            ("POST", f"{ADMIN}/1/retry"),
            ("GET", f"{ADMIN}/schedules"),
        ]:
            r = seller.request(method, path)
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", path
    assert httpx.get(f"{url}{ADMIN}").status_code == 401


def test_create_validates_and_deduplicates(admin):
    made = admin.post(ADMIN, json={"type": "noop", "tenantId": "t1", "uniqueKey": "k1"})
    assert made.status_code == 201 and made.json()["created"] is True
    job = made.json()["job"]
    assert (job["type"], job["status"], job["tenantId"]) == ("noop", "pending", "t1")
    again = admin.post(ADMIN, json={"type": "noop", "uniqueKey": "k1"})
    assert again.json()["created"] is False and again.json()["job"]["id"] == job["id"]

    unknown = admin.post(ADMIN, json={"type": "nope"})
    assert unknown.status_code == 400 and "unknown job type" in unknown.json()["error"]["message"]
    bad = admin.post(ADMIN, json={"type": "cleanup", "payload": {"jobDays": 0}})
    assert bad.status_code == 400 and "jobDays" in bad.json()["error"]["message"]
    extra = admin.post(ADMIN, json={"type": "noop", "bogus": 1})
    assert extra.status_code == 422 and extra.json()["error"]["fields"][0]["field"] == "bogus"


def test_list_filters_and_keyset_pages(admin):
    ids = [
        admin.post(ADMIN, json={"type": "noop", "tenantId": "t1" if i % 2 else "t2"}).json()["job"][
            "id"
        ]
        for i in range(5)
    ]
    seen, before = [], None
    while True:
        page = admin.get(ADMIN, params={"limit": 2, **({"before": before} if before else {})})
        seen += [j["id"] for j in page.json()["jobs"]]
        before = page.json()["nextBefore"]
        if before is None:
            break
    assert seen == sorted(ids, reverse=True)
    t1 = admin.get(ADMIN, params={"tenantId": "t1"}).json()["jobs"]
    assert {j["id"] for j in t1} == {ids[1], ids[3]}
    assert admin.get(ADMIN, params={"state": "completed"}).json()["jobs"] == []
    assert admin.get(ADMIN, params={"state": "exploded"}).status_code == 422


def test_execute_cancel_retry_and_logs(admin, engine, registry):
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    a = admin.post(ADMIN, json={"type": "noop", "runAt": later}).json()["job"]["id"]
    b = admin.post(ADMIN, json={"type": "noop", "runAt": later}).json()["job"]["id"]
    failing = admin.post(ADMIN, json={"type": "permanent"}).json()["job"]["id"]

    assert admin.post(f"{ADMIN}/{a}/execute").json()["status"] == "pending"
    cancelled = admin.post(f"{ADMIN}/{b}/cancel").json()
    assert cancelled["outcome"] == "cancelled" and cancelled["job"]["status"] == "cancelled"
    drain(engine, registry)

    assert admin.get(f"{ADMIN}/{a}").json()["status"] == "completed"  # ran although due later
    logs = admin.get(f"{ADMIN}/{a}/logs").json()["logs"]
    assert [(x["status"], x["attempt"]) for x in logs] == [("success", 1)]
    assert admin.get(f"{ADMIN}/{failing}").json()["status"] == "failed"

    again = admin.post(f"{ADMIN}/{failing}/retry").json()
    assert (again["status"], again["attempts"]) == ("pending", 0)
    # State conflicts are 409 with the reason; missing jobs are 404.
    done = admin.post(f"{ADMIN}/{a}/cancel")
    assert done.status_code == 409 and "completed" in done.json()["error"]["message"]
    assert admin.post(f"{ADMIN}/{a}/retry").status_code == 409
    assert admin.get(f"{ADMIN}/999999").status_code == 404
    assert admin.get(f"{ADMIN}/999999/logs").status_code == 404
    assert admin.get(f"{ADMIN}/abc").status_code == 422


def test_schedules_patch_occurrences_backfill(admin, engine, registry):
    sched = Schedules(engine, registry).create("hourly-noop", "noop", "0 * * * *", deadline_s=600)
    listed = {s["name"]: s for s in admin.get(f"{ADMIN}/schedules").json()["schedules"]}
    assert listed["hourly-noop"]["enabled"] is True
    sid = sched["id"]

    off = admin.patch(f"{ADMIN}/schedules/{sid}", json={"enabled": False})
    assert off.status_code == 200 and off.json()["enabled"] is False
    bad = admin.patch(f"{ADMIN}/schedules/{sid}", json={"cron": "61 * * * *"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_schedule"
    bad_tz = admin.patch(f"{ADMIN}/schedules/{sid}", json={"timezone": "Mars/Olympus"})
    assert bad_tz.status_code == 400
    aws = admin.patch(
        f"{ADMIN}/schedules/{sid}",
        json={"cron": "cron(0 6 * * ? *)", "timezone": "America/Sao_Paulo"},
    )
    assert aws.json()["cron"] == "0 6 * * *" and aws.json()["enabled"] is False
    assert admin.patch(f"{ADMIN}/schedules/424242", json={"enabled": True}).status_code == 404
    assert admin.patch(f"{ADMIN}/schedules/{sid}", json={}).status_code == 422

    today = datetime.now(UTC).date()
    filled = admin.post(
        f"{ADMIN}/schedules/{sid}/backfill",
        json={
            "from": (today - timedelta(days=2)).isoformat(),
            "to": (today - timedelta(days=1)).isoformat(),
            "mode": "missing",
        },
    )
    assert filled.status_code == 202 and len(filled.json()["enqueued"]) == 2  # 06:00 each day
    occ = admin.get(f"{ADMIN}/schedules/{sid}/occurrences").json()["occurrences"]
    assert [o["outcome"] for o in occ] == ["backfilled", "backfilled"]
    # Nothing missing any more: a second backfill of the same range enqueues nothing.
    again = admin.post(
        f"{ADMIN}/schedules/{sid}/backfill",
        json={
            "from": (today - timedelta(days=2)).isoformat(),
            "to": (today - timedelta(days=1)).isoformat(),
        },
    )
    assert again.json()["enqueued"] == []
    reversed_range = admin.post(
        f"{ADMIN}/schedules/{sid}/backfill",
        json={"from": today.isoformat(), "to": (today - timedelta(days=1)).isoformat()},
    )
    assert reversed_range.status_code == 400


def test_stats_count_every_run_once(admin, url, engine, registry):
    for _ in range(3):
        admin.post(ADMIN, json={"type": "noop", "tenantId": "t1"})
    admin.post(ADMIN, json={"type": "permanent", "tenantId": "t2"})
    admin.post(
        ADMIN, json={"type": "noop", "runAt": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    )
    drain(engine, registry)

    def by_type(body):
        return {t["jobType"]: t for t in body["types"]}

    body = admin.get(f"{ADMIN}/stats").json()
    assert body["byState"]["completed"] == 3 and body["byState"]["failed"] == 1
    assert body["byState"]["pending"] == 1 and body["due"] == 0
    live = by_type(body)
    assert live["noop"]["totalRuns"] == 3 and live["noop"]["byStatus"] == {"success": 3}
    assert live["permanent"]["failures24h"] == 1
    assert body["recentErrors"][0]["jobType"] == "permanent"

    hourly = admin.get(f"{ADMIN}/stats/hourly").json()["buckets"]
    assert sum(b["runs"] for b in hourly) == 4 and sum(b["failures"] for b in hourly) == 1

    # Reads never fold (no writes in GET): only the update_stats job does. Fold (as if a
    # minute had passed) from two "processes": each run counted once, same answers.
    with engine.connect() as conn:
        assert conn.execute(select(job_stats_state.c.last_log_id)).scalar() == 0
    later = ManualClock(datetime.now(UTC) + timedelta(minutes=5))
    assert stats.fold(engine, later) == 4
    assert stats.fold(engine, later) == 0
    folded = by_type(admin.get(f"{ADMIN}/stats").json())
    assert {k: v["totalRuns"] for k, v in folded.items()} == {
        k: v["totalRuns"] for k, v in live.items()
    }
    assert admin.get(f"{ADMIN}/stats/hourly").json()["buckets"] == hourly
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(job_logs)).scalar() == 4

    # The seed's status/stats routes: a seller sees only their tenant's runs.
    with client(url, "ana@loja1.com") as seller:
        mine = seller.get("/api/v1/jobs/status").json()
        assert {x["tenantId"] for x in mine["logs"]} == {"t1"} and len(mine["logs"]) == 3
        assert set(mine["lastSuccessful"]) == {"noop"}
        assert seller.get("/api/v1/jobs/stats").json()["recentErrors"] == []
        assert (
            seller.get("/api/v1/jobs/status", params={"tenantId": "t2"}).json()["logs"][0][
                "tenantId"
            ]
            == "t1"
        )
    every = admin.get("/api/v1/jobs/status", params={"jobType": "permanent"}).json()
    assert [x["jobType"] for x in every["logs"]] == ["permanent"]
    assert [(x["jobType"], x["status"], x["count"]) for x in every["summary"]] == [
        ("permanent", "error", 1)
    ]


def test_pause_and_resume_through_the_admin_api(admin):
    paused = admin.post(f"{ADMIN}/pause", json={"reason": "janela de manutenção"}).json()
    assert paused["paused"] is True and paused["reason"] == "janela de manutenção"
    assert admin.get(f"{ADMIN}/stats").json()["engine"]["paused"] is True
    assert admin.post(f"{ADMIN}/resume").json()["paused"] is False


def test_pause_and_resume_one_queue_through_the_admin_api(admin, url, engine):
    from superseller.jobs import pause

    r = admin.post(f"{ADMIN}/queues/pause", json={"queue": "slow", "reason": "cota esgotada"})
    assert r.status_code == 200
    body = r.json()
    assert body["paused"] is False  # the engine runs; one queue waits
    [q] = body["pausedQueues"]
    assert (q["queue"], q["reason"], q["actor"]) == ("slow", "cota esgotada", "ops@superseller.dev")
    assert q["pausedAt"]
    # Any valid name: a queue nothing was enqueued to yet can be paused ahead of time.
    admin.post(f"{ADMIN}/queues/pause", json={"queue": "not-used-yet"})
    shown = admin.get(f"{ADMIN}/stats").json()["engine"]["pausedQueues"]
    assert [x["queue"] for x in shown] == ["not-used-yet", "slow"]
    polled = admin.get(f"{ADMIN}/counts").json()["engine"]["pausedQueues"]
    assert [x["queue"] for x in polled] == ["not-used-yet", "slow"]
    trail = admin.get(f"{ADMIN}/audit", params={"targetType": "queue"}).json()["entries"]
    assert [(e["action"], e["targetId"], e["actor"]) for e in trail] == [
        ("queue.pause", "not-used-yet", "ops@superseller.dev"),
        ("queue.pause", "slow", "ops@superseller.dev"),
    ]
    assert trail[1]["detail"] == {"reason": "cota esgotada"}

    for bad in (
        {},
        {"queue": ""},
        {"queue": "q" * 101},
        {"queue": "slow", "reason": "r" * 501},
        {"queue": "slow", "bogus": 1},
        {"queue": 7},
    ):
        r = admin.post(f"{ADMIN}/queues/pause", json=bad)
        assert r.status_code == 422 and "error" in r.json(), bad
    assert admin.post(f"{ADMIN}/queues/resume", json={"queue": ""}).status_code == 422

    resumed = admin.post(f"{ADMIN}/queues/resume", json={"queue": "slow"}).json()
    assert [x["queue"] for x in resumed["pausedQueues"]] == ["not-used-yet"]
    assert [x["queue"] for x in pause.state(engine)["pausedQueues"]] == ["not-used-yet"]
    with client(url, "ana@loja1.com") as seller:
        for path, body in (("pause", {"queue": "slow"}), ("resume", {"queue": "not-used-yet"})):
            r = seller.post(f"{ADMIN}/queues/{path}", json=body)
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert [x["queue"] for x in pause.state(engine)["pausedQueues"]] == ["not-used-yet"]
