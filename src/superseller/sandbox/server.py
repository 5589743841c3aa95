"""Run the sandbox: in the foreground (`superseller sandbox serve`) or in a thread."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import uvicorn

from superseller.sandbox.app import SandboxState, create_app
from superseller.sandbox.data import SellerSpec


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningSandbox:
    url: str
    state: SandboxState
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_in_thread(spec: SellerSpec | None = None, port: int | None = None) -> RunningSandbox:
    """Serve the sandbox over real HTTP on 127.0.0.1 from a background thread."""
    state = SandboxState(spec or SellerSpec())
    app = create_app(state=state)
    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="sandbox")
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("sandbox did not start")
        time.sleep(0.01)
    return RunningSandbox(f"http://127.0.0.1:{port}", state, server, thread)


def serve(spec: SellerSpec, host: str, port: int) -> None:
    uvicorn.run(create_app(spec), host=host, port=port, log_level="info")
