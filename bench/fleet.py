"""A fleet's nightly sync: many sandbox sellers of mixed sizes, 1 and 4 worker processes,
one app-wide Mercado Livre limit (the sandbox answers 429 beyond it, as ML does).

Per run: the makespan of every seller's sync against the app-wide bound (the requests the
syncs needed, i.e. the sandbox's non-429 answers, at the app's rate: no fleet can be faster),
the quota 429s, and the p95 of each small seller's time-to-fresh (fan-out enqueued -> its
metrics rebuild done). Real `superseller worker` processes on PostgreSQL, the sandbox in its
own process.

    uv run python bench/fleet.py [--sellers 200] [--big 3] [--big-size 10000] [--rate 100]
        [--tail 50] [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--workers 1,4]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from sandbox_proc import start_sandbox

from superseller.config import Settings
from superseller.db import migrate
from superseller.db.engine import make_engine
from superseller.db.schema import jobs
from superseller.jobs.queue import Queue
from superseller.mercadolivre.connect import connect_sandbox
from superseller.tenants import create_tenant
from superseller.wiring import build_registry

SMALL_LIMIT = 1000  # sellers below this many listings are "small"


def sizes(n: int, big: int, big_size: int, tail: int = 50, seed: int = 7) -> list[int]:
    """A long tail: most sellers tail..10*tail listings (log-uniform; 50-500 by default),
    `big` of them big_size+."""
    rng = random.Random(seed)
    out = [int(tail * 10 ** rng.uniform(0, 1)) for _ in range(n - big)]
    out += [big_size + 500 * i for i in range(big)]
    rng.shuffle(out)
    return out


def worker(db_url: str, sb_url: str, data_dir: Path, rate: float) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "DATABASE_URL": db_url,
        "DATA_DIR": str(data_dir),
        "ML_API_URL": sb_url,
        "ML_CLIENT_ID": "sandbox-app",
        "ML_CLIENT_SECRET": "sandbox-secret",
        "ML_REQUESTS_PER_S": str(rate),
        "ML_CONCURRENCY": "8",
        "JOB_POLL_S": "0.2",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "superseller.cli", "worker", "--concurrency", "4"],
        cwd=data_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(data_dir / f"worker-{time.monotonic_ns()}.log", "w"),  # noqa: SIM115
    )


def run(admin_url: str, n_workers: int, shape: list[int], rate: float) -> dict:
    name = f"bench_fleet_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db_url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    sandbox, sb_url = start_sandbox(max(shape), history_days=3, orders_per_day=2)
    try:
        with tempfile.TemporaryDirectory() as d:
            data_dir = Path(d)
            engine = make_engine(db_url)
            migrate.upgrade(engine)
            settings = Settings(
                data_dir=data_dir,
                database_url=db_url,
                ml_api_url=sb_url,
                ml_auth_url=f"{sb_url}/authorization",
                ml_client_id="sandbox-app",
                ml_client_secret="sandbox-secret",
                ml_redirect_uri="http://localhost/cb",
            )
            users = {f"s{i:03d}": 100_000 + i for i in range(len(shape))}
            httpx.post(
                f"{sb_url}/_sandbox/seller-listings",
                json={str(u): n for u, n in zip(users.values(), shape, strict=True)},
            )
            now = datetime.now(UTC)
            for tid, user in users.items():
                create_tenant(engine, f"Loja {tid}", tenant_id=tid)
                httpx.post(f"{sb_url}/_sandbox/login-as", json={"user_id": user})
                connect_sandbox(engine, settings, tid, now)
            httpx.post(f"{sb_url}/_sandbox/faults", json={"requests_per_s": rate})
            began_wall = time.time()
            began = time.monotonic()
            Queue(engine, build_registry(settings)).enqueue(
                "sync_mercadolivre", {"tenantId": "all", "daysBack": 1}
            )
            procs = [worker(db_url, sb_url, data_dir, rate) for _ in range(n_workers)]
            try:
                synced_at = None
                while True:
                    with engine.connect() as conn:
                        open_syncs, open_all = conn.execute(
                            select(
                                func.count().filter(jobs.c.type == "sync_mercadolivre"),
                                func.count(),
                            ).where(jobs.c.status.in_(["pending", "running", "retrying"]))
                        ).one()
                        n_syncs = conn.execute(
                            select(func.count()).where(
                                jobs.c.type == "sync_mercadolivre", jobs.c.tenant_id.is_not(None)
                            )
                        ).scalar()
                    if synced_at is None and n_syncs == len(shape) and open_syncs == 0:
                        synced_at = time.monotonic() - began
                    if synced_at is not None and open_all == 0:
                        break
                    time.sleep(0.5)
                all_done = time.monotonic() - began
            finally:
                for p in procs:
                    p.terminate()
                for p in procs:
                    p.wait(60)
            with engine.connect() as conn:
                failed = conn.execute(
                    select(func.count()).where(jobs.c.status != "completed")
                ).scalar()
                fresh = dict(
                    conn.execute(
                        select(jobs.c.tenant_id, func.max(jobs.c.finished_at))
                        .where(jobs.c.type == "metrics_aggregation")
                        .group_by(jobs.c.tenant_id)
                    ).all()
                )
            seen = httpx.get(f"{sb_url}/_sandbox/request-times").json()
            engine.dispose()
        sent = [t for t in seen["requests"] if t >= began_wall]
        limited = [t for t in seen["limited"] if t >= began_wall]
        bound = (len(sent) - len(limited)) / rate
        small = [
            fresh[tid].timestamp() - began_wall
            for tid, n in zip(users, shape, strict=True)
            if n < SMALL_LIMIT and tid in fresh
        ]
        return {
            "workers": n_workers,
            "requests": len(sent),
            "quota429": len(limited),
            "bound_s": bound,
            "makespan_s": synced_at,
            "ratio": synced_at / bound,
            "all_done_s": all_done,
            "p95_small_fresh_s": statistics.quantiles(small, n=20)[18] if len(small) > 1 else None,
            "not_completed": failed,
        }
    finally:
        sandbox.terminate()
        sandbox.wait(30)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--sellers", type=int, default=200)
    ap.add_argument("--big", type=int, default=3)
    ap.add_argument("--big-size", type=int, default=10_000)
    ap.add_argument("--tail", type=int, default=50, help="smallest of the long tail")
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--workers", default="1,4")
    args = ap.parse_args()
    shape = sizes(args.sellers, args.big, args.big_size, args.tail)
    print(
        f"{args.sellers} sellers ({sum(shape):,} listings; {args.big} of {args.big_size:,}+, "
        f"the rest {min(shape)}-{max(n for n in shape if n < SMALL_LIMIT)}), "
        f"app limit {args.rate:g} req/s"
    )
    for n in (int(x) for x in args.workers.split(",")):
        r = run(args.pg, n, shape, args.rate)
        p95 = r["p95_small_fresh_s"]
        print(
            f"{r['workers']} worker process(es): makespan {r['makespan_s']:.1f} s vs bound "
            f"{r['bound_s']:.1f} s = {r['ratio']:.2f}x; {r['requests']:,} requests, "
            f"{r['quota429']} quota 429s; p95 small-seller time-to-fresh "
            f"{p95 if p95 is None else round(p95, 1)} s; everything (rebuilds too) "
            f"{r['all_done_s']:.1f} s; jobs not completed: {r['not_completed']}"
        )


if __name__ == "__main__":
    main()
