"""A sandbox seller over real HTTP, and settings pointing SuperSeller at it."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from superseller.config import Settings
from superseller.jobs.queue import Queue
from superseller.mercadolivre.connect import connect_sandbox
from superseller.sandbox.data import SellerSpec
from superseller.sandbox.server import start_in_thread
from superseller.tenants import create_tenant
from tests.support.inproc import running_worker, wait_status


@contextlib.contextmanager
def sandbox(**spec):
    running = start_in_thread(SellerSpec(**{"start": datetime.now(UTC), **spec}))
    try:
        yield running
    finally:
        running.stop()


# The sandbox's own app (superseller.sandbox accepts these credentials).
CLIENT_ID = "sandbox-app"
CLIENT_SECRET = "sandbox-secret"


def settings_for(sb, tmp_path, **extra) -> Settings:
    return Settings(
        data_dir=tmp_path,
        ml_api_url=sb.url,
        ml_auth_url=sb.url + "/authorization",
        ml_client_id=CLIENT_ID,
        ml_client_secret=CLIENT_SECRET,
        ml_redirect_uri="http://localhost/callback",
        ml_requests_per_s=0,
        ml_concurrency=8,
        **extra,
    )


def sandbox_env(sb_url: str, **extra) -> dict[str, str]:
    """The environment pointing a `superseller` child process at the sandbox at `sb_url`
    (its API, its authorization page, its app's credentials), as `settings_for` points
    this process; `extra` adds or overrides variables (DATA_DIR, ML_REQUESTS_PER_S, ...)."""
    return {
        "ML_API_URL": sb_url,
        "ML_AUTH_URL": sb_url + "/authorization",
        "ML_CLIENT_ID": CLIENT_ID,
        "ML_CLIENT_SECRET": CLIENT_SECRET,
        **{k: str(v) for k, v in extra.items()},
    }


def connected_tenant(engine, settings: Settings, tid: str = "t1") -> int:
    create_tenant(engine, f"Loja {tid}", tenant_id=tid)
    return connect_sandbox(engine, settings, tid, datetime.now(UTC))


def run_sync(engine, registry, days_back=30, clock=None, timeout=240, **worker):
    jid = (
        Queue(engine, registry, clock)
        .enqueue("sync_mercadolivre", {"tenantId": "t1", "daysBack": days_back}, tenant_id="t1")
        .id
    )
    with running_worker(engine, registry, clock=clock, **worker):
        done = wait_status(engine, jid, "completed", "failed", timeout=timeout)
    return done
