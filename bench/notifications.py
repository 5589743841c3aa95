"""Mercado Livre notifications end to end, on PostgreSQL and SQLite, one run each.

A seller with `--listings` listings and `--days` days of history (orders, visits, the daily
metrics built), connected to the sandbox; `superseller serve --with-worker` (one worker) as a
real process; the sandbox's emitter POSTs each sale to its webhook as Mercado Livre would.

1. Steady sales (`--rate` per second, `--sales` of them): webhook ack p50/p99 (measured by
   the emitter: POST to 200) and sale-to-dashboard latency p50/p95 (from the sale to the
   moment `GET /api/v1/metrics/version` counts it in today's orders, polled every 100 ms).
2. Peak: notifications POSTed straight at the webhook at rising rates for `--burst-s` seconds
   each; the highest rate whose p99 stays <= 500 ms (Mercado Livre's limit).

    uv run python bench/notifications.py [--listings 10000] [--days 365] [--skip-sqlite]

`--baseline-src DIR` (another checkout's `src`, e.g. the previous commit's) runs that code's
server on the same prepared data right before this one's, so the two are compared side by
side in one run. `--burst-only` skips the steady phase; `--no-worker` serves without the
in-process worker (to tell the webhook's own cost from the worker's). Each burst line gives
the server process's CPU seconds during the burst.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from rebuild import END, generate  # noqa: E402  (bench/rebuild.py: the same history)

from superseller.config import Settings  # noqa: E402
from superseller.db import migrate  # noqa: E402
from superseller.db.engine import make_engine  # noqa: E402
from superseller.mercadolivre.connect import connect_sandbox  # noqa: E402
from superseller.metrics.rebuild import rebuild_daily_metrics  # noqa: E402
from superseller.sandbox.data import SellerSpec, item_id  # noqa: E402
from superseller.sandbox.server import free_port, start_in_thread  # noqa: E402
from superseller.users.accounts import create_user  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "bench-password-123"
WEBHOOK = "/api/v1/mercadolivre/notifications"


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(p / 100 * len(values))) - 1))]


def prepare(url: str, sb, listings: int, days: int, data_dir: Path) -> Settings:
    engine = make_engine(url)
    migrate.upgrade(engine)
    t = time.perf_counter()
    generate(engine, listings, days)
    with engine.begin() as conn:  # the listings are the sandbox seller's items
        conn.execute(text("UPDATE listings SET external_id = 'MLB' || (2999999999 + id)"))
        conn.execute(
            text("UPDATE order_items SET listing_external_id = 'MLB' || (2999999999 + listing_id)")
        )
        if engine.dialect.name == "postgresql":  # generate() wrote explicit ids
            for table in ("listings", "orders"):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT MAX(id) FROM {table}))"
                    )
                )
    rebuild_daily_metrics(engine, "t1", END - timedelta(days=days - 1), END)
    settings = Settings(
        data_dir=data_dir,
        database_url=url,
        ml_api_url=sb.url,
        ml_auth_url=sb.url + "/authorization",
        ml_client_id="sandbox-app",
        ml_client_secret="sandbox-secret",
        ml_redirect_uri="http://localhost/callback",
        ml_requests_per_s=0,
    )
    connect_sandbox(engine, settings, "t1", datetime.now(UTC))
    create_user(engine, "bench@loja.com", PASSWORD, "seller", "t1")
    engine.dispose()
    print(f"  history {listings} x {days} built in {time.perf_counter() - t:.0f} s", flush=True)
    return settings


def serve(
    settings: Settings, port: int, log: Path, worker: bool = True, src: str | None = None
) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATA_DIR": str(settings.data_dir),
        "DATABASE_URL": settings.database_url,
        "ML_API_URL": settings.ml_api_url,
        "ML_AUTH_URL": settings.ml_auth_url,
        "ML_CLIENT_ID": settings.ml_client_id,
        "ML_CLIENT_SECRET": settings.ml_client_secret.get_secret_value(),
        "ML_REDIRECT_URI": settings.ml_redirect_uri,
        "ML_REQUESTS_PER_S": "0",
        "LOG_FORMAT": "text",
    }
    if src:  # another checkout's code: ahead of this one's installed package
        env["PYTHONPATH"] = src
    cmd = [sys.executable, "-m", "superseller.cli", "serve", "--port", str(port)]
    proc = subprocess.Popen(
        cmd + (["--with-worker"] if worker else []),
        cwd=ROOT,
        env=env,
        stdout=open(log, "w"),  # noqa: SIM115 - the child owns it
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"server did not become ready; see {log}")


def steady(sb, api: str, token: str, listings: int, rate: float, sales: int) -> dict:
    """Sales at a steady rate; per sale the time until the dashboard counts it."""
    headers = {"Authorization": f"Bearer {token}"}
    seen: list[tuple[float, int]] = []
    stop = threading.Event()

    def poll():
        with httpx.Client(base_url=api, headers=headers, timeout=60) as c:
            while not stop.is_set():
                try:
                    n = c.get("/api/v1/metrics/version").json()["ordersToday"]
                except httpx.HTTPError:
                    continue
                seen.append((time.monotonic(), n))
                time.sleep(0.1)

    with httpx.Client(base_url=api, headers=headers, timeout=10) as c:
        base = c.get("/api/v1/metrics/version").json()["ordersToday"]
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    rng = random.Random(5)
    sold_at = []
    with httpx.Client(base_url=sb.url, timeout=60) as c:
        began = time.monotonic()
        for k in range(sales):
            wait = began + k / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            sold_at.append(time.monotonic())
            c.post("/_sandbox/sell", json={"item": item_id(None, rng.randrange(listings))})
    deadline = time.monotonic() + 180
    while (not seen or seen[-1][1] < base + sales) and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    poller.join()
    latencies = []
    for k, t_sale in enumerate(sold_at):
        visible = next((t for t, n in seen if n >= base + k + 1 and t >= t_sale), None)
        if visible is not None:
            latencies.append(visible - t_sale)
    acks = httpx.get(f"{sb.url}/_sandbox/notifications", params={"acks": "true"}).json()["ackMs"]
    return {
        "sales": sales,
        "visible": len(latencies),
        "ack_p50": pct(acks, 50),
        "ack_p99": pct(acks, 99),
        "s2d_p50": pct(latencies, 50) if latencies else float("nan"),
        "s2d_p95": pct(latencies, 95) if latencies else float("nan"),
    }


async def burst(api: str, listings: int, rate: int, seconds: float) -> tuple[float, int]:
    """POST `rate` notifications a second for `seconds`; (their p99 in ms, how many were
    not answered 200: on SQLite a 503 when the write lock stayed busy, ML then retries)."""
    rng = random.Random(rate)
    times: list[float] = []
    refused: list[int] = []
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=200)) as c:

        async def one():
            body = {
                "_id": str(uuid.uuid4()),
                "resource": f"/items/{item_id(None, rng.randrange(listings))}",
                "user_id": 123456789,
                "topic": "items",
                "application_id": "sandbox-app",
                "attempts": 1,
            }
            t = time.perf_counter()
            try:
                status = (await c.post(api + WEBHOOK, json=body)).status_code
            except httpx.TransportError:  # a dropped connection: ML would retry it too
                status = 0
            times.append((time.perf_counter() - t) * 1000)
            if status != 200:
                refused.append(status)

        tasks = []
        began = time.perf_counter()
        for k in range(int(rate * seconds)):
            wait = began + k / rate - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return pct(times, 99), len(refused)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(url: str, timeout_s: float = 180) -> None:
    """Wait until the worker finished what the bursts queued (the next server of a
    side-by-side run must not inherit this one's backlog)."""
    engine = make_engine(url)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                busy = conn.execute(
                    text("SELECT COUNT(*) FROM jobs WHERE status IN ('pending', 'running')")
                ).scalar()
            if not busy:
                return
            time.sleep(0.5)
        print(f"  ({busy} jobs still queued after {timeout_s:.0f} s)", flush=True)
    finally:
        engine.dispose()


def diagnose(url: str, log: Path) -> None:
    """Why sales did not reach the dashboard: the notifications' and jobs' states, the log."""
    engine = make_engine(url)
    with engine.connect() as conn:
        for sql in (
            "SELECT topic, outcome, COUNT(*) FROM ml_notifications GROUP BY 1, 2",
            "SELECT type, status, COUNT(*), MAX(last_error) FROM jobs GROUP BY 1, 2",
        ):
            print("  ", conn.execute(text(sql)).all(), flush=True)
    engine.dispose()
    print("  " + "\n  ".join(log.read_text().splitlines()[-15:]), flush=True)


def run(label: str, url: str, args) -> dict[str, dict]:
    """Prepare the data once, then each server (the baseline's first, when given) on it."""
    print(f"[{label}]", flush=True)
    sb = start_in_thread(SellerSpec(listings=args.listings, start=datetime.now(UTC)))
    servers = [("baseline", args.baseline_src)] if args.baseline_src else []
    servers.append(("this", args.src))
    results = {}
    with tempfile.TemporaryDirectory() as d:
        settings = prepare(url, sb, args.listings, args.days, Path(d))
        try:
            for name, src in servers:
                print(f"  {name} code{' (no worker)' if args.no_worker else ''}:", flush=True)
                results[name] = one_server(settings, sb, Path(d), url, src, args)
        finally:
            sb.stop()
    return results


def one_server(settings: Settings, sb, d: Path, url: str, src: str | None, args) -> dict:
    port = free_port()
    log = d / f"serve-{port}.log"
    proc = serve(settings, port, log, worker=not args.no_worker, src=src)
    api = f"http://127.0.0.1:{port}"
    nan = float("nan")
    result = {"ack_p50": nan, "ack_p99": nan, "s2d_p50": nan, "s2d_p95": nan}
    try:
        if not args.burst_only:
            login = {"email": "bench@loja.com", "password": PASSWORD}
            token = httpx.post(api + "/api/v1/auth/login", json=login, timeout=60).json()["token"]
            httpx.post(
                sb.url + "/_sandbox/notifications",
                json={"callback_url": api + WEBHOOK},
                timeout=60,
            ).raise_for_status()
            result = steady(sb, api, token, args.listings, args.rate, args.sales)
            print(
                f"  {result['visible']}/{result['sales']} sales on the dashboard; webhook ack "
                f"p50 {result['ack_p50']:.1f} ms p99 {result['ack_p99']:.1f} ms; sale to "
                f"dashboard p50 {result['s2d_p50']:.2f} s p95 {result['s2d_p95']:.2f} s",
                flush=True,
            )
            if result["visible"] < result["sales"]:
                diagnose(url, log)
            httpx.post(sb.url + "/_sandbox/notifications", json={}, timeout=60).raise_for_status()
        held = 0
        for rate in args.burst_rates:
            cpu, own = cpu_s(proc.pid), time.process_time()
            p99, refused = asyncio.run(burst(api, args.listings, rate, args.burst_s))
            print(
                f"  {rate}/s for {args.burst_s:.0f} s: p99 {p99:.0f} ms, {refused} not 200 "
                f"(CPU: server {cpu_s(proc.pid) - cpu:.1f} s, bench {time.process_time() - own:.1f}"
                f" s; load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
            if p99 > 500 or refused:
                break
            held = rate
        result["peak"] = held
        if not args.no_worker:
            settle(url)  # the next server starts on a queue this one finished
    finally:
        proc.terminate()
        proc.wait(60)
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--listings", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--rate", type=float, default=2.0, help="sales per second")
    ap.add_argument("--sales", type=int, default=60)
    ap.add_argument("--burst-s", type=float, default=5.0)
    ap.add_argument("--burst-rates", type=int, nargs="+", default=[50, 100, 200, 400, 800])
    ap.add_argument("--skip-sqlite", action="store_true")
    ap.add_argument("--skip-postgresql", action="store_true")
    ap.add_argument("--burst-only", action="store_true", help="skip the steady phase")
    ap.add_argument("--no-worker", action="store_true", help="serve without the worker")
    ap.add_argument("--baseline-src", help="another checkout's src/, run first on the same data")
    ap.add_argument("--src", help="the src/ this code's server runs (default: the installed one)")
    args = ap.parse_args()
    results = {}
    if not args.skip_postgresql:
        name = f"bench_notify_{uuid.uuid4().hex[:8]}"
        admin = make_engine(ADMIN).execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            results["postgresql"] = run("postgresql", ADMIN.rsplit("/", 1)[0] + "/" + name, args)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as d:
            results["sqlite"] = run("sqlite", f"sqlite:///{d}/bench.db", args)
    print()
    print(
        f"{'database':22s} {'ack p50':>8s} {'ack p99':>8s} {'s2d p50':>8s} {'s2d p95':>8s} "
        f"{'peak/s':>7s}"
    )
    for db, by_code in results.items():
        for code, r in by_code.items():
            name = f"{db} ({code})" if len(by_code) > 1 else db
            print(
                f"{name:22s} {r['ack_p50']:7.1f}ms {r['ack_p99']:7.1f}ms {r['s2d_p50']:7.2f}s "
                f"{r['s2d_p95']:7.2f}s {r['peak']:7d}"
            )
    print("goals: ack p99 <= 100 ms; sale to dashboard p95 <= 60 s (aim: seconds)")


if __name__ == "__main__":
    main()
