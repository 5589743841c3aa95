"""A nightly sync fetches each listing's visits only from the days that can still change
(mercadolivre/visits.py), over real HTTP against the sandbox, on SQLite and PostgreSQL:
the stored visits and the daily metrics stay exactly what a full refetch gives."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs

import httpx
from sqlalchemy import select

from superseller.db.schema import listing_metrics_daily, listing_visits_daily, listings
from superseller.jobs.clock import ManualClock
from superseller.jobs.queue import Queue
from superseller.mercadolivre.connect import connect_sandbox
from superseller.sandbox import data
from superseller.tenants import create_tenant
from superseller.wiring import build_registry
from tests.support.inproc import running_worker, wait_status
from tests.support.ml import sandbox, settings_for

DAYS_BACK = 30


def _at(hour: int, minute: int = 30) -> ManualClock:
    """A clock at this UTC time of today (02:30 in São Paulo is 05:30)."""
    return ManualClock(datetime.now(UTC).replace(hour=hour, minute=minute, second=0, microsecond=0))


USER, REF_USER = 8101, 8102  # the tenant under test; a fresh tenant synced in one go


def _connect(engine, settings, sb, tid: str, user: int, tz: str = "America/Sao_Paulo") -> None:
    httpx.post(f"{sb.url}/_sandbox/login-as", json={"user_id": user})
    create_tenant(engine, f"Loja {tid}", timezone=tz, tenant_id=tid)
    connect_sandbox(engine, settings, tid, datetime.now(UTC))


def _sync(engine, registry, clock, tid: str, **payload) -> dict:
    """One sync of `tid`, and the rebuild(s) it queued, run to completion."""
    jid = (
        Queue(engine, registry, clock)
        .enqueue(
            "sync_mercadolivre",
            {"tenantId": tid, "daysBack": DAYS_BACK, **payload},
            tenant_id=tid,
        )
        .id
    )
    with running_worker(engine, registry, clock=clock):
        done = wait_status(engine, jid, "completed", "failed", timeout=120)
        assert done["status"] == "completed", done["last_error"]
        for rebuild in done["result"]["rebuildJobIds"]:
            assert wait_status(engine, rebuild, "completed", "failed", timeout=60)["status"] == (
                "completed"
            )
    return done["result"]


def _log_size(sb) -> int:
    return len(httpx.get(f"{sb.url}/_sandbox/request-log").json()["requests"])


def _visit_lasts(sb, since: int) -> dict[str, int]:
    """{item id: the `last` its visits requests asked for (a retry asks the same)}, of the
    requests from `since` on."""
    out: dict[str, int] = {}
    for _t, path, query in httpx.get(f"{sb.url}/_sandbox/request-log").json()["requests"][since:]:
        if path.endswith("/visits/time_window"):
            item, last = path.split("/")[2], int(parse_qs(query)["last"][0])
            assert out.setdefault(item, last) == last, f"{item}: two windows in one sync"
    return out


def _visits(engine, tid: str, since: date) -> dict[tuple[str, date], int | None]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                listings.c.external_id, listing_visits_daily.c.date, listing_visits_daily.c.visits
            )
            .join(listings, listings.c.id == listing_visits_daily.c.listing_id)
            .where(listing_visits_daily.c.tenant_id == tid, listing_visits_daily.c.date >= since)
        ).all()
    return {(ext, d): v for ext, d, v in rows}


def _metrics(engine, tid: str, since: date) -> dict[tuple[str, date], tuple]:
    m = listing_metrics_daily
    with engine.connect() as conn:
        rows = conn.execute(
            select(listings.c.external_id, m.c.date, m.c.visits, m.c.orders, m.c.revenue)
            .join(listings, listings.c.id == m.c.listing_id)
            .where(m.c.tenant_id == tid, m.c.date >= since)
        ).all()
    return {(ext, d): (v, o, r) for ext, d, v, o, r in rows}


def test_nightly_syncs_fetch_only_recent_days_and_equal_a_full_sync(engine, tmp_path):
    clock = _at(5)  # 02:30 in São Paulo, after the nightly sync's 02:00
    with sandbox(listings=40, history_days=60, orders_per_day=30, start=clock.now()) as sb:
        sb.state.frozen_at = clock.now()
        settings = settings_for(sb, tmp_path, ml_max_tries=2)
        httpx.post(f"{sb.url}/_sandbox/seller-listings", json={USER: 30})
        _connect(engine, settings, sb, "t1", USER)
        registry = build_registry(settings)
        ids = [data.item_id(sb.state.spec, i) for i in range(40)]

        # The first sync (the tenant never synced): every listing's whole window.
        mark = _log_size(sb)
        first = _sync(engine, registry, clock, "t1")
        assert _visit_lasts(sb, mark) == {x: DAYS_BACK for x in ids[:30]}
        assert first["visitsFullWindow"] == 30 and first["visitDays"] == 30 * 31

        # The next night: the 30 known listings from 3 days before the newest stored day
        # (yesterday's partial count is now complete, and must be fetched again); 10 new
        # listings get the whole window; one listing's visits call fails.
        victim = ids[5]
        kept = {k: v for k, v in _visits(engine, "t1", date(2000, 1, 1)).items() if k[0] == victim}
        sb.state.frozen_at = clock.advance(timedelta(days=1))
        httpx.post(f"{sb.url}/_sandbox/seller-listings", json={USER: 40})
        httpx.post(f"{sb.url}/_sandbox/faults", json={"visits_fail_ids": [victim]})
        mark = _log_size(sb)
        second = _sync(engine, registry, clock, "t1")
        lasts = _visit_lasts(sb, mark)
        assert {x: n for x, n in lasts.items() if x != victim} == {
            **{x: 1 + 3 for x in ids[:30] if x != victim},
            **{x: DAYS_BACK for x in ids[30:]},
        }
        assert second["visitsFullWindow"] == 10
        assert second["visitDays"] == 29 * 5 + 10 * 31  # not 39 x 31
        assert [e["id"] for e in second["visitErrors"]] == [victim]
        now_victim = {
            k: v for k, v in _visits(engine, "t1", date(2000, 1, 1)).items() if k[0] == victim
        }
        assert now_victim == kept  # a failed call erased, zeroed and added nothing
        assert any(kept.values())

        # A night without a sync: the window widens by itself, and further for the listing
        # whose call failed (its newest stored day is a day older).
        sb.state.frozen_at = clock.advance(timedelta(days=2))
        httpx.post(f"{sb.url}/_sandbox/faults", json={})
        mark = _log_size(sb)
        third = _sync(engine, registry, clock, "t1")
        assert Counter(_visit_lasts(sb, mark).values()) == {2 + 3: 39, 3 + 3: 1}
        assert _visit_lasts(sb, mark)[victim] == 3 + 3
        assert third["visitsFullWindow"] == 0

        # A tenant synced once, now, over the whole window: the same visits and figures.
        httpx.post(f"{sb.url}/_sandbox/seller-listings", json={REF_USER: 40})
        _connect(engine, settings, sb, "ref", REF_USER)
        mark = _log_size(sb)
        ref = _sync(engine, registry, clock, "ref")
        assert ref["daysTouched"]["to"] == third["daysTouched"]["to"]
        assert set(_visit_lasts(sb, mark).values()) == {DAYS_BACK}
        today = date.fromisoformat(third["daysTouched"]["to"])
        since = today - timedelta(days=DAYS_BACK)  # the window (the rebuild's starts there)
        assert date.fromisoformat(third["daysTouched"]["from"]) <= since
        got, want = _visits(engine, "t1", since), _visits(engine, "ref", since)
        assert len(want) == 40 * 31 and sum(v for v in want.values()) > 1000
        assert got == want
        figures = _metrics(engine, "t1", since)
        assert figures == _metrics(engine, "ref", since)
        assert sum(o for _, o, _ in figures.values()) > 0

        # Asked explicitly, a sync refetches every listing's whole window (and changes
        # nothing: the stored days were already right).
        mark = _log_size(sb)
        full = _sync(engine, registry, clock, "t1", visits="full")
        assert (
            set(_visit_lasts(sb, mark).values()) == {DAYS_BACK}
            and len(_visit_lasts(sb, mark)) == 40
        )
        assert full["visitsFullWindow"] == 40
        assert _visits(engine, "t1", since) == want


def test_a_longer_period_than_stored_is_fetched_whole(engine, tmp_path):
    """'Atualizar dados' for 90 days, or a reconnect's backfill, after 30-day nights: the
    listings' stored days do not reach back far enough, so each gets the window asked."""
    clock = _at(5)
    with sandbox(listings=12, history_days=120, orders_per_day=5, start=clock.now()) as sb:
        sb.state.frozen_at = clock.now()
        settings = settings_for(sb, tmp_path)
        _connect(engine, settings, sb, "t1", USER)
        registry = build_registry(settings)
        _sync(engine, registry, clock, "t1")
        sb.state.frozen_at = clock.advance(timedelta(days=1))
        mark = _log_size(sb)
        wide = _sync(engine, registry, clock, "t1", daysBack=90)
        assert set(_visit_lasts(sb, mark).values()) == {90}
        assert wide["visitDays"] == 12 * 91
        today = date.fromisoformat(wide["daysTouched"]["to"])
        stored = _visits(engine, "t1", today - timedelta(days=90))
        assert len(stored) == 12 * 91
        now = sb.state.now()
        assert stored == {
            (data.item_id(sb.state.spec, i), d): data.visits_on(sb.state.spec, i, d, now)
            for i in range(12)
            for d in (today - timedelta(days=k) for k in range(91))
        }


