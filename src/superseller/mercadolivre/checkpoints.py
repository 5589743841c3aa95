"""Durable progress of one sync run, so that a run cut short resumes where it stopped.

A big seller's sync is thousands of requests; a worker killed (or a host cut off) in the
middle of it used to start again from the first page. The run now records each part it
finishes (the listing ids, each range of item details, the orders, each range of visits)
in `sync_checkpoints`, keyed by the job: the retry of the same job skips them. A part is
recorded only after its rows are written, so a crash in between fetches that one range
again (the writes are idempotent upserts), never skips it.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Engine, delete, select

from superseller.db.schema import sync_checkpoints
from superseller.db.upsert import insert_on_conflict
from superseller.jobs.clock import Clock

# Listings per range: a range's details are 500/20 = 25 multigets, its visits 500 requests.
RANGE = 500


def ranges(n: int, size: int = RANGE) -> list[tuple[int, int]]:
    return [(lo, min(n, lo + size)) for lo in range(0, n, size)]


class Checkpoints:
    """The parts one job has finished: `done` on load, `mark()` as it goes."""

    def __init__(self, engine: Engine, job_id: int, clock: Clock):
        self.engine = engine
        self.job_id = job_id
        self.clock = clock
        with engine.connect() as conn:
            rows = conn.execute(
                select(sync_checkpoints.c.part, sync_checkpoints.c.data).where(
                    sync_checkpoints.c.job_id == job_id
                )
            ).all()
        # `progress` is what the seller is shown (progress.py), not a part of the run.
        self.done: dict[str, Any] = {part: data for part, data in rows if part != "progress"}
        self.resumed = len(self.done)  # parts found from an earlier attempt

    def get(self, part: str) -> Any:
        return self.done.get(part)

    def mark(self, part: str, data: Any) -> None:
        # First one wins: a worker cut off from the database that comes back late (its job
        # already rescued by another) adds nothing the rescuer has not recorded itself.
        insert = functools.partial(insert_on_conflict, self.engine)
        with self.engine.begin() as conn:
            conn.execute(
                insert(sync_checkpoints)
                .values(job_id=self.job_id, part=part, data=data, created_at=self.clock.now())
                .on_conflict_do_nothing()
            )
        self.done[part] = data

    def clear(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sync_checkpoints).where(sync_checkpoints.c.job_id == self.job_id))
        self.done = {}
