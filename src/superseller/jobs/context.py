"""What a handler sees of the job it runs."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from superseller.jobs.clock import Clock
from superseller.jobs.errors import JobCancelled, JobTimeout

# Guards the lazy creation of a context's Event (the loop and the heart-beat thread may
# both reach for it); held for a few instructions, never while waiting.
_EVENT_LOCK = threading.Lock()


@dataclass(eq=False)
class JobContext:
    job_id: int
    job_type: str
    tenant_id: str | None
    attempt: int
    max_attempts: int
    payload: Any  # the validated payload model, or the raw dict
    raw_payload: dict
    scheduled_for: datetime | None
    schedule_id: int | None
    base_logger: logging.Logger
    engine: Engine
    clock: Clock
    records_processed: int = 0
    # Cancellation is a plain flag; the Event that `wait()` sleeps on is built only when a
    # handler waits (building one per job was the largest part of starting a job, see
    # docs/performance.md). `_timed_out` is set before `_cancelled`, read after it.
    _cancelled: bool = field(default=False, repr=False)
    _timed_out: bool = field(default=False, repr=False)
    _event: threading.Event | None = field(default=None, repr=False)
    _logger: logging.LoggerAdapter | None = field(default=None, repr=False)

    @property
    def logger(self) -> logging.LoggerAdapter:
        """The job's logger: every line carries job id, type, tenant and attempt."""
        if self._logger is None:
            self._logger = logging.LoggerAdapter(
                self.base_logger,
                {
                    "job_id": self.job_id,
                    "job_type": self.job_type,
                    "tenant_id": self.tenant_id,
                    "attempt": self.attempt,
                },
            )
        return self._logger

    def add_records(self, n: int = 1) -> None:
        self.records_processed += n

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled, timed out, or the worker is shutting down."""
        return self._cancelled

    def raise_if_cancelled(self) -> None:
        if self._timed_out:
            raise JobTimeout("job timed out")
        if self._cancelled:
            raise JobCancelled("cancel requested")

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early on cancellation; returns True if cancelled."""
        with _EVENT_LOCK:
            if self._event is None:
                self._event = threading.Event()
                if self._cancelled:
                    self._event.set()
            event = self._event
        return event.wait(seconds)

    # engine side
    def request_cancel(self) -> None:
        with _EVENT_LOCK:
            self._cancelled = True
            event = self._event
        if event is not None:
            event.set()

    def mark_timed_out(self) -> None:
        self._timed_out = True
        self.request_cancel()
