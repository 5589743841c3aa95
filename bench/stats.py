"""Job stats on millions of rows: the maintained counters vs counting the history.

A fresh PostgreSQL database gets N finished jobs and N job_logs rows spread over 30
days (plus a few hundred unfinished jobs), the counters are folded once, then we time
what the admin stats endpoint does per request (`queue_counts` + `job_type_stats`,
a fold of nothing new included) against the naive queries the seed's routes ran
(`count(*) … GROUP BY` over jobs and job_logs), p50/p95 of R runs each.

    uv run --group bench python bench/stats.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from scratch_db import scratch_postgres  # noqa: E402  (bench/scratch_db.py)

from superseller.jobs import stats

FILL = """
INSERT INTO jobs (type, queue, payload, status, priority, run_at, attempts, max_attempts,
                  cancel_requested, created_at, started_at, finished_at, tenant_id)
SELECT (ARRAY['sync_mercadolivre','rebuild_daily_metrics','cleanup','score_listings'])[1 + i % 4],
       'default', '{}'::jsonb,
       CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'completed' END, 0,
       now() - (i % 43200) * interval '1 minute', 1, 3, false,
       now() - (i % 43200) * interval '1 minute', now() - (i % 43200) * interval '1 minute',
       now() - (i % 43200) * interval '1 minute' + interval '2 seconds', 't' || (i % 500)
FROM generate_series(1, :n) AS i;
INSERT INTO job_logs (job_id, job_type, tenant_id, status, attempt, started_at, completed_at,
                      duration_ms, records_processed)
SELECT id, type, tenant_id, CASE WHEN status = 'failed' THEN 'error' ELSE 'success' END,
       1 + (id % 7 = 0)::int, started_at, finished_at, 2000, 10
FROM jobs;
INSERT INTO jobs (type, queue, payload, status, priority, run_at, attempts, max_attempts,
                  cancel_requested, created_at)
SELECT 'sync_mercadolivre', 'default', '{}'::jsonb, 'pending', 0, now(), 0, 3, false, now()
FROM generate_series(1, 300);
ANALYZE jobs; ANALYZE job_logs;
"""

NAIVE = [
    "SELECT queue, status, count(*) FROM jobs GROUP BY queue, status",
    "SELECT job_type, status, count(*), avg(duration_ms), max(started_at) FROM job_logs "
    "GROUP BY job_type, status",
    "SELECT * FROM job_logs WHERE status <> 'success' ORDER BY started_at DESC LIMIT 10",
]


def timed(fn, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
    with scratch_postgres("bench_stats") as engine:
        t = time.perf_counter()
        with engine.begin() as conn:
            conn.exec_driver_sql(FILL.replace(":n", str(args.rows)).replace("%", "%%"))
        print(
            f"filled {args.rows:,} jobs + {args.rows:,} job_logs in {time.perf_counter() - t:.1f} s"
        )
        t = time.perf_counter()
        folded = 0
        while n := stats.fold(engine):
            folded += n
        print(
            f"first fold of {folded:,} log rows: {time.perf_counter() - t:.1f} s "
            f"(once; afterwards each fold only adds what is new)"
        )

        def ours():
            stats.queue_counts(engine)
            stats.job_type_stats(engine)

        def naive():
            with engine.connect() as conn:
                for q in NAIVE:
                    conn.exec_driver_sql(q).all()

        ours(), naive()  # warm caches
        a, b = timed(ours, args.reps), timed(naive, args.reps)
        print(f"\n{'stats request':<34}{'p50 ms':>10}{'p95 ms':>10}")
        print(f"{'SuperSeller (counters)':<34}{p(a, 50):>10.1f}{p(a, 95):>10.1f}")
        print(f"{'naive count(*) over history':<34}{p(b, 50):>10.1f}{p(b, 95):>10.1f}")
        print(f"\nratio (naive / ours, p50): {p(b, 50) / p(a, 50):.1f}x faster")


if __name__ == "__main__":
    main()
