"""The operator console's list and counts at a million jobs (and a million job_logs rows).

A fresh PostgreSQL database gets N jobs over 30 days (ids grow with created_at, as the
engine writes them; ~96% completed, 2% failed, 1% cancelled, a few hundred pending and
running; 500 tenants; a rare `cleanup` type and a second queue) and one job_logs row per
job. Then, for each filter the console offers, we time what one page view asks: a keyset
page of 50 (`JobAdmin.search`) and the per-state counts capped at 1,000
(`JobAdmin.counts`: finished jobs over the last 24 h unless the filter has a window) with
the newest id, p50/p95 of R runs each, each run on a fresh `JobAdmin`. Goal: p95 < 100 ms.

    uv run --group bench python bench/console.py [--rows 1000000] [--reps 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from superseller.db import migrate
from superseller.db.engine import make_engine
from superseller.jobs.admin import JobAdmin, JobFilter

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SPAN_S = 30 * 86400

FILL = """
INSERT INTO jobs (type, queue, payload, status, priority, run_at, attempts, max_attempts,
                  cancel_requested, created_at, started_at, finished_at, tenant_id, last_error)
SELECT CASE WHEN i % 1000 = 0 THEN 'cleanup'
            ELSE (ARRAY['sync_mercadolivre','metrics_aggregation','score_listings',
                        'freshness_heal'])[1 + i % 4] END,
       CASE WHEN i % 20 = 0 THEN 'slow' ELSE 'default' END,
       '{"tenantId": "t"}'::jsonb,
       CASE WHEN i % 50 = 0 THEN 'failed' WHEN i % 97 = 0 THEN 'cancelled' ELSE 'completed' END,
       0, t, 1, 3, false, t, t, t + interval '2 seconds', 't' || (i % 500),
       CASE WHEN i % 50 = 0 THEN 'RuntimeError: boom' END
FROM (SELECT i, now() - (:span - i::bigint * :span / :n) * interval '1 second' AS t
      FROM generate_series(1, :n) AS i) AS g;
INSERT INTO job_logs (job_id, job_type, tenant_id, status, attempt, started_at, completed_at,
                      duration_ms, records_processed)
SELECT id, type, tenant_id, CASE WHEN status = 'completed' THEN 'success' ELSE 'error' END,
       1, started_at, finished_at, 2000, 10
FROM jobs;
INSERT INTO jobs (type, queue, payload, status, priority, run_at, attempts, max_attempts,
                  cancel_requested, created_at, tenant_id)
SELECT 'sync_mercadolivre', 'default', '{}'::jsonb,
       CASE WHEN i % 10 = 0 THEN 'running' ELSE 'pending' END, 0, now(), 0, 3, false, now(),
       't' || (i % 500)
FROM generate_series(1, 300) AS i;
ANALYZE jobs; ANALYZE job_logs;
"""


def timed(fn, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def _counts(admin: JobAdmin, f: JobFilter):
    """What the page polls: counts per state and the newest id."""
    return admin.counts(f), admin.latest_id(f)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
    name = f"bench_console_{uuid.uuid4().hex[:8]}"
    admin = make_engine(ADMIN).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = make_engine(f"postgresql://postgres@127.0.0.1:5432/{name}")
    try:
        migrate.upgrade(engine)
        t = time.perf_counter()
        sql = FILL.replace(":span", str(SPAN_S)).replace(":n", str(args.rows))
        with engine.begin() as conn:
            conn.exec_driver_sql(sql.replace("%", "%%"))
        print(f"filled {args.rows:,} jobs + job_logs in {time.perf_counter() - t:.1f} s")
        # What autovacuum keeps up in a live database: the visibility map (index-only
        # scans) and the planner's statistics.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE jobs")
            conn.exec_driver_sql("VACUUM ANALYZE job_logs")
        results = {"with 0019": measure(engine, args.reps)}
        # The same table without migration 0019's indexes (its downgrade), same run.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for stmt in WITHOUT_0019:
                conn.exec_driver_sql(stmt)
            conn.exec_driver_sql("VACUUM ANALYZE jobs")
        results["without"] = measure(engine, args.reps)
        print(
            f"\n{'filter':<34}{'list p50':>10}{'list p95':>10}{'counts p50':>12}{'p95':>8}"
            f"{'| without: list p95':>20}{'counts p95':>12}"
        )
        worst = 0.0
        for label, (a50, a95, b50, b95) in results["with 0019"].items():
            _, w_a95, _, w_b95 = results["without"][label]
            worst = max(worst, a95, b95)
            print(
                f"{label:<34}{a50:>10.1f}{a95:>10.1f}{b50:>12.1f}{b95:>8.1f}"
                f"{w_a95:>20.1f}{w_b95:>12.1f}"
            )
        print(f"\nworst p95 with 0019: {worst:.1f} ms (goal < 100 ms)")
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


WITHOUT_0019 = (
    "DROP INDEX ix_jobs_type_id",
    "DROP INDEX ix_jobs_status_finished",
    "DROP INDEX ix_jobs_tenant_status",
    "CREATE INDEX ix_jobs_tenant_status ON jobs (tenant_id, status) WHERE tenant_id IS NOT NULL",
)


def measure(engine, reps: int) -> dict[str, tuple[float, float, float, float]]:
    """{filter: (list p50, list p95, counts p50, counts p95)} in ms."""
    jobs = JobAdmin(engine)  # (each timed call below uses a fresh one: no reuse)
    now = datetime.now(UTC)
    day = now - timedelta(days=10)
    middle = jobs.search(JobFilter(), limit=1)[0]["id"] // 2
    cases = [
        ("no filter", JobFilter(), {}),
        ("state=failed", JobFilter(status="failed"), {}),
        ("state=completed", JobFilter(status="completed"), {}),
        ("type=cleanup (0.1%)", JobFilter(job_type="cleanup"), {}),
        ("tenant=t7", JobFilter(tenant_id="t7"), {}),
        ("queue=slow", JobFilter(queue="slow"), {}),
        ("failed+type+tenant", JobFilter("failed", "sync_mercadolivre", "t100"), {}),
        (
            "created on one day",
            JobFilter(created_from=day, created_to=day + timedelta(days=1)),
            {},
        ),
        (
            "finished on one day, by finish",
            JobFilter(finished_from=day, finished_to=day + timedelta(days=1)),
            {"sort": "finished"},
        ),
        ("deep page (before=middle id)", JobFilter(), {"before_id": middle}),
    ]
    out = {}
    for label, f, options in cases:
        jobs.search(f, **options), jobs.counts(f)  # warm caches
        a = timed(lambda f=f, o=options: JobAdmin(engine).search(f, limit=50, **o), reps)
        b = timed(lambda f=f: _counts(JobAdmin(engine), f), reps)
        out[label] = (p(a, 50), p(a, 95), p(b, 50), p(b, 95))
    return out


if __name__ == "__main__":
    main()
