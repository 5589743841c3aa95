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


def settings_for(sb, tmp_path, **extra) -> Settings:
    return Settings(
        data_dir=tmp_path,
        ml_api_url=sb.url,
        ml_auth_url=sb.url + "/authorization",
        ml_client_id="sandbox-app",
        ml_client_secret="sandbox-secret",
        ml_redirect_uri="http://localhost/callback",
        ml_requests_per_s=0,
        ml_concurrency=8,
        **extra,
    )


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
