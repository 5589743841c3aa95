"""Whether a loop's database calls get through: outage state, back-off, stall detection.

Every database call of a worker or scheduler loop runs inside `DatabaseWatch.call()`.
A failed call marks the database down (one log line, "database unreachable, retrying")
and hands out the next capped back-off; the first call that succeeds again marks it
back (one log line, "database back after 12.3 s"); a call that was already in flight
when the failure came does not count as proof. Calls that take longer than
`slow_s` (a held SQLite write lock, a stalled PostgreSQL) count as trouble too:
`quiet_for()` says how long the database has answered promptly, which is what a
worker checks before it declares other workers' jobs lost (their heartbeats were
stuck behind the same outage or stall).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time

from superseller.db.connection_errors import DB_ERRORS
from superseller.jobs.errors import one_line

# DB_ERRORS: its home is the db layer; one_line: jobs.errors (a log line never quotes SQL)
__all__ = ["DB_ERRORS", "DatabaseWatch", "one_line"]


class DatabaseWatch:
    def __init__(
        self,
        logger: logging.Logger,
        base_s: float = 0.25,
        cap_s: float = 1.0,
        slow_s: float = 1.0,
    ):
        self.log = logger
        self.base_s, self.cap_s, self.slow_s = base_s, cap_s, slow_s
        self._lock = threading.Lock()
        self._failures = 0
        self._down_mono: float | None = None
        self.down_since: float | None = None  # wall time (epoch s) of the first failure
        self.last_ok: float | None = None  # wall time of the last call that got through
        self.last_ok_mono: float | None = None
        self._trouble_mono = float("-inf")  # end of the last failed or slow call
        self._inflight: dict[int, float] = {}
        self._ids = itertools.count()

    @property
    def down(self) -> bool:
        return self._down_mono is not None

    def ok(self, took_s: float = 0.0) -> None:
        now = time.monotonic()
        with self._lock:
            self.last_ok, self.last_ok_mono = time.time(), now
            if took_s > self.slow_s:
                self._trouble_mono = now
            # Only a call that began after the failure proves the database is back: one
            # already in flight may have had its answer in hand when the connections died.
            if self._down_mono is not None and now - took_s >= self._down_mono:
                self.log.warning("database back after %.1f s", now - self._down_mono)
                self._down_mono = self.down_since = None
                self._failures = 0
                self._trouble_mono = now

    def failed(self, exc: BaseException) -> float:
        """Record a failed call; returns how long to wait before the next try."""
        now = time.monotonic()
        with self._lock:
            self._trouble_mono = now
            self._failures += 1
            if self._down_mono is None:
                self._down_mono, self.down_since = now, time.time()
                self.log.warning("database unreachable, retrying: %s", one_line(exc))
            return self.retry_delay()

    def retry_delay(self) -> float:
        """The capped exponential back-off for the current run of failures."""
        n = max(1, self._failures)
        return min(self.cap_s, self.base_s * 2 ** min(n - 1, 20))

    @contextlib.contextmanager
    def call(self):
        """Time one database call and record how it went (re-raising its error)."""
        token = next(self._ids)
        start = time.monotonic()
        with self._lock:
            self._inflight[token] = start
        try:
            yield
        except DB_ERRORS as exc:
            self.failed(exc)
            raise
        else:
            self.ok(time.monotonic() - start)
        finally:
            with self._lock:
                self._inflight.pop(token, None)

    def waiting_for(self) -> float:
        """How long the oldest call in flight has been waiting (0 when none is)."""
        now = time.monotonic()
        with self._lock:
            return max((now - start for start in self._inflight.values()), default=0.0)

    def quiet_for(self) -> float:
        """Seconds since the database last failed or stalled a call (0 while a call has
        been waiting longer than `slow_s`, or while it is down)."""
        now = time.monotonic()
        with self._lock:
            if self._down_mono is not None:
                return 0.0
            if any(now - start > self.slow_s for start in self._inflight.values()):
                return 0.0
            return now - self._trouble_mono
