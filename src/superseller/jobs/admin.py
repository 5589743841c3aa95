"""Inspecting and steering jobs: list, show, logs, cancel, retry, run now.
(Counts and run statistics: `superseller.jobs.stats`.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from superseller.db.rows import row_dict
from superseller.db.schema import JOB_STATES, job_logs, jobs
from superseller.jobs.clock import Clock, SystemClock
from superseller.jobs.errors import InvalidTransition, JobNotFound

job_dict = log_dict = row_dict


@dataclass
class JobAdmin:
    engine: Engine
    clock: Clock = field(default_factory=SystemClock)

    def get(self, job_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
        if row is None:
            raise JobNotFound(job_id)
        return job_dict(row)

    def logs(self, job_id: int) -> list[dict[str, Any]]:
        self.get(job_id)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(job_logs).where(job_logs.c.job_id == job_id).order_by(job_logs.c.id)
            ).all()
        return [log_dict(r) for r in rows]

    def list(
        self,
        *,
        status: str | None = None,
        job_type: str | None = None,
        tenant_id: str | None = None,
        queue: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first; pass the last id seen as `before_id` for the next page."""
        if status is not None and status not in JOB_STATES:
            raise InvalidTransition(f"unknown state {status!r} (one of {', '.join(JOB_STATES)})")
        stmt = select(jobs).order_by(jobs.c.id.desc()).limit(max(1, min(limit, 500)))
        if status:
            stmt = stmt.where(jobs.c.status == status)
        if job_type:
            stmt = stmt.where(jobs.c.type == job_type)
        if tenant_id:
            stmt = stmt.where(jobs.c.tenant_id == tenant_id)
        if queue:
            stmt = stmt.where(jobs.c.queue == queue)
        if before_id is not None:
            stmt = stmt.where(jobs.c.id < before_id)
        with self.engine.connect() as conn:
            return [job_dict(r) for r in conn.execute(stmt)]

    def cancel(self, job_id: int) -> str:
        """Cancel a pending job at once; ask a running one to stop. Returns what happened."""
        now = self.clock.now()
        with self.engine.begin() as conn:
            done = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == "pending")
                .values(status="cancelled", finished_at=now, last_error="cancelled on request")
            ).rowcount
            if done:
                return "cancelled"
            asked = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == "running")
                .values(cancel_requested=True)
            ).rowcount
            if asked:
                return "cancel_requested"
        state = self.get(job_id)["status"]
        raise InvalidTransition(f"job {job_id} is {state}; only pending or running jobs cancel")

    def retry(self, job_id: int) -> dict[str, Any]:
        """Re-queue a failed or cancelled job with a fresh set of attempts."""
        now = self.clock.now()
        try:
            with self.engine.begin() as conn:
                done = conn.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id, jobs.c.status.in_(("failed", "cancelled")))
                    .values(
                        status="pending",
                        attempts=0,
                        run_at=now,
                        finished_at=None,
                        cancel_requested=False,
                        worker_id=None,
                        heartbeat_at=None,
                    )
                ).rowcount
        except IntegrityError:
            raise InvalidTransition(
                f"job {job_id} cannot be retried: an unfinished job with its unique key exists"
            ) from None
        if not done:
            state = self.get(job_id)["status"]
            raise InvalidTransition(f"job {job_id} is {state}; only failed or cancelled jobs retry")
        return self.get(job_id)

    def run_now(self, job_id: int) -> dict[str, Any]:
        """Make a pending job due immediately."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == "pending")
                .values(run_at=self.clock.now())
            ).rowcount
        if not done:
            state = self.get(job_id)["status"]
            raise InvalidTransition(f"job {job_id} is {state}; only pending jobs can run now")
        return self.get(job_id)
