"""The operator console's list and counts at a million jobs (and a million job_logs rows).

A fresh PostgreSQL database gets N jobs over 30 days (ids grow with created_at, as the
engine writes them; ~96% completed, 2% failed, 1% cancelled, a few hundred pending and
running; 500 tenants; a rare `cleanup` type, a 5% queue and a 0.01% queue) and one
job_logs row per job. Then, for each filter the console offers (alone and combined), we
time what one page view asks: a keyset page of 50 (`JobAdmin.search`) and the per-state
counts capped at 1,000 (`JobAdmin.counts`: finished jobs over the last 24 h unless the
filter has a window) with the newest id, p50/p95 of R runs each, each run on a fresh
`JobAdmin`; and the database's own time for the same calls (EXPLAIN ANALYZE of every
statement they send), which a loaded machine does not inflate the way it does the
wall-clock. Then again without migration 0021's indexes, in the same run. Goal: p95 < 100 ms.

    uv run --group bench python bench/console.py [--rows 1000000] [--reps 30]
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
from sqlalchemy import event

from superseller.jobs.admin import JobAdmin, JobFilter

SPAN_S = 30 * 86400

FILL = """
INSERT INTO jobs (type, queue, payload, status, priority, run_at, attempts, max_attempts,
                  cancel_requested, created_at, started_at, finished_at, tenant_id, last_error)
SELECT CASE WHEN i % 1000 = 0 THEN 'cleanup'
            ELSE (ARRAY['sync_mercadolivre','metrics_aggregation','score_listings',
                        'freshness_heal'])[1 + i % 4] END,
       CASE WHEN i % 10000 = 7 THEN 'rare' WHEN i % 20 = 0 THEN 'slow' ELSE 'default' END,
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
    with scratch_postgres("bench_console") as engine:
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
        results = {"with": measure(engine, args.reps)}
        # The same table without migration 0021's indexes (its downgrade), same run.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for stmt in WITHOUT_0021:
                conn.exec_driver_sql(stmt)
            conn.exec_driver_sql("VACUUM ANALYZE jobs")
        results["without"] = measure(engine, args.reps)
        print(
            "\nms; wall = from Python (p50/p95), db = EXPLAIN ANALYZE planning + execution of"
            " every statement of one call (median of 3)"
        )
        print(
            f"{'filter':<34}{'list p50':>9}{'p95':>7}{'db':>7}{'counts p50':>11}{'p95':>7}"
            f"{'db':>7}{'| without 0021: list db':>24}{'counts db':>10}"
        )
        worst = worst_db = 0.0
        for label, r in results["with"].items():
            w = results["without"][label]
            worst = max(worst, r["list"][1], r["counts"][1])
            worst_db = max(worst_db, r["list_db"], r["counts_db"])
            print(
                f"{label:<34}{r['list'][0]:>9.1f}{r['list'][1]:>7.1f}{r['list_db']:>7.2f}"
                f"{r['counts'][0]:>11.1f}{r['counts'][1]:>7.1f}{r['counts_db']:>7.2f}"
                f"{w['list_db']:>24.2f}{w['counts_db']:>10.2f}"
            )
        print(f"\nworst wall p95: {worst:.1f} ms, worst db: {worst_db:.2f} ms (goal < 100 ms)")


WITHOUT_0021 = (
    "DROP INDEX ix_jobs_unsuccessful_id",
    "DROP INDEX ix_jobs_queue_id",
    "DROP INDEX ix_jobs_queue_finished",
)


def db_ms(engine, fn) -> float:
    """Server time of what `fn` asks: each SELECT it sent, run again under EXPLAIN ANALYZE
    (planning + execution), summed; the median of 3 such runs."""
    sent: list = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    totals = []
    with engine.connect() as conn:
        for _ in range(3):
            total = 0.0
            for statement, parameters in sent:
                if not statement.lstrip().upper().startswith("SELECT"):
                    continue
                plan = conn.exec_driver_sql(
                    "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters
                ).scalar()[0]
                total += plan["Planning Time"] + plan["Execution Time"]
            totals.append(total)
    return statistics.median(totals)


def measure(engine, reps: int) -> dict[str, dict]:
    """{filter: {list: (p50, p95), counts: (p50, p95), list_db, counts_db}} in ms."""
    jobs = JobAdmin(engine)  # (each timed call below uses a fresh one: no reuse)
    now = datetime.now(UTC)
    day = now - timedelta(days=10)
    one_day = {"created_from": day, "created_to": day + timedelta(days=1)}
    finished_day = {"finished_from": day, "finished_to": day + timedelta(days=1)}
    middle = jobs.search(JobFilter(), limit=1)[0]["id"] // 2
    cases = [
        ("no filter", JobFilter(), {}),
        ("state=failed", JobFilter(status="failed"), {}),
        ("state=cancelled", JobFilter(status="cancelled"), {}),
        ("state=completed", JobFilter(status="completed"), {}),
        ("state=pending", JobFilter(status="pending"), {}),
        ("type=cleanup (0.1%)", JobFilter(job_type="cleanup"), {}),
        ("tenant=t7", JobFilter(tenant_id="t7"), {}),
        ("queue=slow (5%)", JobFilter(queue="slow"), {}),
        ("queue=rare (0.01%)", JobFilter(queue="rare"), {}),
        ("queue=slow+failed", JobFilter(status="failed", queue="slow"), {}),
        ("failed+type+tenant", JobFilter("failed", "sync_mercadolivre", "t100"), {}),
        ("created on one day", JobFilter(**one_day), {}),
        ("created on one day, failed", JobFilter(status="failed", **one_day), {}),
        ("created on one day, tenant", JobFilter(tenant_id="t7", **one_day), {}),
        ("created on one day, cleanup", JobFilter(job_type="cleanup", **one_day), {}),
        ("created on one day, queue=slow", JobFilter(queue="slow", **one_day), {}),
        ("finished on one day, by finish", JobFilter(**finished_day), {"sort": "finished"}),
        (
            "finished on one day, failed",
            JobFilter(status="failed", **finished_day),
            {"sort": "finished"},
        ),
        ("deep page (before=middle id)", JobFilter(), {"before_id": middle}),
    ]
    out = {}
    for label, f, options in cases:
        jobs.search(f, **options), jobs.counts(f)  # warm caches
        a = timed(lambda f=f, o=options: JobAdmin(engine).search(f, limit=50, **o), reps)
        b = timed(lambda f=f: _counts(JobAdmin(engine), f), reps)
        out[label] = {
            "list": (p(a, 50), p(a, 95)),
            "counts": (p(b, 50), p(b, 95)),
            "list_db": db_ms(engine, lambda f=f, o=options: JobAdmin(engine).search(f, **o)),
            "counts_db": db_ms(engine, lambda f=f: _counts(JobAdmin(engine), f)),
        }
    return out


if __name__ == "__main__":
    main()
