"""The operator console's admin API over real HTTP, on both databases: filtered search with
keyset pages, counts, bulk actions, run again, run a schedule now, the audit trail, hourly
throughput."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update

from superseller.db.schema import jobs
from superseller.jobs.admin import JobAdmin, JobFilter
from superseller.jobs.cron import zone
from superseller.jobs.schedules import Schedules
from tests import test_api_admin_jobs as base
from tests.support.api import ADMIN, client, drain

registry, url, admin = base.registry, base.url, base.admin  # the same fixtures

ADMIN_EMAIL = "ops@superseller.dev"


def make(admin, n=1, **body):
    return [admin.post(ADMIN, json={"type": "noop", **body}).json()["job"]["id"] for _ in range(n)]


def set_created(engine, ids, when):
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id.in_(ids)).values(created_at=when))


def test_new_routes_are_for_admins_only(url):
    routes = [
        ("GET", f"{ADMIN}/search"),
        ("GET", f"{ADMIN}/counts"),
        ("POST", f"{ADMIN}/bulk/cancel?state=pending"),
        ("POST", f"{ADMIN}/bulk/retry?state=failed"),
        ("GET", f"{ADMIN}/audit"),
        ("GET", f"{ADMIN}/stats/hourly"),
        ("POST", f"{ADMIN}/schedules/1/run-now"),
        ("POST", f"{ADMIN}/1/run-again"),
    ]
    with client(url, "ana@loja1.com") as seller:
        for method, path in routes:
            r = seller.request(method, path)
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", path
    for method, path in routes:
        assert httpx.request(method, f"{url}{path}").status_code == 401, path


def test_search_filters_and_pages(admin, engine, registry):
    old = make(admin, 2, tenantId="t1")  # ids grow with creation time
    set_created(engine, old, datetime(2026, 1, 10, 15, 0, tzinfo=UTC))  # 12:00 in São Paulo
    t1 = make(admin, 3, tenantId="t1")
    t2 = make(admin, 2, tenantId="t2", queue="slow")
    made = t1 + t2 + old

    seen, before = [], None
    while True:
        page = admin.get(
            f"{ADMIN}/search", params={"limit": 3, **({"before": before} if before else {})}
        ).json()
        seen += [j["id"] for j in page["jobs"]]
        if page["next"] is None:
            break
        before = page["next"]["before"]
    assert seen == sorted(made, reverse=True)

    def ids(**params):
        return [j["id"] for j in admin.get(f"{ADMIN}/search", params=params).json()["jobs"]]

    assert ids(tenantId="t2") == sorted(t2, reverse=True)
    assert ids(queue="slow", state="pending") == sorted(t2, reverse=True)
    assert ids(type="nope") == []
    # A local day in São Paulo, inclusive; or date-times with offsets.
    assert ids(createdFrom="2026-01-10", createdTo="2026-01-10") == sorted(old, reverse=True)
    assert ids(createdTo="2026-01-09") == []
    assert ids(createdFrom="2026-01-10T12:30:00-03:00", createdTo="2026-01-11") == []
    assert set(ids(createdFrom="2026-01-11")) == set(t1 + t2)

    drain(engine, registry)
    # A bare day is São Paulo's: from 21:00 there it is already tomorrow in UTC.
    today = datetime.now(zone("America/Sao_Paulo")).date().isoformat()
    assert set(ids(finishedFrom=today, sort="finished")) == set(made)
    first = admin.get(f"{ADMIN}/search", params={"sort": "finished", "limit": 4}).json()
    rest = admin.get(
        f"{ADMIN}/search",
        params={"sort": "finished", "limit": 4, **first["next"]},
    ).json()
    assert len({j["id"] for j in first["jobs"] + rest["jobs"]}) == len(made)


@pytest.mark.parametrize(
    "params",
    [
        {"state": "exploded"},
        {"createdFrom": "10/01/2026"},
        {"createdFrom": "2026-01-10T10:00:00"},  # no offset
        {"createdFrom": "2026-01-10", "createdTo": "2026-01-09"},
        {"finishedFrom": "1900-01-01"},
        {"limit": 0},
        {"sort": "random"},
        {"type": "x" * 101},
    ],
)
def test_bad_filters_are_4xx(admin, params):
    for path in ("search", "counts"):
        if path == "counts" and set(params) & {"limit", "sort"}:
            continue
        r = admin.get(f"{ADMIN}/{path}", params=params)
        assert r.status_code == 422, (path, params, r.text)
        assert r.json()["error"]["code"] == "invalid_request"


def test_counts_per_state_under_the_filter(admin, engine, registry):
    make(admin, 2, tenantId="t1")
    [failed] = make(admin, 1, type="permanent", tenantId="t1")
    drain(engine, registry)
    make(admin, 3, tenantId="t1")
    make(admin, 4, tenantId="t2")
    body = admin.get(f"{ADMIN}/counts", params={"tenantId": "t1", "state": "failed"}).json()
    assert body["byState"] == {
        "pending": 3,
        "running": 0,
        "completed": 2,
        "failed": 1,
        "cancelled": 0,
    }
    assert body["capped"] == [] and body["latestId"] == failed  # the newest under the filter
    assert body["finishedWindowHours"] == 24
    # Finished jobs are counted over the last 24 h, or the window asked, or all (bulk).
    long_ago = datetime.now(UTC) - timedelta(days=3)
    with engine.begin() as conn:
        conn.execute(
            update(jobs)
            .where(jobs.c.status.in_(("completed", "failed")), jobs.c.tenant_id == "t1")
            # created before they finished, as every job is (the first three ids)
            .values(created_at=long_ago - timedelta(minutes=1), finished_at=long_ago)
        )
    recent = admin.get(f"{ADMIN}/counts", params={"tenantId": "t1"}).json()
    assert recent["byState"]["completed"] == recent["byState"]["failed"] == 0
    every = admin.get(f"{ADMIN}/counts", params={"tenantId": "t1", "allTime": "true"}).json()
    assert (every["byState"]["completed"], every["byState"]["failed"]) == (2, 1)
    assert every["finishedWindowHours"] is None
    day = long_ago.astimezone(zone("America/Sao_Paulo")).date().isoformat()
    then = admin.get(
        f"{ADMIN}/counts", params={"tenantId": "t1", "finishedFrom": day, "finishedTo": day}
    ).json()
    assert then["byState"]["completed"] == 2 and then["finishedWindowHours"] is None
    assert body["engine"]["paused"] is False
    capped = JobAdmin(engine).counts(JobFilter(tenant_id="t2"), cap=3)
    assert capped["byState"]["pending"] == 3 and capped["capped"] == ["pending"]


def test_bulk_cancel_and_retry_of_a_filtered_set_are_audited(admin, engine, registry):
    t1 = make(admin, 3, tenantId="t1")
    t2 = make(admin, 2, tenantId="t2")
    assert admin.post(f"{ADMIN}/bulk/cancel").status_code == 422  # no filter: refused
    done = admin.post(f"{ADMIN}/bulk/cancel", params={"tenantId": "t1", "state": "pending"})
    assert done.status_code == 200 and done.json() == {"cancelled": 3, "cancelRequested": 0}
    states = {j["id"]: j["status"] for j in admin.get(f"{ADMIN}/search").json()["jobs"]}
    assert {states[i] for i in t1} == {"cancelled"} and {states[i] for i in t2} == {"pending"}

    hopeless = make(admin, 1, type="permanent", tenantId="t1")[0]
    transient = make(admin, 1, type="flaky", tenantId="t1", maxAttempts=1, payload={"failTimes": 1})
    drain(engine, registry)
    retried = admin.post(f"{ADMIN}/bulk/retry", params={"tenantId": "t1"}).json()
    assert retried["retried"] == 4  # 3 cancelled + the transient failure, not the permanent one
    assert admin.get(f"{ADMIN}/{hopeless}").json()["status"] == "failed"
    assert admin.get(f"{ADMIN}/{transient[0]}").json()["status"] == "pending"

    trail = admin.get(f"{ADMIN}/audit", params={"targetType": "jobs"}).json()["entries"]
    assert [(e["action"], e["actor"]) for e in trail] == [
        ("jobs.retry", ADMIN_EMAIL),
        ("jobs.cancel", ADMIN_EMAIL),
    ]
    assert trail[1]["detail"]["filter"] == {"status": "pending", "tenant_id": "t1"}
    assert trail[1]["detail"]["cancelled"] == 3


def test_run_again_copies_a_finished_job(admin, engine, registry):
    [jid] = make(admin, 1, tenantId="t2", payload={}, priority=5)
    assert admin.post(f"{ADMIN}/{jid}/run-again").status_code == 409  # still pending
    drain(engine, registry)
    again = admin.post(f"{ADMIN}/{jid}/run-again")
    assert again.status_code == 201
    copy = again.json()
    assert copy["id"] != jid and copy["status"] == "pending"
    assert (copy["type"], copy["tenantId"], copy["priority"]) == ("noop", "t2", 5)
    assert admin.post(f"{ADMIN}/999999/run-again").status_code == 404
    [entry] = admin.get(f"{ADMIN}/audit", params={"action": "job.run_again"}).json()["entries"]
    assert entry["targetId"] == str(jid) and entry["detail"] == {"newJobId": copy["id"]}


def test_run_a_schedule_now_and_every_action_is_in_the_audit_trail(admin, engine, registry):
    sched = Schedules(engine, registry).create("nightly-noop", "noop", "0 3 * * *")
    sid = sched["id"]
    ran = admin.post(f"{ADMIN}/schedules/{sid}/run-now")
    assert ran.status_code == 201 and ran.json()["schedule"] == "nightly-noop"
    job = ran.json()["job"]
    assert job["scheduleId"] == sid and job["status"] == "pending"
    occ = admin.get(f"{ADMIN}/schedules/{sid}/occurrences").json()["occurrences"]
    assert occ[0]["jobId"] == job["id"] and occ[0]["reason"] == "run now"
    assert admin.post(f"{ADMIN}/schedules/424242/run-now").status_code == 404

    admin.patch(f"{ADMIN}/schedules/{sid}", json={"enabled": False})
    admin.post(f"{ADMIN}/pause", json={"reason": "manutenção"})
    admin.post(f"{ADMIN}/resume")
    admin.post(f"{ADMIN}/{job['id']}/cancel")
    made = make(admin, 1)[0]
    entries = admin.get(f"{ADMIN}/audit", params={"actor": ADMIN_EMAIL}).json()["entries"]
    assert [(e["action"], e["targetType"], e["targetId"]) for e in entries] == [
        ("job.create", "job", str(made)),
        ("job.cancel", "job", str(job["id"])),
        ("engine.resume", "engine", None),
        ("engine.pause", "engine", None),
        ("schedule.update", "schedule", "nightly-noop"),
        ("schedule.run_now", "schedule", "nightly-noop"),
    ]
    assert entries[3]["detail"] == {"reason": "manutenção"}
    page = admin.get(f"{ADMIN}/audit", params={"limit": 2}).json()
    older = admin.get(f"{ADMIN}/audit", params={"limit": 2, "before": page["nextBefore"]}).json()
    assert [e["action"] for e in older["entries"]] == ["engine.resume", "engine.pause"]
    assert admin.get(f"{ADMIN}/audit", params={"targetType": "planet"}).status_code == 422


def test_hourly_throughput_and_failures(admin, engine, registry):
    make(admin, 3)
    make(admin, 2, type="permanent")
    drain(engine, registry)
    body = admin.get(f"{ADMIN}/stats/hourly", params={"hours": 24}).json()
    totals = {}
    for b in body["buckets"]:
        runs, failures = totals.get(b["jobType"], (0, 0))
        totals[b["jobType"]] = (runs + b["runs"], failures + b["failures"])
    assert totals == {"noop": (3, 0), "permanent": (2, 2)}
    assert admin.get(f"{ADMIN}/stats/hourly", params={"hours": 0}).status_code == 422


def test_recent_jobs_created_before_the_window_are_not_lost(admin, engine):
    """The creation window is an id range found by bisection; a job created out of id
    order by less than the slack is still found."""
    ids = make(admin, 5)
    base = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
    for i, jid in enumerate(ids):
        set_created(engine, [jid], base + timedelta(hours=i))
    set_created(engine, [ids[2]], base + timedelta(hours=1, minutes=31))
    # Inserted after a job created two minutes later (ids are taken at insert).
    set_created(engine, [ids[3]], base + timedelta(hours=1, minutes=29))
    got = {
        j["id"]
        for j in admin.get(
            f"{ADMIN}/search",
            params={"createdFrom": "2026-02-01T13:00:00Z", "createdTo": "2026-02-01T13:30:00Z"},
        ).json()["jobs"]
    }
    assert got == {ids[1], ids[3]}


def test_the_creation_window_search_matches_a_scan(engine, registry):
    """Uneven gaps between creation times (bursts and quiet nights): the id found for a
    moment is the first one a full scan finds."""
    import random

    from superseller.jobs.admin import _first_id_created_at_or_after
    from superseller.jobs.queue import JobSpec, Queue

    rnd = random.Random(7)
    at, times = datetime(2026, 3, 1, tzinfo=UTC), []
    for _ in range(300):
        at += timedelta(seconds=rnd.choice([1, 1, 2, 60, 3600, 86400]))
        times.append(at)
    made = Queue(engine, registry).enqueue_many([JobSpec("noop") for _ in times])
    with engine.begin() as conn:
        for m, when in zip(made, times, strict=True):
            conn.execute(update(jobs).where(jobs.c.id == m.id).values(created_at=when))
    ids = [m.id for m in made]
    for moment in [times[0] - timedelta(days=1), times[-1] + timedelta(seconds=1)] + [
        rnd.choice(times) + timedelta(seconds=rnd.choice([-1, 0, 1])) for _ in range(40)
    ]:
        expected = next((i for i, t in zip(ids, times, strict=True) if t >= moment), None)
        with engine.connect() as conn:
            assert _first_id_created_at_or_after(conn, moment) == expected, moment


def test_a_finish_window_finds_every_job_finished_in_it(engine, registry):
    """Jobs finish seconds to days after they are created (retries, long runs): a finish
    window's newest-first pages start from the window's end, and still find every job
    that finished inside it, and its newest id, as a full scan does."""
    import random

    from superseller.jobs.admin import JobAdmin, JobFilter
    from superseller.jobs.queue import JobSpec, Queue

    rnd = random.Random(11)
    at, rows = datetime(2026, 3, 1, tzinfo=UTC), []
    for _ in range(200):
        at += timedelta(seconds=rnd.choice([1, 60, 3600, 20000]))
        rows.append((at, at + timedelta(seconds=rnd.choice([2, 600, 86400, 3 * 86400]))))
    made = Queue(engine, registry).enqueue_many([JobSpec("noop") for _ in rows])
    with engine.begin() as conn:
        for m, (created, finished) in zip(made, rows, strict=True):
            conn.execute(
                update(jobs)
                .where(jobs.c.id == m.id)
                .values(created_at=created, finished_at=finished, status="completed")
            )
    for _ in range(15):
        lo = rnd.choice(rows)[1] - timedelta(hours=rnd.choice([1, 12, 48]))
        hi = lo + timedelta(hours=rnd.choice([1, 24, 72]))
        expected = [m.id for m, (_, fin) in zip(made, rows, strict=True) if lo <= fin < hi][::-1]
        f = JobFilter(finished_from=lo, finished_to=hi)
        found = [j["id"] for j in JobAdmin(engine).search(f, limit=500)]
        assert found == expected, (lo, hi)
        assert JobAdmin(engine).latest_id(f) == (expected[0] if expected else None)


def test_counts_say_how_many_a_bulk_retry_would_requeue(admin, engine, registry):
    """The bulk retry's confirmation promises what the action does: permanent failures are
    not counted (the reviewer's "6 job(s)… → 0 de volta na fila")."""
    make(admin, 3, type="permanent", tenantId="t1")
    drain(engine, registry)
    params = {"tenantId": "t1", "state": "failed", "allTime": "true", "retryable": "true"}
    body = admin.get(f"{ADMIN}/counts", params=params).json()
    assert body["byState"]["failed"] == 3 and body["retryable"] == {"count": 0, "capped": False}
    assert admin.post(f"{ADMIN}/bulk/retry", params={"tenantId": "t1"}).json()["retried"] == 0
    make(admin, 2, type="flaky", tenantId="t1", maxAttempts=1, payload={"failTimes": 1})
    drain(engine, registry)
    body = admin.get(f"{ADMIN}/counts", params=params).json()
    assert body["retryable"] == {"count": 2, "capped": False}
    assert admin.post(f"{ADMIN}/bulk/retry", params={"tenantId": "t1"}).json()["retried"] == 2
    assert admin.get(f"{ADMIN}/counts").json()["retryable"] is None  # only when asked


def test_counts_poll_the_states_of_the_visible_rows(admin, engine, registry):
    done = make(admin, 2)
    drain(engine, registry)
    [waiting] = make(admin, 1)
    ids = ",".join(str(i) for i in [*done, waiting, 999_999])
    body = admin.get(f"{ADMIN}/counts", params={"ids": ids}).json()
    assert body["jobStates"] == {
        str(done[0]): "completed",
        str(done[1]): "completed",
        str(waiting): "pending",
    }
    assert admin.get(f"{ADMIN}/counts").json()["jobStates"] is None
    for bad in ("1,x", ",", "1," * 101 + "1", "0", str(2**63)):
        r = admin.get(f"{ADMIN}/counts", params={"ids": bad})
        assert r.status_code == 422, (bad, r.text)
