"""Buyer questions (sandbox over real HTTP, optional model wording), the market API and CLI,
on SQLite and PostgreSQL."""

from datetime import UTC, date, datetime

import httpx
import pytest
from sqlalchemy import func, select

from superseller.config import Settings
from superseller.db.schema import buyer_questions, question_drafts
from superseller.jobs.clock import ManualClock
from superseller.jobs.queue import Queue
from superseller.market import embeddings as emb
from superseller.market import prices, questions, sources
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import serving
from tests.support.cli import cli
from tests.support.inproc import running_worker, wait_status
from tests.support.market import market, put_items
from tests.support.ml import connected_tenant, sandbox, settings_for
from tests.support.model import model_stub

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


def sandbox_listings(engine, sb, n):
    from superseller.sandbox import data

    for i in range(n):
        item = data.item(sb.state.spec, i)
        mk.listing(
            engine, "t1", item["id"], None, title=item["title"],
            category_id=item["category_id"], available_quantity=item["available_quantity"],
        )  # fmt: skip


def test_questions_are_grouped_and_drafted_without_a_model(engine, tmp_path):
    clock = ManualClock(NOW)
    with sandbox(listings=40) as sb:
        sb.state.frozen_at = clock.now()
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        sandbox_listings(engine, sb, 40)
        reg = build_registry(settings)
        jid = Queue(engine, reg, clock).enqueue("generate_questions", {"tenantId": "t1"}).id
        with running_worker(engine, reg, clock=clock):
            done = wait_status(engine, jid, "completed", "failed", timeout=60)
        assert done["status"] == "completed", done["last_error"]
        fetched = httpx.get(f"{sb.url}/questions/search", params={"seller_id": 123456789})
        total = fetched.json()["total"]
        r = done["result"]
        assert r["fetched"] == r["new"] == total > 50  # paged past the first 50
        with engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(buyer_questions)).scalar()
            rows = conn.execute(select(question_drafts)).all()
        assert n == total and r["drafts"] == len(rows) > 0
        for d in rows:  # every draft stands for a recurring group of one listing's questions
            assert len(d.question_ids) >= 2 and d.wording == "template"
            assert questions.topic_of(d.sample) in (d.topic, None)
        estoque = [d for d in rows if d.topic == "estoque"]
        assert estoque and all(d.answer.startswith("Olá!") for d in estoque)
        # the job again: same drafts, no question stored twice
        with running_worker(engine, reg, clock=clock):
            jid = Queue(engine, reg, clock).enqueue("generate_questions", {"tenantId": "t1"}).id
            again = wait_status(engine, jid, "completed", "failed", timeout=60)
        assert again["result"]["new"] == 0 and again["result"]["drafts"] == len(rows)


def test_model_wording_with_an_invented_number_is_rejected(engine, tmp_path):
    mk.tenant(engine)
    lid = mk.listing(engine, "t1", "MLB1", None, title="Mouse Gamer", available_quantity=7)
    from superseller.market.questions import save_questions

    save_questions(
        engine, "t1",
        [{"id": 1, "item_id": "MLB1", "text": "Tem em estoque?"},
         {"id": 2, "item_id": "MLB1", "text": "Ainda tem disponível?"}],
        ManualClock(NOW),
    )  # fmt: skip
    invented = "Olá! Temos 12 unidades prontas.\nEntrega em 2 dias."
    with model_stub(invented) as (url, calls):
        s = Settings(data_dir=tmp_path, openai_api_key="sk-test", openai_base_url=url)
        questions.build_drafts(engine, "t1", s)
    assert len(calls) == 1
    [d] = questions.drafts(engine, "t1", lid)
    assert d["wording"] == "template" and "7 unidades" in d["answer"]
    good = "Olá! Sim, há 7 unidades de Mouse Gamer à pronta entrega.\nEnviamos após o pagamento."
    with model_stub(good) as (url, _):
        s = Settings(data_dir=tmp_path, openai_api_key="sk-test", openai_base_url=url)
        questions.build_drafts(engine, "t1", s)
    [d] = questions.drafts(engine, "t1", lid)
    assert d["wording"] == s.openai_model and d["answer"].startswith("Olá! Sim, há 7")
    assert d["posted"] is False


@pytest.fixture
def api(engine, tmp_path):
    create_user(engine, "ops@superseller.dev", PASSWORD, "admin")
    settings = Settings(data_dir=tmp_path)
    with serving(settings, engine, build_registry(settings)) as url:
        with httpx.Client(base_url=url, timeout=30, headers={"Origin": url}) as c:
            login = c.post(
                "/api/v1/auth/login", json={"email": "ops@superseller.dev", "password": PASSWORD}
            )
            assert login.status_code == 200
            yield c


