"""Market data on SQLite and PostgreSQL: harvest from the sandbox over real HTTP, embeddings,
comparables and the score's price position, price-drop alerts."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from superseller.db.schema import (
    embeddings,
    harvest_sources,
    harvested_content,
    listings,
    price_drop_alerts,
)
from superseller.jobs.clock import ManualClock
from superseller.jobs.queue import Queue
from superseller.market import embeddings as emb
from superseller.market import prices, sources
from superseller.scoring.facts import load_facts
from superseller.scoring.score import score_listing
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.inproc import logs, running_worker, wait_status
from tests.support.market import market, put_items
from tests.support.ml import connected_tenant, sandbox, settings_for

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def count(engine, table, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar()


def harvest(engine, reg, clock, tenant="t1"):
    jid = (
        Queue(engine, reg, clock)
        .enqueue("harvest", {"tenantId": tenant, "followUp": False}, tenant_id=tenant)
        .id
    )
    with running_worker(engine, reg, clock=clock):
        done = wait_status(engine, jid, "completed", "failed", timeout=60)
    assert done["status"] == "completed", done["last_error"]
    return done


def contents(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(harvested_content).order_by(harvested_content.c.id)).all()


def test_harvest_twice_is_a_no_op_and_a_disabled_source_is_skipped(engine, tmp_path):
    clock = ManualClock(NOW)
    with sandbox(listings=10) as sb:
        sb.state.frozen_at = clock.now()
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        mk.listing(
            engine, "t1", "MLB1", None, title="Garrafa Térmica Inox 1L", category_id="MLB1010"
        )
        mk.listing(engine, "t1", "MLB2", None, title="Mouse Gamer RGB", category_id="MLB1020")
        mk.listing(
            engine, "t1", "MLB3", None, title="Pausado", category_id="MLB1030", status="paused"
        )
        reg = build_registry(settings)

        first = harvest(engine, reg, clock)
        rows = contents(engine)
        # 2 active listings -> a search (first page: 50) and a trends source (5) each; the
        # paused one has none
        assert count(engine, harvest_sources) == 4
        assert first["result"]["items"] == 2 * 50 and first["result"]["trends"] == 2 * 5
        assert logs(engine, first["id"])[0]["records_processed"] == len(rows) == 110
        assert {r.kind for r in rows} == {"item", "trend"}
        item = next(r for r in rows if r.kind == "item")
        assert item.item_id.startswith("MLB") and item.price > 0 and item.currency == "BRL"
        assert item.seller_id and item.sold_quantity is not None and item.title

        second = harvest(engine, reg, clock)  # same day: nothing new, nothing changed
        assert contents(engine) == rows and second["result"]["items"] == 0
        assert logs(engine, second["id"])[0]["records_processed"] == 0

        # a source the API refuses (another site's category) is reported, the rest harvested
        bad = sources.add(engine, "t1", "trends", "MLA1055", None)
        third = harvest(engine, reg, clock)
        assert third["result"]["sourceErrors"] == [
            {"source": bad["id"], "status": 404, "error": "not_found"}
        ]
        sources.set_enabled(engine, "t1", bad["id"], False)

        trends = next(s for s in sources.list_sources(engine, "t1") if s["kind"] == "trends")
        sources.set_enabled(engine, "t1", trends["id"], False)
        clock.advance(timedelta(days=1))
        sb.state.frozen_at = clock.now()
        harvest(engine, reg, clock)
        next_day = NOW.date() + timedelta(days=1)
        hc = harvested_content.c
        assert count(engine, harvested_content, hc.source_id == trends["id"]) == 5
        assert count(engine, harvested_content, hc.captured_day == next_day) == 2 * 50 + 5
        # a disabled default source stays disabled: it is not re-created
        assert not sources.get(engine, "t1", trends["id"])["enabled"]


def test_sources_refuse_bad_input(engine):
    mk.tenant(engine)
    with pytest.raises(sources.SourceError, match="category"):
        sources.add(engine, "t1", "trends", None, None)
    with pytest.raises(sources.SourceError, match="kind"):
        sources.add(engine, "t1", "rss", "MLB1", None)
    with pytest.raises(sources.SourceError, match="not found"):
        sources.set_enabled(engine, "t1", 999, False)
    made = sources.add(engine, "t1", "search", "MLB1055", "fone  bluetooth")
    assert made["origin"] == "manual" and made["query"] == "fone bluetooth"
    assert sources.add(engine, "t1", "search", "MLB1055", "Fone Bluetooth")["id"] == made["id"]


def test_embeddings_are_recomputed_only_when_text_or_model_change(engine):
    market(engine)
    lid = mk.listing(
        engine, "t1", "MLB1", None, title="Garrafa Térmica Inox", category_id="MLB1010"
    )
    first = emb.generate(engine, "t1")
    assert first == {"embedded": 10, "unchanged": 0, "model": "hashed-ngrams-256@1"}
    with engine.connect() as conn:
        before = conn.execute(select(embeddings).order_by(embeddings.c.id)).all()
    assert emb.generate(engine, "t1")["embedded"] == 0
    with engine.connect() as conn:
        assert conn.execute(select(embeddings).order_by(embeddings.c.id)).all() == before
    with engine.begin() as conn:
        conn.execute(update(listings).where(listings.c.id == lid).values(title="Garrafa Inox"))
    assert emb.generate(engine, "t1") == {
        "embedded": 1,
        "unchanged": 9,
        "model": "hashed-ngrams-256@1",
    }
    v2 = emb.HashedNgrams(version="2")
    assert emb.generate(engine, "t1", v2)["embedded"] == 10
    assert count(engine, embeddings, embeddings.c.model == "hashed-ngrams-256@2") == 10


def test_an_interrupted_embedding_run_keeps_its_stored_chunks(engine, monkeypatch):
    """A slow model's job stopped half-way (time-out, shutdown) loses only the chunk in hand;
    the next run embeds only what is still missing."""
    market(engine)
    mk.listing(engine, "t1", "MLB1", None, title="Garrafa Térmica Inox", category_id="MLB1010")
    monkeypatch.setattr(emb, "EMBED_CHUNK", 3)

    class StopsOnSecondChunk(emb.HashedNgrams):
        calls = 0

        def embed_many(self, texts):
            type(self).calls += 1
            if self.calls == 2:
                raise TimeoutError("job stopped")
            return super().embed_many(texts)

    with pytest.raises(TimeoutError):
        emb.generate(engine, "t1", StopsOnSecondChunk())
    assert count(engine, embeddings) == 3
    assert emb.generate(engine, "t1") == {
        "embedded": 7,
        "unchanged": 3,
        "model": "hashed-ngrams-256@1",
    }


def test_similarity_is_the_exact_cosine_on_every_backend(engine):
    """Both backends are held to the same in-memory reference (so to each other)."""
    market(engine)
    lid = mk.listing(
        engine, "t1", "MLB1", None, title="Garrafa Térmica Inox", category_id="MLB1010"
    )
    emb.generate(engine, "t1")
    got = emb.similar_items(engine, "t1", lid, k=5, threshold=0.0)
    e = emb.default_embedder()
    mine = e.embed("Garrafa Térmica Inox")
    with engine.connect() as conn:
        titles = dict(
            conn.execute(select(harvested_content.c.item_id, harvested_content.c.title)).all()
        )
    ref = sorted(
        ((i, emb.dot(mine, e.embed(t))) for i, t in titles.items() if i != "MLB8000"),
        key=lambda p: (-round(p[1], 6), p[0]),
    )[:5]
    assert [i for i, _ in got] == [i for i, _ in ref]
    assert all(abs(a[1] - b[1]) < 1e-5 for a, b in zip(got, ref, strict=True))
    assert "MLB8000" not in dict(emb.similar_items(engine, "t1", lid, k=50, threshold=0.0))


def price_action(engine, lid):
    [facts] = load_facts(engine, "t1", date(2026, 3, 10), [lid])
    return score_listing(facts)


def test_price_position_in_the_score(engine):
    market(engine, n_items=8, price=100.0)  # comparables at 100, 101, 102: median 101
    high = mk.listing(
        engine, "t1", "MLB1", None, title="Garrafa Térmica Inox", category_id="MLB1010",
        price=Decimal("131.30"),
    )  # fmt: skip
    emb.generate(engine, "t1")
    result = price_action(engine, high)
    [action] = [a for a in result["actions"] if a["criterion"] == "preco"]
    assert "seu preço está 30% acima da mediana de 8 anúncios parecidos" in action["text"]
    cadastro = next(d for d in result["dimensions"] if d["key"] == "cadastro")
    assert "30% acima da mediana de 8 anúncios parecidos" in cadastro["explanation"]
    assert {c["key"]: c["points"] for c in cadastro["criteria"]}["preco"] == 1


def test_two_comparables_give_no_reference(engine):
    market(engine, n_items=2, price=100.0)
    lid = mk.listing(
        engine, "t1", "MLB1", None, title="Garrafa Térmica Inox", category_id="MLB1010",
        price=Decimal("180.00"),
    )  # fmt: skip
    emb.generate(engine, "t1")
    result = price_action(engine, lid)
    assert not [a for a in result["actions"] if a["criterion"] == "preco"]
    cadastro = next(d for d in result["dimensions"] if d["key"] == "cadastro")
    assert "sem referência de preço" in cadastro["explanation"]


def test_a_competitor_price_drop_makes_one_alert(engine):
    src = market(engine, n_items=6, price=100.0)
    lid = mk.listing(
        engine, "t1", "MLB1", None, title="Garrafa Térmica Inox", category_id="MLB1010"
    )
    put_items(engine, src, [("MLB9000", "Garrafa Térmica Inox 1L cor 0", 80.0)], date(2026, 3, 10))
    put_items(
        engine, src, [("MLB9001", "Garrafa Termica Inox 1 Litro cor 1", 98.0)], date(2026, 3, 10)
    )
    emb.generate(engine, "t1")
    assert prices.generate_drops(engine, "t1") == {"drops": 1, "alertsCreated": 1}
    assert prices.generate_drops(engine, "t1") == {"drops": 1, "alertsCreated": 0}
    [alert] = prices.alerts(engine, "t1", lid)
    assert (alert["itemId"], alert["oldPrice"], alert["newPrice"]) == ("MLB9000", 100.0, 80.0)
    assert alert["dropPct"] == pytest.approx(0.2)
    assert count(engine, price_drop_alerts) == 1


def test_harvest_queues_embeddings_then_drops_from_the_sandbox(engine, tmp_path):
    """The daily chain on real HTTP: harvest -> generate_embeddings -> generate_drops; the
    sandbox lowers some competitors' prices from one day to the next."""
    clock = ManualClock(NOW)
    with sandbox(listings=10) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        for k in range(4):
            mk.listing(
                engine, "t1", f"MLB{k}", None, title=f"Garrafa Térmica Premium {k + 1}",
                category_id=f"MLB10{k}0", price=Decimal("100.00"),
            )  # fmt: skip
        reg = build_registry(settings)
        for _day in range(2):
            sb.state.frozen_at = clock.now()
            jid = Queue(engine, reg, clock).enqueue("harvest", {"tenantId": "t1"}).id
            with running_worker(engine, reg, clock=clock):
                done = wait_status(engine, jid, "completed", "failed", timeout=60)
                emb_job = wait_status(engine, done["result"]["embeddingsJobId"], "completed")
                drops = wait_status(engine, emb_job["result"]["dropsJobId"], "completed")
            clock.advance(timedelta(days=1))
    alerts = prices.alerts(engine, "t1")
    assert drops["result"]["alertsCreated"] == len(alerts) > 0
    assert all(a["dropPct"] >= prices.DROP_MIN and a["newPrice"] < a["oldPrice"] for a in alerts)
    assert {a["capturedDay"] for a in alerts} == {str(NOW.date() + timedelta(days=1))}
