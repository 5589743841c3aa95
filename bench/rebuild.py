"""Daily-metrics rebuild and overview query, on PostgreSQL and SQLite, one run.

10,000 listings with 90 days of orders and visits. We time `rebuild_daily_metrics`
for 30 days against the bare single INSERT … SELECT … ON CONFLICT statement run
by hand on the same data (the peer named in the issue), then the 30-day overview
query at 10,000 listings x 365 days (p50/p95 over repeated calls), and the incremental
rebuild of 10 (listing, day) pairs there (what one burst of notifications asks for),
each time after 10 new sales, against a full rebuild of the days they fall on.

    uv run python bench/rebuild.py [--listings 10000] [--skip-sqlite] [--incremental-only]

Each figure is a median of runs interleaved with its peer's. SQLite's figures also come as
this process's CPU time (its whole work), the steadier one on a shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from superseller.db import migrate
from superseller.db.engine import make_engine
from superseller.metrics.queries import overview
from superseller.metrics.rebuild import rebuild_daily_metrics, rebuild_pairs, tune_session

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
END = date(2026, 11, 21)

# Deterministic data: every 7th listing sells ~1 order/day pattern, visits everywhere.
_SERIES = {
    "postgresql": "SELECT g AS n FROM generate_series(1, :n) AS g",
    "sqlite": "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < :n) "
    "SELECT n FROM s",
}
_DAY = {
    "postgresql": "CAST(:start AS DATE) + CAST(({x}) AS INTEGER)",
    "sqlite": "date(:start, '+' || ({x}) || ' days')",
}


def generate(engine, listings: int, days: int) -> None:
    dialect = engine.dialect.name
    series = _SERIES[dialect]
    start = (END - timedelta(days=days - 1)).isoformat()
    now = "2026-11-22 00:00:00"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tenants (id, name, timezone, status, created_at) "
                "VALUES ('t1', 'Bench', 'America/Sao_Paulo', 'active', :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                f"INSERT INTO listings (id, tenant_id, external_id, title, price, status, "
                f"created_local_date, created_at, updated_at) "
                f"SELECT n, 't1', 'MLB' || n, 'Produto ' || n, 10 + n % 90, 'active', "
                f"{_DAY[dialect].format(x='0')}, :now, :now FROM ({series}) AS s"
            ),
            {"n": listings, "start": start, "now": now},
        )
        n_orders = listings * days // 30  # ~ one order per listing per month
        conn.execute(
            text(
                f"INSERT INTO orders (id, tenant_id, external_id, status, date_created, "
                f"created_local_date, total_amount, created_at, updated_at) "
                f"SELECT n, 't1', 'O' || n, CASE WHEN n % 10 = 0 THEN 'cancelled' ELSE 'paid' END, "
                f":now, {_DAY[dialect].format(x='n % ' + str(days))}, 0, :now, :now "
                f"FROM ({series}) AS s"
            ),
            {"n": n_orders, "start": start, "now": now},
        )
        conn.execute(
            text(
                f"INSERT INTO order_items (order_id, line, listing_external_id, listing_id, "
                f"quantity, unit_price) SELECT n, 0, 'MLB' || (1 + (n * 7919) % {listings}), "
                f"1 + (n * 7919) % {listings}, 1 + n % 3, 10 + n % 50 FROM ({series}) AS s"
            ),
            {"n": n_orders},
        )
        conn.execute(
            text(
                f"INSERT INTO listing_visits_daily (tenant_id, listing_id, date, visits, fetched_at) "
                f"SELECT 't1', 1 + (n - 1) % {listings}, "
                f"{_DAY[dialect].format(x='(n - 1) / ' + str(listings))}, (n * 31) % 40, :now "
                f"FROM ({series}) AS s"
            ),
            {"n": listings * days, "start": start, "now": now},
        )
        if dialect == "postgresql":
            conn.exec_driver_sql("ANALYZE")


BARE = """
INSERT INTO listing_metrics_daily (tenant_id, listing_id, date, visits, orders, units_sold,
    revenue, conversion, avg_ticket, source, updated_at)
