"""A whole notification loop for tests: the sandbox (emitting), the API serving the
webhook over real HTTP, and a worker, around one connected tenant `t1`."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine, func, select

from superseller.config import Settings
from superseller.db.schema import ml_notifications
from superseller.sandbox.server import RunningSandbox
from superseller.wiring import build_registry
from tests.support.api import serving
from tests.support.inproc import running_worker
from tests.support.ml import connected_tenant, sandbox, settings_for

WEBHOOK = "/api/v1/mercadolivre/notifications"


@dataclass
class Loop:
    sb: RunningSandbox
    settings: Settings
    registry: Any
    url: str  # the API
    engine: Engine

    def emit(self, **config) -> None:
        """Point the sandbox's emitter at our webhook (fast retries unless told)."""
        body = {"callback_url": self.url + WEBHOOK, "retry_scale": 0.001, "tick_s": 0.05}
        r = httpx.post(f"{self.sb.url}/_sandbox/notifications", json={**body, **config})
        assert r.status_code == 200, r.text

    def sandbox(self, method: str, path: str, **kw) -> Any:
        r = httpx.request(method, self.sb.url + path, timeout=30, **kw)
        assert r.status_code == 200, r.text
        return r.json()

    def unprocessed(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count())
                .select_from(ml_notifications)
                .where(ml_notifications.c.processed_at.is_(None))
            ).scalar()


@contextlib.contextmanager
def notification_loop(engine: Engine, tmp_path, worker: bool = True, **spec):
    with sandbox(**spec) as sb:
        settings = settings_for(sb, tmp_path, ml_notification_delay_s=0.2)
        connected_tenant(engine, settings)
        registry = build_registry(settings)
        with serving(settings, engine, registry) as url:
            loop = Loop(sb, settings, registry, url, engine)
            if worker:
                with running_worker(engine, registry):
                    yield loop
            else:
                yield loop
