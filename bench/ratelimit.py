"""Overhead of the app-wide Mercado Livre rate limiter (mercadolivre/ratelimit.py).

For each backend: the time of one database round trip (`take`, one transaction that
refills the bucket row and takes a batch of tokens), and the time `acquire()` adds per
request when the limit never makes anyone wait (a huge rate, so only the bookkeeping is
measured), at the batch size of a 20 req/s app (2 tokens per round trip) and of a
100+ req/s app (10 per round trip). Compare with a Mercado Livre request (~100-300 ms).

    uv run python bench/ratelimit.py [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from superseller.db import migrate
from superseller.db.engine import make_engine
from superseller.mercadolivre import ratelimit
from superseller.mercadolivre.ratelimit import SharedBucket

N = 2000


def per_take_ms(engine) -> float:
    began = time.perf_counter()
    for _ in range(N):
        ratelimit.take(engine, "bench-take", 1e9, 1)
    return (time.perf_counter() - began) / N * 1000


def per_acquire_ms(engine, batch: int) -> float:
    async def run() -> float:
        bucket = SharedBucket(engine, f"bench-{batch}", 1e9)
        bucket.batch = batch
        began = time.perf_counter()
        for _ in range(N):
            await bucket.acquire()
        return (time.perf_counter() - began) / N * 1000

    return asyncio.run(run())


def report(name: str, engine) -> None:
    migrate.upgrade(engine)
    take = per_take_ms(engine)
    a2 = per_acquire_ms(engine, 2)
    a10 = per_acquire_ms(engine, 10)
    print(
        f"{name:10s}  round trip {take:6.3f} ms   per request: batch 2 {a2:6.3f} ms, "
        f"batch 10 {a10:6.3f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report("sqlite", make_engine(f"sqlite:///{tmp}/bench.db"))
    name = f"ss_bench_rl_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        args.pg.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # no PostgreSQL here: SQLite only
        print(f"postgresql  skipped ({type(exc).__name__})")
        return
    try:
        eng = make_engine(args.pg.rsplit("/", 1)[0] + "/" + name)
        report("postgresql", eng)
        eng.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name}"))


if __name__ == "__main__":
    main()
