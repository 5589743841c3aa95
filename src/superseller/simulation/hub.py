"""Many sandbox sellers behind one address: the product has one Mercado Livre URL.

Each simulated seller is a whole sandbox app (`sandbox.app.create_app`) with its own
`SellerSpec` (size, seed, user id) and a state whose "now" is the simulated clock. The
hub routes each request by the user id the sandbox writes at the end of every token
and code it issues (`APP_USR-…-<user>`, `TG-…-<user>`); `/authorization` goes to the
seller the driver is connecting; the driver's own calls (`/_sandbox/…`: start a seller's
notification emitter, edit an item) name the seller in an `X-Sandbox-User` header.
The sellers are one application's: they share one `/missed_feeds` list (any seller's
token reads every seller's missed notifications, as on Mercado Livre).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs

import uvicorn
from fastapi import FastAPI

from superseller.sandbox.app import SandboxState, create_app
from superseller.sandbox.data import SellerSpec
from superseller.sandbox.notifier import MissedFeed
from superseller.sandbox.server import free_port
from superseller.simulation.clock import SimClock


class SimSandboxState(SandboxState):
    """A sandbox seller living on the simulated clock."""

    clock: SimClock | None = None

    def now(self) -> datetime:
        return self.clock.now() if self.clock else super().now()


def _user_of(value: str) -> int | None:
    tail = value.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


class Hub:
    """An ASGI app dispatching to one sandbox app per seller."""

    def __init__(self) -> None:
        self.sellers: dict[int, tuple[SimSandboxState, FastAPI]] = {}
        self.connecting: int | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # the server's: emitters run on it
        self.missed_feed = MissedFeed()  # the application's, whichever seller it is about

    def add(self, spec: SellerSpec, clock: SimClock) -> SimSandboxState:
        state = SimSandboxState(spec)
        state.clock = clock
        state.missed_feed = self.missed_feed
        self.sellers[spec.user_id] = (state, create_app(state=state))
        return state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        self.loop = asyncio.get_running_loop()
        user: int | None = None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                user = _user_of(value.decode().split()[-1])
            elif name == b"x-sandbox-user" and scope["path"].startswith("/_sandbox/"):
                user = _user_of(value.decode())
        body = b""
        if scope["path"] == "/oauth/token":
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            form = parse_qs(body.decode())
            token = (form.get("refresh_token") or form.get("code") or [""])[0]
            user = _user_of(token)
        elif scope["path"] == "/authorization":
            user = self.connecting
        if user not in self.sellers:
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b'{"error":"unknown seller"}'})
            return
        app = self.sellers[user][1]
        if scope["path"] == "/oauth/token":
            sent = False

            async def replay():
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await app(scope, replay, send)
        else:
            await app(scope, receive, send)


@dataclass
class RunningHub:
    url: str
    hub: Hub
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_hub(hub: Hub) -> RunningHub:
    """Serve the hub over real HTTP on 127.0.0.1 from a background thread."""
    port = free_port()
    config = uvicorn.Config(
        hub, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="sandbox-hub")
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("sandbox hub did not start")
        time.sleep(0.01)
    return RunningHub(f"http://127.0.0.1:{port}", hub, server, thread)
