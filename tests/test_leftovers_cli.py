"""Leftovers of the command line and the Mercado Livre connection, on both databases:
a store marked connected whose tokens are gone asks to be reconnected (no traceback)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from superseller.db.schema import job_logs, jobs, marketplace_accounts
from superseller.mercadolivre.account_state import account_state
from superseller.wiring import build_registry
from tests.support.cli import cli
from tests.support.ml import connected_tenant, run_sync, sandbox, settings_for


def _account(engine, tid="t1"):
    with engine.connect() as conn:
        return conn.execute(
            select(marketplace_accounts).where(marketplace_accounts.c.tenant_id == tid)
        ).one()


def _sync_jobs(engine):
    with engine.connect() as conn:
        return (
            conn.execute(select(jobs.c.id).where(jobs.c.type == "sync_mercadolivre"))
            .scalars()
            .all()
        )


def _errors(engine, job_id):
    with engine.connect() as conn:
        return (
            conn.execute(select(job_logs.c.error_message).where(job_logs.c.job_id == job_id))
            .scalars()
            .all()
        )


@pytest.mark.parametrize("gone", [None, ""], ids=["null", "empty"])
def test_a_store_marked_connected_without_tokens_asks_to_reconnect(engine, db_url, tmp_path, gone):
    """A half-finished manual fix left the account row `connected` with its token columns
    NULL (or empty): the sync ends with the revoked grant's outcome — a permanent failure
    saying the seller must connect again, the store `reauth_required` ("Reconectar"), for
    good — and `superseller sync` says so in one line, never an AttributeError."""
    with sandbox(listings=2, orders_per_day=1) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings, "t1")
        with engine.begin() as conn:
            conn.execute(
                update(marketplace_accounts)
                .where(marketplace_accounts.c.tenant_id == "t1")
                .values(access_token_enc=gone, refresh_token_enc=gone)
            )
        assert account_state(engine, "t1") == "never_synced"  # still looks connected

        env = {
            "DATA_DIR": str(tmp_path),
            "ML_API_URL": sb.url,
            "ML_CLIENT_ID": "sandbox-app",
            "ML_CLIENT_SECRET": "sandbox-secret",
            "ML_REQUESTS_PER_S": "0",
        }
        run = cli(db_url, "sync", "--tenant", "t1", "--days-back", "3", env=env)
        assert run.returncode == 1, run.stderr
        # The command's error is its last line (the worker's log lines come before it),
        # the revoked grant's: no traceback, no AttributeError.
        said = run.stderr.strip().splitlines()[-1]
        assert said.startswith("error: sync failed (job ") and "re-authorization" in said, said
        assert "connect again" in said and "AttributeError" not in run.stderr
        assert "Traceback" not in run.stderr and 'File "' not in run.stderr, run.stderr
        [first] = [j for j in _sync_jobs(engine)]
        logged = _errors(engine, first)
        assert logged and not any("AttributeError" in (e or "") for e in logged), logged
        assert not any("Traceback" in (e or "") for e in logged), logged

        acct = _account(engine)
        assert acct.status == "reauth_required"  # the store shows "Reconectar"
        assert acct.status_reason and "connect" in acct.status_reason
        assert account_state(engine, "t1") == "reauth_required"

        # Lasting: the next sync (a worker's) stops at once with the same outcome.
        done = run_sync(engine, build_registry(settings), days_back=3)
    assert done["status"] == "failed"
    error = done["last_error"]
    assert error.startswith("PermanentJobError: ") and "re-authorization" in error, error
    assert len(error.splitlines()) == 1
    assert _account(engine).status == "reauth_required"
