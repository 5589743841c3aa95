"""Title embeddings and the exact similarity scan.

The default embedder is `hashed-ngrams`: word unigrams and character 3-grams of the
accent-folded title, hashed (signed) into 256 dimensions and scaled to unit length. It is
deterministic, needs no download and no native library, embeds thousands of titles
per second, and finds near-identical product titles well; it knows no synonyms.
`EMBEDDING_MODEL=all-MiniLM-L6-v2` selects a sentence model instead (market/minilm.py: the
`embeddings` extra, run with numpy, no torch). Each row stores its model name@version and the
hash of the text it embedded: `generate_embeddings` recomputes only rows whose text or model
changed, and similarity compares only vectors of the same model.

Similarity is the dot product of unit vectors (cosine), computed exactly (numpy, float64) over
one category's vectors read from the database, the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import unicodedata
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine, func, select, update

from superseller.db.schema import embeddings, harvested_content, listings
from superseller.jobs.clock import Clock, SystemClock
from superseller.market.harvest import insert_ignore

DIM = 256
EMBED_CHUNK = 1000  # titles embedded, then stored, at a time


@dataclass(frozen=True)
class HashedNgrams:
    dim: int = DIM
    name: str = "hashed-ngrams-256"
    version: str = "1"

    @property
    def model(self) -> str:
        return f"{self.name}@{self.version}"

    def embed(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        words = re.findall(r"\w+", fold(text))
        feats = [(w, 1.0) for w in words]
        for w in words:
            padded = f" {w} "
            feats += [(padded[i : i + 3], 0.5) for i in range(len(padded) - 2)]
        for feat, weight in feats:
            h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "big")
            vec[h % self.dim] += weight if (h >> 63) & 1 else -weight
        norm = math.sqrt(sum(x * x for x in vec))
        return [x / norm for x in vec] if norm else vec

    def embed_many(self, texts: list[str]) -> list[list[float]]:
        return [self.embed(t) for t in texts]


def fold(text: str) -> str:
    """Lower case, accents removed: 'Térmica' and 'termica' are the same word."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def default_embedder() -> HashedNgrams:
    return HashedNgrams()


EMBEDDING_MODELS = ("hashed-ngrams", "all-MiniLM-L6-v2")


def embedder_for(name: str):
    """The embedder an `EMBEDDING_MODEL` value names; minilm.ModelMissing (a clear message)
    when the sentence model's package is not installed."""
    if name == "all-MiniLM-L6-v2":
        from superseller.market import minilm  # noqa: PLC0415 (reads 90 MB: only when chosen)

        return minilm.load()
    if name == "hashed-ngrams":
        return default_embedder()
    raise ValueError(f"unknown embedding model {name!r}: one of {', '.join(EMBEDDING_MODELS)}")


def pack(vec: list[float]) -> bytes:
    return struct.pack(f"<{len(vec)}f", *vec)


