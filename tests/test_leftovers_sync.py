"""Sync faults found by a walk: a grant lost during the visits step.

Real HTTP against the sandbox, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from superseller.db.schema import jobs, marketplace_accounts, tenants
from superseller.wiring import build_registry
from tests.support.ml import connected_tenant, run_sync, sandbox, settings_for


class _OnVisits(list):
    """The sandbox's request log, calling `hook` (under the sandbox's lock) as each visits
    request arrives, before the request is answered: a fault that strikes exactly when the
    sync reaches its visits step."""

    def __init__(self, hook, *args):
        super().__init__(*args)
        self.hook = hook

    def append(self, entry) -> None:
        super().append(entry)
        if entry[1].endswith("/visits/time_window"):
            self.hook()


def _strike_at_visits(sb, hook) -> None:
    sb.state.request_log = _OnVisits(hook, sb.state.request_log)


def _tenant(engine):
    with engine.connect() as conn:
        return conn.execute(select(tenants).where(tenants.c.id == "t1")).one()


def _rebuilds(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(jobs).where(jobs.c.type == "metrics_aggregation")
        ).scalar()


def test_grant_lost_during_the_visits_step_ends_reconnect_required(engine, tmp_path):
    """The walk: Mercado Livre forgot every token (a restart with fresh state) just as the
    visits step began. Every visits call answers 401, the refresh answers invalid_grant:
    the sync must end as reconnect-required, not "completed" with each listing's visits
    filed as a refusal (which told the seller the update worked)."""
    with sandbox(listings=12) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        reg = build_registry(settings)
        first = run_sync(engine, reg, days_back=3)
        assert first["status"] == "completed", first["last_error"]
        ok_at = _tenant(engine).last_sync_ok_at
        rebuilds = _rebuilds(engine)

        def forget_every_token():
            sb.state.access.clear()
            sb.state.latest_refresh.clear()

        _strike_at_visits(sb, forget_every_token)
        done = run_sync(engine, reg, days_back=3)
        assert done["status"] == "failed" and done["attempts"] == 1, done["result"]
        assert "needs re-authorization" in done["last_error"]
        with engine.connect() as conn:
            acct = conn.execute(select(marketplace_accounts)).one()
        assert acct.status == "reauth_required"
        t = _tenant(engine)
        assert t.last_sync_ok_at == ok_at  # not noted as a successful sync
        assert t.last_sync_error.startswith("reconnect needed")
        assert _rebuilds(engine) == rebuilds  # nothing queued as if it had worked


def test_a_401_that_a_fresh_token_does_not_fix_fails_the_sync(engine, tmp_path):
    """Even a just-refreshed token is refused on the visits calls: the account's answer, not
    each listing's. The sync fails (as a 401 in the listings or orders step does), never
    "completed" with every listing's visits filed as refused."""
    with sandbox(listings=6) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        reg = build_registry(settings)
        _strike_at_visits(sb, sb.state.access.clear)  # every token refused, refresh works
        done = run_sync(engine, reg, days_back=3)
        assert done["status"] == "failed", done["result"]
        assert "401" in done["last_error"]
        assert _tenant(engine).last_sync_ok_at is None
        assert sb.state.stats["refreshes"] >= 1  # a refresh was tried, and did not help
