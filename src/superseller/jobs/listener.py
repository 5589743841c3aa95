"""PostgreSQL LISTEN/NOTIFY: wake an idle worker the moment a job is enqueued."""

from __future__ import annotations

import logging
import threading

import psycopg
from sqlalchemy import Engine

from superseller.jobs.backend.postgres import NOTIFY_CHANNEL
from superseller.jobs.dbwatch import DB_ERRORS, DatabaseWatch

log = logging.getLogger("superseller.jobs.listener")


def psycopg_conninfo(engine: Engine) -> str:
    url = engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class Listener:
    """A thread holding one LISTEN connection; calls `wake()` on each notification."""

    def __init__(self, engine: Engine, queues: list[str] | None, wake, watch=None):
        self._conninfo = psycopg_conninfo(engine)
        # The owner's DatabaseWatch: a lost connection is one log line per outage.
        self._watch = watch if watch is not None else DatabaseWatch(log)
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
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._watch.ok()
                    self.ready.set()
                    self._wake()  # jobs may have been enqueued while we were not listening
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            if self._queues is None or note.payload in self._queues:
                                self._wake()
            except Exception as exc:  # noqa: BLE001 - polling still finds the work
                if not isinstance(exc, DB_ERRORS):
                    log.error("LISTEN loop failed", exc_info=exc)
                self._watch.failed(exc)  # logs once per outage
                self._stop.wait(self._watch.retry_delay())
