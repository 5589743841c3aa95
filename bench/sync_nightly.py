"""A large seller's nightly sync (issue 22's critical path): a 10,000-listing sandbox seller
in its own process (no latency, no rate limit: the simulation's settings, ML_CONCURRENCY 8),
imported once (30 days back), then each following night's sync measured: requests,
visit-day rows written, listings fetched over the whole window, wall time, and the CPU
seconds of the sync's process and of the sandbox's (the simulation's sandbox hub shares
the driver's process).

    uv run python bench/sync_nightly.py [--listings 10000] [--nights 2] [--database URL]

Each night moves the sandbox and the worker's clock one day ahead. The script runs
against any checkout (it reads the result fields it knows), so the code before a change
can be measured on the same machine minutes apart.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from sandbox_proc import start_sandbox

from superseller.config import Settings
from superseller.db import migrate
from superseller.db.engine import make_engine
from superseller.jobs.admin import JobAdmin
from superseller.jobs.queue import Queue
from superseller.jobs.worker import Worker, WorkerOptions
from superseller.mercadolivre.connect import connect_sandbox
from superseller.tenants import create_tenant
from superseller.wiring import build_registry


class ShiftedClock:
    """Real time, moved ahead by whole days (the sandbox is moved alike)."""

    def __init__(self) -> None:
        self.shift = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.shift


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--listings", type=int, default=10_000)
    ap.add_argument("--nights", type=int, default=2)
    ap.add_argument("--database", default=None, help="default: a temporary SQLite file")
    args = ap.parse_args()
    proc, url = start_sandbox(args.listings, 45, 60)
    try:
        with tempfile.TemporaryDirectory() as d:
            settings = Settings(
                data_dir=Path(d),
                database_url=args.database or f"sqlite:///{d}/b.db",
                ml_api_url=url,
                ml_auth_url=f"{url}/authorization",
                ml_client_id="sandbox-app",
                ml_client_secret="sandbox-secret",
                ml_redirect_uri="http://localhost/cb",
                ml_requests_per_s=0,
                ml_concurrency=8,
            )
            eng = make_engine(settings.resolved_database_url())
            migrate.upgrade(eng)
            create_tenant(eng, "Bench", tenant_id="t1")
            connect_sandbox(eng, settings, "t1", datetime.now(UTC))
            reg = build_registry(settings)
            clock = ShiftedClock()
            print(f"seller: {args.listings} listings; database: {eng.dialect.name}")
            print(
                f"{'run':12s} {'requests':>9s} {'visit rows':>11s} {'full window':>12s} "
                f"{'wall s':>8s} {'sync CPU s':>11s} {'sandbox CPU s':>14s}"
            )
            for night in range(args.nights + 1):
                if night:
                    clock.shift += timedelta(days=1)
                    httpx.post(f"{url}/_sandbox/advance", json={"seconds": 86400})
                jid = (
                    Queue(eng, reg, clock)
                    .enqueue(
                        "sync_mercadolivre",
                        {"tenantId": "t1", "daysBack": 30},
                        tenant_id="t1",
                        queue="bench",
                    )
                    .id
                )
                cpu0, sb0, t = time.process_time(), cpu_s(proc.pid), time.perf_counter()
                Worker(
                    eng,
                    reg,
                    WorkerOptions(concurrency=1, queues=["bench"], burst=True, listen=False),
                    clock=clock,
                ).run()
                wall = time.perf_counter() - t
                cpu, sb = time.process_time() - cpu0, cpu_s(proc.pid) - sb0
                job = JobAdmin(eng).get(jid)
                assert job["status"] == "completed", job["last_error"]
                r = job["result"]
                full = r.get("visitsFullWindow", r["listings"])
                print(
                    f"{'import' if night == 0 else f'night {night}':12s} {r['requests']:9d} "
                    f"{r['visitDays']:11d} {full:12d} {wall:8.1f} {cpu:11.1f} {sb:14.1f}",
                    flush=True,
                )
            eng.dispose()
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
