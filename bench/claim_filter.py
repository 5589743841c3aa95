"""The claim with and without paused queues, side by side, on PostgreSQL (one run).

The worker's hot path is one claim statement. With no queue paused it is the plain claim,
unchanged; with some paused it carries `queue <> ALL(…)`. Each round drains the same
number of due jobs in batches, once per case, the cases in rotating order:

- `plain`: no queue paused (every worker's claim before and after per-queue pause);
- `paused, empty`: one queue paused that holds no job (the filter's own cost);
- `paused, 10k waiting`: one queue paused with 10,000 due jobs ahead in claim order (higher
  priority): each claim's index scan steps over them — the worst case, while paused.

Prints the median time per claim (ms, from Python) and its ratio to `plain`, and the
server's own time for one claim of each case (EXPLAIN ANALYZE, rolled back; median of 9),
which a loaded machine inflates less (TIMING OFF: no per-row clock reads).

    uv run --group bench python bench/claim_filter.py [--jobs 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from scratch_db import scratch_postgres  # noqa: E402  (bench/scratch_db.py)
from sqlalchemy import delete

from superseller.db.schema import jobs
from superseller.jobs.backend import backend_for

BATCH = 50


def _rows(n: int, queue: str, priority: int, now: datetime) -> list[dict]:
    return [
        {
            "type": "noop",
            "queue": queue,
            "tenant_id": None,
            "payload": {},
            "status": "pending",
            "priority": priority,
            "run_at": now - timedelta(seconds=1),
            "attempts": 0,
            "max_attempts": 3,
            "unique_key": None,
            "lock_key": None,
            "timeout_s": None,
            "cancel_requested": False,
            "created_at": now,
            "schedule_id": None,
            "scheduled_for": None,
        }
        for _ in range(n)
    ]


def _reset(engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(jobs))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE jobs")  # each case starts from a clean index


def _fill(engine, be, n: int, waiting: int) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        if waiting:  # ahead of the others in claim order
            be.insert_jobs(conn, _rows(waiting, "p", 10, now))
        be.insert_jobs(conn, _rows(n, "default", 0, now))


def drain(engine, be, n: int, exclude: list[str] | None, waiting: int) -> list[float]:
    """n due jobs in `default` (and `waiting` in the paused queue `p`), claimed in
    batches until a claim comes back empty; ms per claim."""
    _fill(engine, be, n, waiting)
    times = []
    while True:
        t = time.perf_counter()
        with engine.begin() as conn:
            be.begin_hot_path(conn)
            got = be.claim(conn, "bench", BATCH, datetime.now(UTC), exclude=exclude)
        times.append((time.perf_counter() - t) * 1000)
        if not got:
            break
    _reset(engine)
    return times


def server_ms(engine, be, cases: dict) -> dict[str, float]:
    """EXPLAIN ANALYZE of one claim of 50 among 1,000 due jobs per case, rolled back."""
    from superseller.jobs.backend.base import queue_filter

    out: dict[str, float] = {}
    for case, (exclude, waiting) in cases.items():
        _fill(engine, be, 1000, waiting)
        times = []
        for _ in range(9):
            params = {"limit": BATCH, "worker": "bench", "now": datetime.now(UTC)}
            kind = queue_filter(params, None, exclude)
            with engine.connect() as conn:
                tx = conn.begin()
                be.begin_hot_path(conn)
                plan = conn.exec_driver_sql(
                    "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + be._CLAIMS[(False, kind)],
                    params,
                ).scalar()[0]
                tx.rollback()
            times.append(plan["Planning Time"] + plan["Execution Time"])
        out[case] = statistics.median(times)
        _reset(engine)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with scratch_postgres("bench_claim") as engine:
        be = backend_for(engine)
        cases = {
            "plain": (None, 0),
            "paused, empty": (["p"], 0),
            "paused, 10k waiting": (["p"], 10_000),
        }
        drain(engine, be, args.jobs // 4, None, 0)  # warm up
        per: dict[str, list[float]] = {c: [] for c in cases}
        order = list(cases)
        for r in range(args.rounds):
            for case in order[r % 3 :] + order[: r % 3]:
                per[case] += drain(engine, be, args.jobs, *cases[case])
        server = server_ms(engine, be, cases)
        base = statistics.median(per["plain"])
        print(f"{args.rounds} rounds x {args.jobs} jobs, batches of {BATCH}, PostgreSQL")
        for case, values in per.items():
            med = statistics.median(values)
            print(
                f"{case:<22} {med:7.2f} ms per claim  x{med / base:.2f} of plain   "
                f"server {server[case]:6.3f} ms  x{server[case] / server['plain']:.2f}"
            )


if __name__ == "__main__":
    main()