def test_admin_api_adds_and_disables_sources_and_lists_price_drops(engine, api):
    src = market(engine, n_items=6, price=100.0)
    lid = mk.listing(
        engine, "t1", "MLB1", None, title="Garrafa Térmica Inox", category_id="MLB1010"
    )
    made = api.post(
        "/api/admin/harvest-sources",
        json={"tenantId": "t1", "kind": "trends", "categoryId": "MLB1010"},
    )
    assert made.status_code == 201 and made.json()["enabled"] is True
    off = api.patch(
        f"/api/admin/harvest-sources/{made.json()['id']}",
        params={"tenantId": "t1"},
        json={"enabled": False},
    )
    assert off.status_code == 200 and off.json()["enabled"] is False
    listed = api.get("/api/admin/harvest-sources", params={"tenantId": "t1"}).json()["sources"]
    assert {(s["kind"], s["enabled"]) for s in listed} == {("search", True), ("trends", False)}
    for bad, status, code in (
        ({"tenantId": "t1", "kind": "trends"}, 422, "invalid_source"),
        ({"tenantId": "t1", "kind": "rss", "categoryId": "MLB1"}, 422, None),
        ({"tenantId": "nope", "kind": "trends", "categoryId": "MLB1"}, 404, "tenant_not_found"),
    ):
        r = api.post("/api/admin/harvest-sources", json=bad)
        assert r.status_code == status and "error" in r.json(), r.text
        assert code is None or r.json()["error"]["code"] == code
    missing = api.patch(
        "/api/admin/harvest-sources/999", params={"tenantId": "t1"}, json={"enabled": False}
    )
    assert missing.status_code == 404

    put_items(engine, src, [("MLB9000", "Garrafa Térmica Inox 1L cor 0", 80.0)], date(2026, 3, 10))
    emb.generate(engine, "t1")
    prices.generate_drops(engine, "t1")
    drops = api.get("/api/v1/price-drops", params={"tenantId": "t1"}).json()
    assert drops["count"] == 1 and drops["priceDrops"][0]["listingId"] == lid
    assert drops["priceDrops"][0]["dropPct"] == pytest.approx(0.2)


def test_cli_sources(db_url, engine):
    mk.tenant(engine)
    out = cli(db_url, "market", "sources", "add", "--tenant", "t1", "--kind", "search",
              "--category", "MLB1055", "--query", "fone bluetooth", check=True)  # fmt: skip
    assert "on" in out.stdout
    [s] = sources.list_sources(engine, "t1")
    cli(db_url, "market", "sources", "disable", str(s["id"]), "--tenant", "t1", check=True)
    assert not sources.get(engine, "t1", s["id"])["enabled"]
    listed = cli(db_url, "market", "sources", "list", "--tenant", "t1", "--json", check=True)
    assert '"enabled": false' in listed.stdout
    bad = cli(db_url, "market", "sources", "add", "--tenant", "t1", "--kind", "trends")
    assert bad.returncode == 2 and "trends source needs a category" in bad.stderr
    assert "Traceback" not in bad.stderr
    gone = cli(db_url, "market", "sources", "disable", "999", "--tenant", "t1")
    assert gone.returncode == 1 and "not found" in gone.stderr
    for job_type in ("harvest", "generate_embeddings", "generate_drops", "generate_questions"):
        queued = cli(db_url, "jobs", "enqueue", job_type, "--payload", '{"tenantId": "t1"}')
        assert queued.returncode == 0 and "enqueued" in queued.stdout, queued.stderr
    nobody = cli(db_url, "market", "sources", "list", "--tenant", "nope")
    assert nobody.returncode == 1 and "tenant 'nope' not found" in nobody.stderr


def test_pages_show_price_drops_and_question_drafts(engine, api, tmp_path):
    src = market(engine, n_items=6, price=100.0)
    lid = mk.listing(
        engine, "t1", "MLB1", None, title="Garrafa Térmica Inox", category_id="MLB1010",
        available_quantity=4,
    )  # fmt: skip
    today = datetime.now(UTC).date()  # the pages show the last 7 days up to today
    put_items(engine, src, [("MLB9000", "Garrafa Térmica Inox 1L cor 0", 80.0)], today)
    emb.generate(engine, "t1")
    prices.generate_drops(engine, "t1")
    questions.save_questions(
        engine, "t1",
        [{"id": 1, "item_id": "MLB1", "text": "Tem em estoque?"},
         {"id": 2, "item_id": "MLB1", "text": "Ainda tem disponível?"}],
        ManualClock(NOW),
    )  # fmt: skip
    questions.build_drafts(engine, "t1", Settings(data_dir=tmp_path))
    overview = api.get("/", params={"loja": "t1"})
    assert overview.status_code == 200
    assert "1 concorrente baixou o preço" in overview.text and "1 anúncio afetado" in overview.text
    page = api.get("/anuncios", params={"loja": "t1", "dias": 30})
    assert page.status_code == 200
    row = page.text[page.text.index(f'data-id="{lid}"') :]
    assert "1 concorrente baixou o preço" in row
    assert "R$\u00a0100,00 → R$\u00a080,00 (20% a menos" in row  # R$ never wraps alone
    assert "Resposta: Olá! Sim, temos 4 unidades de Garrafa Térmica Inox" in row
    assert "rascunhos, não enviados" in row
