"""The rebuild job (tick anchoring, fan-out, logs), freshness states, and self-heal."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from superseller.config import Settings
from superseller.db.schema import job_schedules, jobs, marketplace_accounts, tenants
from superseller.jobs import InvalidPayload
from superseller.jobs.clock import ManualClock
from superseller.jobs.default_schedules import ensure_defaults
from superseller.jobs.queue import Queue
from superseller.jobs.scheduler import Scheduler
from superseller.metrics.freshness import all_freshness, healable, tenant_freshness
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.inproc import job, logs, running_worker, wait_status

NOW = datetime(2026, 1, 20, 15, 0, tzinfo=UTC)  # 12:00 in São Paulo


@pytest.fixture
def registry():
    return build_registry(Settings())


def test_scheduled_rebuild_covers_the_30_days_ending_on_its_tick(engine, registry):
    mk.tenant(engine)
    mk.listing(engine, "t1", "MLB1", date(2026, 1, 1))
    tick = datetime(2026, 1, 13, 6, 0, tzinfo=UTC)  # 03:00 BRT on the 13th, run days later
    jid = (
        Queue(engine, registry)
        .enqueue("metrics_aggregation", {"tenantId": "t1"}, tenant_id="t1", scheduled_for=tick)
        .id
    )
    with running_worker(engine, registry):
        done = wait_status(engine, jid, "completed")
    assert done["result"]["dateRange"]["from"] == "2025-12-15"
    assert done["result"]["dateRange"]["to"] == "2026-01-13"
    assert done["lock_key"] == "tenant:t1"
    [entry] = logs(engine, jid)
    assert entry["job_type"] == "metrics_aggregation" and entry["status"] == "success"
    assert entry["records_processed"] == 13  # the listing exists from Jan 1st: 13 rows


def test_all_fans_out_one_job_per_tenant(engine, registry):
    for tid in ("t1", "t2", "t3"):
        mk.tenant(engine, tid)
    jid = (
        Queue(engine, registry)
        .enqueue(
            "metrics_aggregation", {"tenantId": "all", "from": "2026-01-01", "to": "2026-01-02"}
        )
        .id
    )
    with running_worker(engine, registry):
        done = wait_status(engine, jid, "completed")
        for child in done["result"]["jobIds"]:
            wait_status(engine, child, "completed")
    assert done["result"]["fannedOut"] == 3
    with engine.connect() as conn:
        children = conn.execute(
            select(jobs.c.tenant_id, jobs.c.payload).where(jobs.c.id.in_(done["result"]["jobIds"]))
        ).all()
    assert sorted(c.tenant_id for c in children) == ["t1", "t2", "t3"]
    assert all(c.payload["from"] == "2026-01-01" for c in children)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"tenantId": "t1", "from": "2026-01-05"}, "both 'from' and 'to'"),
        ({"tenantId": "t1", "from": "2026-01-05", "to": "2026-01-01"}, "is after"),
        ({"tenantId": "t1", "from": "2024-01-01", "to": "2026-01-01"}, "longer than 400"),
        ({"tenantId": "t1", "from": "05/01/2026", "to": "2026-01-07"}, "YYYY-MM-DD"),
        ({}, "tenantId"),
        ({"tenantId": "t1", "extra": 1}, "extra"),
    ],
)
def test_bad_rebuild_payload_is_refused_at_enqueue(engine, registry, payload, message):
    with pytest.raises(InvalidPayload, match=message):
        Queue(engine, registry).enqueue("metrics_aggregation", payload)


def test_the_former_name_still_runs_under_the_one_name(engine, registry):
    """A job queued (or a schedule written) before the rename still runs: the former name
    is an alias. New jobs are stored, and logged, under the one name."""
    mk.tenant(engine)
    queued = Queue(engine, registry).enqueue("rebuild_daily_metrics", {"tenantId": "t1"}).id
    old = Queue(engine, registry).enqueue("metrics_aggregation", {"tenantId": "t1"}).id
    with engine.begin() as conn:  # as a row written by the previous version
        conn.execute(update(jobs).where(jobs.c.id == old).values(type="rebuild_daily_metrics"))
    assert job(engine, queued)["type"] == "metrics_aggregation"
    with running_worker(engine, registry):
        wait_status(engine, queued, "completed")
        wait_status(engine, old, "completed")
    assert {entry["job_type"] for entry in logs(engine, old) + logs(engine, queued)} == {
        "metrics_aggregation"
    }


def test_unknown_tenant_fails_without_retry(engine, registry):
    jid = Queue(engine, registry).enqueue("metrics_aggregation", {"tenantId": "ghost"}).id
    with running_worker(engine, registry):
        failed = wait_status(engine, jid, "failed")
    assert failed["attempts"] == 1 and "tenant 'ghost' not found" in failed["last_error"]


def _set(engine, **values):
    with engine.begin() as conn:
        conn.execute(update(tenants).where(tenants.c.id == "t1").values(**values))


def test_freshness_states(engine):
    mk.tenant(engine)
    mk.listing(engine, "t1", "MLB1", date(2026, 1, 1))  # gives the rebuild rows (maxDate below)
    f = tenant_freshness(engine, "t1", NOW)
    assert f["status"] == f["connection"] == "not_connected" and f["label"] == "Não conectado"
    assert [r["code"] for r in f["reasons"]][0] == "not_connected"
    acct = mk.account(engine, "t1")
    f = tenant_freshness(engine, "t1", NOW)
    assert f["status"] == "stale" and f["label"] == "Desatualizado"
    assert f["connection"] == "connected"
    assert {r["code"] for r in f["reasons"]} == {"never_synced", "metrics_behind"}
    from superseller.metrics.rebuild import rebuild_daily_metrics

    rebuild_daily_metrics(engine, "t1", "2026-01-15", "2026-01-20")
    _set(engine, last_sync_ok_at=NOW - timedelta(hours=2), last_rebuild_ok_at=NOW)
    f = tenant_freshness(engine, "t1", NOW)
    assert f["status"] == "ok" and f["label"] == "Atualizado" and f["maxDate"] == "2026-01-20"
    assert f["updatedUntil"] == "20/01 às 12:00"
    # A sync from yesterday evening (local) leaves yesterday partial: fine at 05:00, but
    # from 06:00 the status says so, however recent that sync was.
    _set(engine, last_sync_ok_at=datetime(2026, 1, 20, 2, 0, tzinfo=UTC))  # 19/01 23:00 local
    early = datetime(2026, 1, 20, 8, 0, tzinfo=UTC)  # 05:00 local
    assert tenant_freshness(engine, "t1", early)["status"] == "ok"
    f = tenant_freshness(engine, "t1", NOW)  # 12:00 local
    assert f["status"] == "stale" and [r["code"] for r in f["reasons"]] == ["yesterday_incomplete"]
    assert "19/01 às 23:00" in f["reasons"][0]["message"]
    _set(engine, last_sync_ok_at=NOW - timedelta(hours=2))
    _set(engine, last_rebuild_error="boom", last_rebuild_error_at=NOW + timedelta(minutes=1))
    assert [r["code"] for r in tenant_freshness(engine, "t1", NOW)["reasons"]] == ["rebuild_failed"]
    _set(engine, last_rebuild_error_at=None)
    later = NOW + timedelta(days=2)
    codes = {r["code"] for r in tenant_freshness(engine, "t1", later)["reasons"]}
    assert codes == {"sync_old", "metrics_behind"}
    msg = next(
        r["message"]
        for r in tenant_freshness(engine, "t1", later)["reasons"]
        if r["code"] == "sync_old"
    )
    assert msg == "Sem sincronização desde 20/01 às 10:00"
    with engine.begin() as conn:  # the refresh token was refused (invalid_grant)
        conn.execute(
            marketplace_accounts.update()
            .where(marketplace_accounts.c.id == acct)
            .values(status="reauth_required")
        )
    f = tenant_freshness(engine, "t1", NOW)
    assert f["status"] == f["connection"] == "reauth_required"
    assert f["reasons"][0]["code"] == "reauth_required"


def test_visits_left_missing_never_hide_a_stale_tenant(engine):
    """A tenant whose last sync left a listing's visits missing and which has not synced
    since is stale (the gap listed with the other reasons), and healable however many syncs
    in a row left gaps: a partial tenant is retried once, a stale one always."""
    mk.tenant(engine)
    mk.account(engine, "t1")
    _set(
        engine,
        last_sync_ok_at=NOW - timedelta(days=2),
        last_sync_missing_visits=1,
        last_syncs_partial=3,
    )
    f = tenant_freshness(engine, "t1", NOW)
    assert f["status"] == "stale" and f["label"] == "Desatualizado" and healable(f)
    assert {r["code"] for r in f["reasons"]} == {"sync_old", "metrics_behind", "visits_missing"}
    gap = next(r["message"] for r in f["reasons"] if r["code"] == "visits_missing")
    assert gap.startswith("Faltam as visitas de 1 anúncio (")


def test_self_heal_queues_work_for_stale_tenants_once(engine, registry):
    mk.tenant(engine, "t1")
    mk.tenant(engine, "t2")
    mk.account(engine, "t1")
    mk.account(engine, "t2")
    q = Queue(engine, registry)
    heal1 = q.enqueue("freshness_heal").id
    with running_worker(engine, registry):
        result = wait_status(engine, heal1, "completed")["result"]
    assert sorted(h["tenantId"] for h in result["healed"]) == ["t1", "t2"]
    for h in result["healed"]:
        # The sync is installed, so heal queues it (it queues the rebuild on success).
        assert job(engine, h["jobId"])["type"] == "sync_mercadolivre"
    # Never synced, but now with its sync queued: importing, not queued twice. (The syncs
    # ran meanwhile: the test's accounts have no tokens, so they made the stores
    # reconnect-required; connected again here, the store is only stale.)
    with engine.begin() as conn:
        conn.execute(
            update(jobs)
            .where(jobs.c.type == "sync_mercadolivre")
            .values(status="pending", run_at=datetime.now(UTC) + timedelta(days=1))
        )
        conn.execute(update(marketplace_accounts).values(status="connected"))
    heal2 = q.enqueue("freshness_heal").id
    with running_worker(engine, registry):
        result = wait_status(engine, heal2, "completed")["result"]
    assert result["healed"] == []
    assert result["notHealed"] == {
        "t1": "first import under way: its sync is pending or running",
        "t2": "first import under way: its sync is pending or running",
    }


def test_a_day_of_heal_ticks_sends_no_sync_to_tenants_a_sync_cannot_help(engine, registry):
    """24 simulated hours of the default `freshness-heal` schedule, through the scheduler
    and a worker: no sync for a tenant never connected, nor for one whose Mercado Livre
    refresh token was refused; `freshness` reports both for what they are."""
    mk.tenant(engine, "t1")  # never connected
    mk.tenant(engine, "t2")
    mk.account(engine, "t2", status="reauth_required")
    clock = ManualClock(NOW)
    ensure_defaults(engine, registry, clock)
    with engine.begin() as conn:
        conn.execute(update(job_schedules).values(enabled=job_schedules.c.name == "freshness-heal"))
    scheduler = Scheduler(engine, registry, clock)
    heals = []
    with running_worker(engine, registry, clock=clock):
        for _ in range(24):
            clock.advance(timedelta(hours=1))
            assert scheduler.run_pass().enqueued == 1
            with engine.connect() as conn:
                new = conn.execute(
                    select(jobs.c.id).where(
                        jobs.c.type == "freshness_heal", jobs.c.id.notin_(heals or [0])
                    )
                ).scalars()
                heals.extend(new)
            wait_status(engine, heals[-1], "completed")
    assert len(heals) == 24
    for jid in heals:
        result = job(engine, jid)["result"]
        assert result["healed"] == []
        assert set(result["notHealed"]) == {"t1", "t2"}
    with engine.connect() as conn:
        syncs = conn.execute(select(jobs.c.id).where(jobs.c.type == "sync_mercadolivre")).all()
    assert syncs == []
    states = {f["tenantId"]: f["status"] for f in all_freshness(engine, clock.now())}
    assert states == {"t1": "not_connected", "t2": "reauth_required"}