SELECT 't1', l.id, d.d, v.visits, COALESCE(s.orders, 0), COALESCE(s.units, 0),
       COALESCE(s.revenue, 0),
       CASE WHEN v.visits > 0 THEN CAST(COALESCE(s.orders, 0) AS FLOAT) / v.visits END,
       CASE WHEN s.orders > 0 THEN s.revenue / s.orders END, 'bare', CURRENT_TIMESTAMP
FROM listings l CROSS JOIN ({days}) d
LEFT JOIN (SELECT oi.listing_id, o.created_local_date AS d, COUNT(DISTINCT o.id) AS orders,
                  SUM(oi.quantity) AS units, SUM(oi.quantity * oi.unit_price) AS revenue
           FROM orders o JOIN order_items oi ON oi.order_id = o.id
           WHERE o.tenant_id = 't1' AND o.status IN ('paid', 'partially_refunded')
             AND o.created_local_date BETWEEN :start AND :end
           GROUP BY 1, 2) s ON s.listing_id = l.id AND s.d = d.d
LEFT JOIN listing_visits_daily v ON v.tenant_id = 't1' AND v.listing_id = l.id AND v.date = d.d
    AND v.date BETWEEN :start AND :end
WHERE l.tenant_id = 't1'
ON CONFLICT (tenant_id, listing_id, date) DO UPDATE SET visits = excluded.visits,
    orders = excluded.orders, units_sold = excluded.units_sold, revenue = excluded.revenue,
    conversion = excluded.conversion, avg_ticket = excluded.avg_ticket,
    updated_at = excluded.updated_at
