"""The API app served over real HTTP from a thread, on a free port."""

from __future__ import annotations

import contextlib
import threading
import time

import httpx
import uvicorn

from superseller.api.app import create_app, uvicorn_options
from superseller.api.deps import Services
from superseller.jobs.clock import SystemClock
from superseller.jobs.worker import Worker, WorkerOptions
from superseller.sandbox.server import free_port
from tests.support.inproc import FAST

PASSWORD = "correct horse battery"  # every test user's
ADMIN = "/api/admin/jobs"  # the admin jobs API's prefix


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
def serving_store(engine, tmp_path, seller: str):
    """A connected store `t1` with its seller `seller` (password PASSWORD), served over
    real HTTP with the product's own job types: the URL."""
    from superseller.config import Settings
    from superseller.users.accounts import create_user
    from superseller.wiring import build_registry
    from tests.support import marketplace as mk

    mk.tenant(engine, "t1")
    mk.account(engine, "t1")  # connected: the overview shows its period form
    create_user(engine, seller, PASSWORD, "seller", "t1")
    settings = Settings(data_dir=tmp_path)
    with serving(settings, engine, build_registry(settings)) as url:
        yield url


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


@contextlib.contextmanager
def client(url, email):
    with httpx.Client(base_url=url, timeout=30, headers={"Origin": url}) as c:  # as a browser
        assert (
            c.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}).status_code
            == 200
        )
        yield c


def drain(engine, registry):
    """Run every due job to the end (a burst worker in this thread)."""
    assert Worker(engine, registry, WorkerOptions(**{**FAST, "burst": True})).run() == 0