def test_a_seller_whose_day_is_not_mercado_livres_keeps_every_stored_count(engine, tmp_path):
    """Mercado Livre counts visits by its own day (BRT). For a seller an hour behind it, just
    after midnight in Brasília, the answer's days end a day after the seller's today; the
    sync writes zeros only inside the days the answer covers, so a narrowed window never
    turns the settled day at its start into a 0."""
    clock = _at(4)  # 01:30 in Brasília, 23:30 of the day before in Acre
    with sandbox(listings=15, history_days=60, orders_per_day=5, start=clock.now()) as sb:
        sb.state.frozen_at = clock.now()
        settings = settings_for(sb, tmp_path)
        _connect(engine, settings, sb, "t1", USER, tz="America/Rio_Branco")
        registry = build_registry(settings)
        _sync(engine, registry, clock, "t1")
        for _night in range(2):
            sb.state.frozen_at = clock.advance(timedelta(days=1))
            mark = _log_size(sb)
            _sync(engine, registry, clock, "t1")
            assert set(_visit_lasts(sb, mark).values()) == {1 + 3}
        # Every stored day holds Mercado Livre's count for that day label.
        now = sb.state.now()
        stored = _visits(engine, "t1", date(2000, 1, 1))
        spec = sb.state.spec
        assert stored == {
            (ext, d): data.visits_on(spec, data.item_index(spec, ext), d, now) for ext, d in stored
        }
        assert sum(v for v in stored.values()) > 1000
        # ...and no day of any listing went missing: every listing holds the same unbroken
        # run of days.
        spans = set()
        for ext in {e for e, _ in stored}:
            days = sorted(d for e, d in stored if e == ext)
            assert (days[-1] - days[0]).days + 1 == len(days), ext
            spans.add((days[0], days[-1]))
        assert len(spans) == 1 and len({e for e, _ in stored}) == 15