def unpack(blob: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(blob) // 4}f", blob))


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _subjects(engine: Engine, tenant_id: str) -> list[tuple[str, str, str, str | None]]:
    """(subject, subject_id, title, category) for listings and harvested competitor items
    (each item's latest title)."""
    hc = harvested_content
    latest = (
        select(hc.c.item_id, func.max(hc.c.id).label("id"))
        .where(hc.c.tenant_id == tenant_id, hc.c.kind == "item")
        .group_by(hc.c.item_id)
        .subquery()
    )
    with engine.connect() as conn:
        own = conn.execute(
            select(listings.c.id, listings.c.title, listings.c.category_id).where(
                listings.c.tenant_id == tenant_id
            )
        ).all()
        items = conn.execute(
            select(hc.c.item_id, hc.c.title, hc.c.category_id).join(latest, latest.c.id == hc.c.id)
        ).all()
    return [("listing", str(r.id), r.title, r.category_id) for r in own] + [
        ("item", r.item_id, r.title, r.category_id) for r in items
    ]


def generate(engine: Engine, tenant_id: str, embedder=None, clock: Clock | None = None) -> dict:
    """Embed what is new or changed; returns counts."""
    embedder = embedder or default_embedder()
    now = (clock or SystemClock()).now()
    with engine.connect() as conn:
        have = {
            (r.subject, r.subject_id): (r.id, r.text_hash, r.model, r.category_id)
            for r in conn.execute(
                select(
                    embeddings.c.id,
                    embeddings.c.subject,
                    embeddings.c.subject_id,
                    embeddings.c.text_hash,
                    embeddings.c.model,
                    embeddings.c.category_id,
                ).where(embeddings.c.tenant_id == tenant_id)
            )
        }
    recategorized, unchanged, todo = [], 0, []
    for subject, sid, title, category in _subjects(engine, tenant_id):
        th = text_hash(title)
        old = have.get((subject, sid))
        if old and old[1] == th and old[2] == embedder.model:
            if old[3] != category:
                recategorized.append({"id": old[0], "category_id": category})
            else:
                unchanged += 1
            continue
        todo.append((subject, sid, title, category, th, old))
    _write(engine, recategorized, [])
    # Stored chunk by chunk: a sentence model takes minutes for thousands of titles, and a job
    # stopped (time-out, shutdown) keeps what it embedded, which the next run then skips.
    for i in range(0, len(todo), EMBED_CHUNK):
        chunk = todo[i : i + EMBED_CHUNK]
        new, changed = [], []
        vectors = embedder.embed_many([t[2] for t in chunk])
        for (subject, sid, _title, category, th, old), vec in zip(chunk, vectors, strict=True):
            row = dict(
                category_id=category,
                text_hash=th,
                model=embedder.model,
                dim=len(vec),
                vector=pack(vec),
                updated_at=now,
            )
            if old:
                changed.append({"id": old[0], **row})
            else:
                new.append(dict(tenant_id=tenant_id, subject=subject, subject_id=sid, **row))
        _write(engine, changed, new)
    return {"embedded": len(todo), "unchanged": unchanged, "model": embedder.model}


def _write(engine: Engine, changed: list[dict], new: list[dict]) -> None:
    if new:
        insert_ignore(engine, embeddings, new, ["tenant_id", "subject", "subject_id"])
    if changed:
        with engine.begin() as conn:
            for row in changed:
                values = {k: v for k, v in row.items() if k != "id"}
                conn.execute(update(embeddings).where(embeddings.c.id == row["id"]).values(values))


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _matrix(blobs: list[bytes], dim: int) -> np.ndarray:
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dim).astype(np.float64)


def similar_items(
    engine: Engine,
    tenant_id: str,
    listing_id: int,
    k: int,
    threshold: float,
) -> list[tuple[str, float]]:
    """The k competitor items most similar to a listing, in its category, with cosine
    similarity >= threshold: [(item_id, similarity)], best first (ties by item id)."""
    return comparables(engine, tenant_id, k, threshold, [listing_id]).get(listing_id, [])


def comparables(
    engine: Engine,
    tenant_id: str,
    k: int,
    threshold: float,
    listing_ids: list[int] | None = None,
) -> dict[int, list[tuple[str, float]]]:
    """similar_items for many listings: each category's item vectors are read once."""
    e = embeddings
    q = select(e.c.subject_id, e.c.vector, e.c.category_id, e.c.model).where(
        e.c.tenant_id == tenant_id, e.c.subject == "listing", e.c.category_id.is_not(None)
    )
    if listing_ids is not None:
        q = q.where(e.c.subject_id.in_([str(i) for i in listing_ids]))
    by_category: dict[tuple[str, str], list[tuple[int, bytes]]] = {}
    with engine.connect() as conn:
        for r in conn.execute(q):
            by_category.setdefault((r.category_id, r.model), []).append(
                (int(r.subject_id), r.vector)
            )
        out: dict[int, list[tuple[str, float]]] = {}
        for (category, model), mine in by_category.items():
            rows = conn.execute(
                select(e.c.subject_id, e.c.vector).where(
                    e.c.tenant_id == tenant_id,
                    e.c.subject == "item",
                    e.c.category_id == category,
                    e.c.model == model,
                    e.c.dim == len(mine[0][1]) // 4,
                )
            ).all()
            if not rows:
                out.update({lid: [] for lid, _ in mine})
                continue
            dim = len(mine[0][1]) // 4
            items = [r.subject_id for r in rows]
            sims = _matrix([b for _, b in mine], dim) @ _matrix([r.vector for r in rows], dim).T
            for (lid, _), row in zip(mine, sims, strict=True):
                hits = np.nonzero(row >= threshold)[0]
                ranked = sorted(((items[h], float(row[h])) for h in hits),
                                key=lambda p: (-round(p[1], 6), p[0]))  # fmt: skip
                out[lid] = ranked[:k]
    return out
