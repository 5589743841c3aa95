"""Embeddings: titles embedded per second, and the similarity query's latency.

A tenant with L listings and I harvested competitor items spread over C categories (the
sandbox's title vocabulary) is embedded with the default embedder (`hashed-ngrams-256`),
then Q listings ask for their comparables one by one (`similar_items`: an exact scan of the
listing's category, numpy), and all listings at once (`comparables`, what the score and the
drops read), on SQLite and on PostgreSQL. pgvector is not used.

    uv run python bench/embeddings.py [--listings 10000 --items 50000 --queries 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import insert, select  # noqa: E402

from superseller.db import migrate  # noqa: E402
from superseller.db.engine import make_engine  # noqa: E402
from superseller.db.schema import harvest_sources, harvested_content, listings  # noqa: E402
from superseller.market import embeddings as emb  # noqa: E402
from superseller.sandbox.data import _ADJ, _NOUNS, _h  # noqa: E402
from superseller.tenants import create_tenant  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
NOW = datetime(2026, 3, 10, tzinfo=UTC)


def title(i: int, salt: str) -> str:
    return (
        f"{_NOUNS[_h(salt, 'n', i) % len(_NOUNS)]} {_ADJ[_h(salt, 'a', i) % len(_ADJ)]} "
        f"{_ADJ[_h(salt, 'b', i) % len(_ADJ)]} {i % 97}"
    )


def fill(engine, n_listings: int, n_items: int, categories: int) -> None:
    create_tenant(engine, "Bench", tenant_id="b1")
    with engine.begin() as conn:
        for i in range(0, n_listings, 5000):
            conn.execute(
                insert(listings),
                [
                    dict(
                        tenant_id="b1",
                        external_id=f"MLB{k}",
                        title=title(k, "l"),
                        status="active",
                        category_id=f"MLB{1000 + k % categories}",
                        created_at=NOW,
                        updated_at=NOW,
                    )  # fmt: skip
                    for k in range(i, min(n_listings, i + 5000))
                ],
            )
        sid = conn.execute(
            insert(harvest_sources)
            .values(tenant_id="b1", kind="search", key="bench", created_at=NOW, updated_at=NOW)
            .returning(harvest_sources.c.id)
        ).scalar()
        for i in range(0, n_items, 5000):
            conn.execute(
                insert(harvested_content),
                [
                    dict(
                        tenant_id="b1",
                        source_id=sid,
                        kind="item",
                        item_id=f"MLB9{k}",
                        title=title(k, "i"),
                        category_id=f"MLB{1000 + k % categories}",
                        price=100,
                        captured_at=NOW,
                        captured_day=date(2026, 3, 10),
                    )  # fmt: skip
                    for k in range(i, min(n_items, i + 5000))
                ],
            )


def run(engine, label: str, args) -> dict:
    fill(engine, args.listings, args.items, args.categories)
    t0 = time.perf_counter()
    out = emb.generate(engine, "b1")
    took = time.perf_counter() - t0
    with engine.connect() as conn:
        ids = list(conn.execute(select(listings.c.id).order_by(listings.c.id)).scalars())
    step = max(1, len(ids) // args.queries)
    lat = []
    for lid in ids[::step][: args.queries]:
        t = time.perf_counter()
        emb.similar_items(engine, "b1", lid, k=30, threshold=0.5)
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    p95 = lat[int(0.95 * (len(lat) - 1))]
    t = time.perf_counter()
    emb.comparables(engine, "b1", k=30, threshold=0.5)  # every listing: what scoring reads
    everyone = time.perf_counter() - t
    row = {
        "backend": label,
        "embedded": out["embedded"],
        "embed+store s": round(took, 1),
        "titles/s (embed+store)": round(out["embedded"] / took),
        "query p50 ms": round(statistics.median(lat), 1),
        "query p95 ms": round(p95, 1),
        "all listings' comparables s": round(everyone, 1),
    }
    print(row, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--listings", type=int, default=10_000)
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--categories", type=int, default=40)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()

    e = emb.default_embedder()
    sample = [title(i, "x") for i in range(20_000)]
    t = time.perf_counter()
    for s in sample:
        e.embed(s)
    print(
        {
            "embedder": e.model,
            "titles/s (embed only)": round(len(sample) / (time.perf_counter() - t)),
        }
    )

    with tempfile.TemporaryDirectory() as d:
        eng = make_engine(f"sqlite:///{d}/bench.db")
        migrate.upgrade(eng)
        run(eng, "sqlite", args)
        eng.dispose()

    admin = make_engine(ADMIN).execution_options(isolation_level="AUTOCOMMIT")
    name = f"bench_emb_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        eng = make_engine(ADMIN.rsplit("/", 1)[0] + f"/{name}")
        migrate.upgrade(eng)
        run(eng, "postgresql", args)
        eng.dispose()
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
