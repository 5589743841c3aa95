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


def contents(engine: Engine) -> dict:
    """What a seller's data is, for comparing two ways of getting it (visits aside: only
    a sync fetches them)."""
    from superseller.db.schema import (
        listing_metrics_daily,
        listings,
        order_items,
        orders,
        tenant_metrics_daily,
    )

    out = {}
    with engine.connect() as conn:
        out["listings"] = conn.execute(
            select(
                listings.c.external_id,
                listings.c.title,
                listings.c.price,
                listings.c.status,
                listings.c.available_quantity,
            ).order_by(listings.c.external_id)
        ).all()
        out["orders"] = conn.execute(
            select(
                orders.c.external_id,
                orders.c.status,
                orders.c.date_created,
                orders.c.created_local_date,
                orders.c.total_amount,
                orders.c.paid_amount,
                orders.c.last_updated,
            ).order_by(orders.c.external_id)
        ).all()
        out["order_items"] = conn.execute(
            select(
                orders.c.external_id,
                order_items.c.line,
                order_items.c.listing_external_id,
                order_items.c.listing_id.is_(None),
                order_items.c.quantity,
                order_items.c.unit_price,
            )
            .join(orders, orders.c.id == order_items.c.order_id)
            .order_by(orders.c.external_id, order_items.c.line)
        ).all()
        out["listing_metrics"] = conn.execute(
            select(
                listings.c.external_id,
                listing_metrics_daily.c.date,
                listing_metrics_daily.c.orders,
                listing_metrics_daily.c.units_sold,
                listing_metrics_daily.c.revenue,
                listing_metrics_daily.c.avg_ticket,
            )
            .join(listings, listings.c.id == listing_metrics_daily.c.listing_id)
            .order_by(listings.c.external_id, listing_metrics_daily.c.date)
        ).all()
        out["tenant_metrics"] = conn.execute(
            select(
                tenant_metrics_daily.c.date,
                tenant_metrics_daily.c.orders,
                tenant_metrics_daily.c.units_sold,
                tenant_metrics_daily.c.revenue,
                tenant_metrics_daily.c.other_orders,
                tenant_metrics_daily.c.other_revenue,
            ).order_by(tenant_metrics_daily.c.date)
        ).all()
    return out