"""
_DAYS = {
    "postgresql": "SELECT CAST(g AS DATE) AS d FROM generate_series(CAST(:start AS DATE), "
    "CAST(:end AS DATE), INTERVAL '1 day') AS g",
    "sqlite": "WITH RECURSIVE s(d) AS (SELECT :start UNION ALL SELECT date(d, '+1 day') "
    "FROM s WHERE d < :end) SELECT d FROM s",
}


def clear(engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM listing_metrics_daily")
        conn.exec_driver_sql("DELETE FROM tenant_metrics_daily")
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE listing_metrics_daily")


# SQLite runs in this process, so its whole work is this process's CPU time: on a shared,
# loaded machine the steadier figure (wall times there grow with the other load).
CPU: dict[str, float] = {}


def time_rebuilds(engine, reps: int) -> tuple[float, float]:
    """Bare statement and ours, interleaved; medians (s). CPU medians go to CPU."""
    start = (END - timedelta(days=29)).isoformat()
    ours, bare, ours_cpu, bare_cpu = [], [], [], []
    sql = text(BARE.format(days=_DAYS[engine.dialect.name]))
    for _ in range(reps):
        clear(engine)
        t, c = time.perf_counter(), time.process_time()
        with engine.begin() as conn:
            tune_session(conn)  # the same session settings as ours: a fair comparison
            conn.execute(sql, {"start": start, "end": END.isoformat()})
        bare.append(time.perf_counter() - t)
        bare_cpu.append(time.process_time() - c)
        clear(engine)
        t, c = time.perf_counter(), time.process_time()
        rebuild_daily_metrics(engine, "t1", start, END.isoformat())
        ours.append(time.perf_counter() - t)
        ours_cpu.append(time.process_time() - c)
    CPU["ours"], CPU["bare"] = statistics.median(ours_cpu), statistics.median(bare_cpu)
    return statistics.median(ours), statistics.median(bare)


def time_second_rebuilds(engine, reps: int) -> tuple[float, float]:
    """The daily case: the range is already built and nothing changed. The bare statement
    rewrites every row; ours skips rows whose figures are the same."""
    start = (END - timedelta(days=29)).isoformat()
    sql = text(BARE.format(days=_DAYS[engine.dialect.name]))

    def bare_once():
        with engine.begin() as conn:
            tune_session(conn)
            conn.execute(sql, {"start": start, "end": END.isoformat()})

    ours, bare = [], []
    clear(engine)
    bare_once()
    for _ in range(reps):
        t = time.perf_counter()
        bare_once()
        bare.append(time.perf_counter() - t)
    clear(engine)
    rebuild_daily_metrics(engine, "t1", start, END.isoformat())
    for _ in range(reps):
        t = time.perf_counter()
        rebuild_daily_metrics(engine, "t1", start, END.isoformat())
        ours.append(time.perf_counter() - t)
    return statistics.median(ours), statistics.median(bare)


def time_overview(engine, reps: int) -> tuple[float, float]:
    start = END - timedelta(days=29)
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        overview(engine, "t1", start, END)
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def time_pairs(engine, listings: int, reps: int) -> tuple[float, float]:
    """(median ms of rebuild_pairs over 10 pairs, median ms of a full rebuild of their days),
    each after 10 new paid sales on those pairs."""
    pairs = [(1 + (k * 997) % listings, END - timedelta(days=3 * k)) for k in range(10)]
    days = [d for _, d in pairs]

    def sell(rep: int) -> None:
        with engine.begin() as conn:
            for k, (lid, day) in enumerate(pairs):
                oid = 50_000_000 + rep * 100 + k
                conn.execute(
                    text(
                        "INSERT INTO orders (id, tenant_id, external_id, status, date_created, "
                        "created_local_date, total_amount, created_at, updated_at) VALUES "
                        "(:id, 't1', :ext, 'paid', :now, :day, 0, :now, :now)"
                    ),
                    {"id": oid, "ext": f"N{oid}", "day": day, "now": "2026-11-22 00:00:00"},
                )
                conn.execute(
                    text(
                        "INSERT INTO order_items (order_id, line, listing_external_id, "
                        "listing_id, quantity, unit_price) VALUES (:id, 0, :ext, :lid, 1, 12.5)"
                    ),
                    {"id": oid, "ext": f"MLB{lid}", "lid": lid},
                )

    ours, full, cpu = [], [], []
    for rep in range(reps):
        sell(2 * rep)
        t, c = time.perf_counter(), time.process_time()
        rebuild_pairs(engine, "t1", pairs, days)
        ours.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
        sell(2 * rep + 1)
        t = time.perf_counter()
        rebuild_daily_metrics(engine, "t1", min(days), max(days))
        full.append((time.perf_counter() - t) * 1000)
    CPU["pairs_ms"] = statistics.median(cpu)
    return statistics.median(ours), statistics.median(full)


def run_incremental(label: str, url: str, listings: int, reps: int) -> dict:
    engine = make_engine(url)
    migrate.upgrade(engine)
    t = time.perf_counter()
    generate(engine, listings, 365)
    rebuild_daily_metrics(engine, "t1", (END - timedelta(days=364)).isoformat(), END.isoformat())
    if engine.dialect.name == "postgresql":  # the steady state autovacuum keeps
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    print(f"[{label}] {listings} x 365 built in {time.perf_counter() - t:.1f}s", flush=True)
    pairs_ms, full_ms = time_pairs(engine, listings, max(reps, 5))
    print(
        f"[{label}] incremental rebuild of 10 (listing, day) pairs: {pairs_ms:.1f} ms "
        f"(this process's CPU {CPU['pairs_ms']:.1f} ms); full rebuild of their 28 days "
        f"{full_ms:.0f} ms (ratio {pairs_ms / full_ms:.3f})",
        flush=True,
    )
    engine.dispose()
    return {"pairs_ms": pairs_ms, "pairs_full_ms": full_ms}


def run(label: str, url: str, listings: int, reps: int) -> dict:
    engine = make_engine(url)
    migrate.upgrade(engine)
    t = time.perf_counter()
    generate(engine, listings, 90)
    print(
        f"[{label}] generated {listings} listings x 90 days in {time.perf_counter() - t:.1f}s",
        flush=True,
    )
    ours, bare = time_rebuilds(engine, reps)
    print(
        f"[{label}] rebuild 30 days: ours {ours:.2f}s, bare statement {bare:.2f}s, "
        f"ratio {ours / bare:.2f}x (this process's CPU: {CPU['ours']:.2f}s / "
        f"{CPU['bare']:.2f}s = {CPU['ours'] / CPU['bare']:.2f}x; SQLite's whole work)",
        flush=True,
    )
    again_ours, again_bare = time_second_rebuilds(engine, reps)
    print(
        f"[{label}] rebuild the same 30 days again (nothing changed): ours "
        f"{again_ours:.2f}s, bare statement {again_bare:.2f}s, "
        f"ratio {again_ours / again_bare:.2f}x",
        flush=True,
    )
    # The overview at 365 days of history.
    with engine.begin() as conn:
        for table in (
            "listing_metrics_daily",
            "tenant_metrics_daily",
            "listing_visits_daily",
            "order_items",
            "orders",
            "listings",
            "tenants",
        ):
            conn.exec_driver_sql(f"DELETE FROM {table}")
    generate(engine, listings, 365)
    t = time.perf_counter()
    rebuild_daily_metrics(engine, "t1", (END - timedelta(days=364)).isoformat(), END.isoformat())
    print(f"[{label}] rebuilt 365 days in {time.perf_counter() - t:.1f}s", flush=True)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    p50, p95 = time_overview(engine, 50)
    print(
        f"[{label}] overview 30 days at {listings} x 365: p50 {p50:.1f} ms, p95 {p95:.1f} ms",
        flush=True,
    )
    pairs_ms, full_ms = time_pairs(engine, listings, max(reps, 5))
    print(
        f"[{label}] incremental rebuild of 10 (listing, day) pairs: {pairs_ms:.1f} ms; full "
        f"rebuild of their 28 days {full_ms:.0f} ms (ratio {pairs_ms / full_ms:.3f})",
        flush=True,
    )
    engine.dispose()
    return {
        "pairs_ms": pairs_ms,
        "pairs_full_ms": full_ms,
        "ours": ours,
        "bare": bare,
        "again_ours": again_ours,
        "again_bare": again_bare,
        "p50": p50,
        "p95": p95,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--listings", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--skip-sqlite", action="store_true")
    ap.add_argument("--skip-postgresql", action="store_true")
    ap.add_argument("--incremental-only", action="store_true")
    args = ap.parse_args()
    results = {}
    if args.incremental_only:
        name = f"bench_pairs_{uuid.uuid4().hex[:8]}"
        admin = make_engine(ADMIN).execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            url = ADMIN.rsplit("/", 1)[0] + "/" + name
            results["postgresql"] = run_incremental("postgresql", url, args.listings, args.reps)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not args.skip_sqlite:
            with tempfile.TemporaryDirectory() as d:
                results["sqlite"] = run_incremental(
                    "sqlite", f"sqlite:///{d}/bench.db", args.listings, args.reps
                )
        for db, r in results.items():
            print(f"{db:12s} pairs {r['pairs_ms']:7.1f} ms  full days {r['pairs_full_ms']:7.0f} ms")
        print("goal: 10 pairs < 100 ms on both databases")
        return
    if not args.skip_postgresql:
        name = f"bench_rebuild_{uuid.uuid4().hex[:8]}"
        admin = make_engine(ADMIN).execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            results["postgresql"] = run(
                "postgresql", ADMIN.rsplit("/", 1)[0] + "/" + name, args.listings, args.reps
            )
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as d:
            results["sqlite"] = run("sqlite", f"sqlite:///{d}/bench.db", args.listings, args.reps)
    print()
    print(
        f"{'database':12s} {'ours s':>8s} {'bare s':>8s} {'ratio':>6s} {'again ours':>11s} "
        f"{'again bare':>11s} {'ratio':>6s} {'ovw p50':>8s} {'ovw p95':>8s}"
    )
    for db, r in results.items():
        print(
            f"{db:12s} {r['ours']:8.2f} {r['bare']:8.2f} {r['ours'] / r['bare']:6.2f} "
            f"{r['again_ours']:11.2f} {r['again_bare']:11.2f} "
            f"{r['again_ours'] / r['again_bare']:6.2f} {r['p50']:8.1f} {r['p95']:8.1f} "
            f"pairs {r['pairs_ms']:.1f} ms"
        )
    print("goals (PostgreSQL): rebuild <= 1.2x bare and < 3 s; overview p95 < 50 ms")


if __name__ == "__main__":
    main()
