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


@dataclass
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
    logger: logging.LoggerAdapter
    engine: Engine
    clock: Clock
    records_processed: int = 0
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    # A plain flag (set before `_cancel`, read after it): one Event per job is enough, and
    # building Events is the largest part of starting a job (see docs/performance.md).
    _timed_out: bool = field(default=False, repr=False)

    def add_records(self, n: int = 1) -> None:
        self.records_processed += n

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled, timed out, or the worker is shutting down."""
        return self._cancel.is_set()

    def raise_if_cancelled(self) -> None:
        if self._timed_out:
            raise JobTimeout("job timed out")
        if self._cancel.is_set():
            raise JobCancelled("cancel requested")

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early on cancellation; returns True if cancelled."""
        return self._cancel.wait(seconds)

    # engine side
    def request_cancel(self) -> None:
        self._cancel.set()

    def mark_timed_out(self) -> None:
        self._timed_out = True
        self._cancel.set()
