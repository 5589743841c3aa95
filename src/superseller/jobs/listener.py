"""PostgreSQL LISTEN/NOTIFY: wake an idle worker the moment a job is enqueued."""

from __future__ import annotations

import logging
import threading

import psycopg
from sqlalchemy import Engine

from superseller.jobs.store import NOTIFY_CHANNEL

log = logging.getLogger("superseller.jobs.listener")


def psycopg_conninfo(engine: Engine) -> str:
    url = engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class Listener:
    """A thread holding one LISTEN connection; calls `wake()` on each notification."""

    def __init__(self, engine: Engine, queues: list[str] | None, wake):
        self._conninfo = psycopg_conninfo(engine)
        self._queues = set(queues) if queues else None
        self._wake = wake
        self._stop = threading.Event()
        self.ready = threading.Event()  # set once LISTEN is in place
        self._thread = threading.Thread(target=self._run, name="listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.ready.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            if self._queues is None or note.payload in self._queues:
                                self._wake()
            except psycopg.Error as exc:
                # Polling still finds the work; reconnect after a pause.
                log.warning("LISTEN connection lost: %s", exc)
                self._stop.wait(2.0)
