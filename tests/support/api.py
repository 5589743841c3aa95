"""The API app served over real HTTP from a thread, on a free port."""

from __future__ import annotations

import contextlib
import threading
import time

import uvicorn

from superseller.api.app import create_app, uvicorn_options
from superseller.api.deps import Services
from superseller.jobs.clock import SystemClock
from superseller.sandbox.server import free_port


@contextlib.contextmanager
def serving(settings, engine, registry, short_wait_s: float = 4.0):
    svc = Services(
        settings=settings,
        engine=engine,
        registry=registry,
        clock=SystemClock(),
        short_wait_s=short_wait_s,
    )
    with serving_app(create_app(svc)) as url:
        yield url


def _options(app) -> dict:
    svc = getattr(app.state, "services", None)
    return uvicorn_options(svc.settings) if svc is not None else {}


@contextlib.contextmanager
def serving_app(app):
    """Any ASGI app over real HTTP from a thread, on a free port."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            **_options(app),  # as `superseller serve` runs it
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "API did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
