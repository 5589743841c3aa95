"""A sandbox seller over real HTTP, and settings pointing SuperSeller at it."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from superseller.config import Settings
from superseller.mercadolivre.connect import connect_sandbox
from superseller.sandbox.data import SellerSpec
from superseller.sandbox.server import start_in_thread
from superseller.tenants import create_tenant


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
