"""Supervised in-process loops: the worker and the scheduler inside `serve`.

A loop that ends or dies for any reason (while nobody asked it to stop) is logged with
its traceback and started again, fresh, after a back-off (1 s doubling to 30 s). Each loop
reports its health for `/readyz` and `/metrics`:

- `down`: the loop is not running (it died and waits for its restart);
- `database_unreachable`: its database calls fail (it retries with back-off);
- `database_unresponsive`: one of its calls has waited longer than `unresponsive_s`
  (a held SQLite write lock, a stalled PostgreSQL);
- `stalled`: no database call got through within `expected_period_s`;
- `ok` otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from superseller.jobs.dbwatch import DatabaseWatch
from superseller.jobs.errors import error_text

log = logging.getLogger("superseller.jobs.supervise")

RESTART_BASE_S = 1.0
RESTART_CAP_S = 30.0


class Loop(Protocol):
    watch: DatabaseWatch

    def stop(self) -> None: ...


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat() if epoch is not None else None


class SupervisedLoop:
    def __init__(
        self,
        name: str,
        factory: Callable[[], Loop],
        run: Callable[[Loop], Any],
        expected_period_s: float,
        unresponsive_s: float = 2.0,
    ):
        self.name = name
        self._factory, self._run = factory, run
        self.expected_period_s = expected_period_s
        self.unresponsive_s = unresponsive_s
        self.part: Loop | None = None
        self.restarts = 0
        self.down_since: float | None = time.time()  # wall time; None while running
        self.last_error: str | None = None
        self._run_started: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name=name, daemon=True)

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> SupervisedLoop:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        part = self.part
        if part is not None:
            part.stop()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _supervise(self) -> None:
        delay = RESTART_BASE_S
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                part = self.part = self._factory()
                if self._stop.is_set():
                    return
                self._run_started, self.down_since = time.time(), None
                self._run(part)
                if self._stop.is_set():
                    return
                self.last_error = "the loop returned"
                log.error("%s loop ended unexpectedly; restarting in %.0f s", self.name, delay)
            except Exception as exc:  # noqa: BLE001 - whatever it was, restart the loop
                self.last_error = error_text(exc)[:500]  # /readyz shows it: no SQL
                log.exception("%s loop died; restarting in %.0f s", self.name, delay)
            self.down_since = time.time()
            self.restarts += 1
            if time.monotonic() - started > 10 * RESTART_CAP_S:
                delay = RESTART_BASE_S  # it had been running well: start over quickly
            self._stop.wait(delay)
            delay = min(delay * 2, RESTART_CAP_S)

    # -- health --------------------------------------------------------------
    def last_progress(self) -> float | None:
        """Wall time of the last database call of this loop that got through."""
        part = self.part
        return part.watch.last_ok if part is not None else None

    def status(self) -> dict[str, Any]:
        """{"loop", "state", "since", ...}: state is `ok` or what is wrong (module doc)."""
        now = time.time()
        part = self.part
        info: dict[str, Any] = {
            "loop": self.name,
            "lastProgress": _iso(self.last_progress()),
            "restarts": self.restarts,
        }
        if self.down_since is not None or part is None:
            since = self.down_since or now
            return {**info, "state": "down", "since": _iso(since), "error": self.last_error}
        watch = part.watch
        if watch.down_since is not None:
            return {**info, "state": "database_unreachable", "since": _iso(watch.down_since)}
        waiting = watch.waiting_for()
        if waiting > self.unresponsive_s:
            return {**info, "state": "database_unresponsive", "since": _iso(now - waiting)}
        progress = max(self.last_progress() or 0.0, self._run_started or 0.0)
        if now - progress > self.expected_period_s:
            return {**info, "state": "stalled", "since": _iso(progress)}
        return {**info, "state": "ok", "since": None}
