"""The listing score: golden cases per dimension, the media verdict, weighting without
data, action ordering, the optional model wording, and a score after a sandbox sync."""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from superseller.config import Settings
from superseller.db.schema import listings, score_texts
from superseller.metrics.rebuild import rebuild_daily_metrics
from superseller.scoring.criteria import ListingFacts
from superseller.scoring.facts import load_facts
from superseller.scoring.jobs import score_tenant
from superseller.scoring.media import media_verdict
from superseller.scoring.score import score_listing
from superseller.scoring.wording import deterministic_text, explanation
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import serving
from tests.support.inproc import running_worker, wait_status
from tests.support.ml import connected_tenant, run_sync, sandbox, settings_for
from tests.support.model import model_stub

PERFECT = ListingFacts(
    listing_id=1,
    external_id="MLB1",
    title="Furadeira de Impacto Profissional 750W com Maleta",
    attributes_count=12,
    listing_type="gold_pro",
    price=299.9,
    media=media_verdict(True, None, 9),
    status="active",
    stock=20,
    visits_30d=400,
    orders_30d=12,
    median_visits=200.0,
    median_conversion=0.02,
)


def dims(result):
    return {d["key"]: d for d in result["dimensions"]}


def test_a_complete_listing_scores_100():
    r = score_listing(PERFECT)
    assert (r["score"], r["grade"], r["actions"]) == (100, "Excelente", [])
    assert {k: (d["points"], d["maxPoints"]) for k, d in dims(r).items()} == {
        "cadastro": (25, 25),
        "midia": (25, 25),
        "performance": (30, 30),
        "disponibilidade": (20, 20),
    }


@pytest.mark.parametrize(
    "change, dimension, points",
    [
        ({"title": "Furadeira 750W"}, "cadastro", 3 + 7 + 5 + 3),  # 14 chars: 10*14/45
        ({"title": "FURADEIRA DE IMPACTO PROFISSIONAL 750W COM MALETA"}, "cadastro", 5 + 15),
        ({"attributes_count": 4}, "cadastro", 10 + 3 + 5 + 3),
        ({"listing_type": "gold_special"}, "cadastro", 10 + 7 + 4 + 3),
        ({"price": 0.0}, "cadastro", 10 + 7 + 5),
        ({"media": media_verdict(True, None, 7)}, "midia", 12 + 10),
        ({"media": media_verdict(True, None, 4)}, "midia", 7 + 10),
        ({"media": media_verdict(True, None, 0)}, "midia", 0 + 10),
        ({"media": media_verdict(False, None, 9)}, "midia", 15),
        ({"orders_30d": 2}, "performance", 4 + 15),  # 0.5% vs 2%: 15/4
        ({"visits_30d": 50, "orders_30d": 1}, "performance", 15 + 4),  # 50 of 200 visits
        ({"status": "paused", "stock": 0}, "disponibilidade", 0),
        ({"stock": 3}, "disponibilidade", 15),
    ],
)
def test_golden_points_per_dimension(change, dimension, points):
    assert dims(score_listing(replace(PERFECT, **change)))[dimension]["points"] == points


def test_unknown_data_leaves_the_weighting_instead_of_scoring_neutral():
    facts = replace(
        PERFECT, media=media_verdict(None, None, 9), visits_30d=None, orders_30d=3, stock=None
    )
    r = score_listing(facts)
    d = dims(r)
    assert d["performance"]["status"] == "sem dados" and d["performance"]["points"] is None
    assert d["midia"]["maxPoints"] == 15  # the clip is not counted either way
    assert d["disponibilidade"]["maxPoints"] == 10
    assert r["score"] == 100  # everything known is perfect: 50 of 50
    worse = score_listing(replace(facts, media=media_verdict(None, None, 4)))
    assert worse["score"] == round(100 * (50 - 8) / 50)


def test_unknown_clip_is_never_called_missing():
    r = score_listing(replace(PERFECT, media=media_verdict(None, None, 3)))
    text = " ".join(d["explanation"] for d in r["dimensions"])
    assert "clip não verificado" in text and "sem clip" not in text
    assert r["media"]["clipLabel"] == "não verificado"
    assert [a["criterion"] for a in r["actions"]] == ["fotos"]  # nothing about a clip
    no_clip = score_listing(replace(PERFECT, media=media_verdict(False, None, 9)))
    assert [a["text"] for a in no_clip["actions"]] == [
        "Publique um clip (vídeo curto vertical) (+10 pontos)"
    ]
    # The seller's override wins over what the sync found.
    overridden = score_listing(replace(PERFECT, media=media_verdict(False, True, 9)))
    assert overridden["media"] == {
        "clipStatus": "has_clip",
        "clipSource": "override",
        "clipLabel": "com clip",
        "pictures": 9,
    }


def test_actions_are_ordered_by_the_points_they_recover():
    facts = replace(
        PERFECT, media=media_verdict(False, None, 5), stock=2, attributes_count=7, status="active"
    )
    r = score_listing(facts)
    assert [(a["criterion"], a["points"]) for a in r["actions"]] == [
        ("clip", 10),
        ("fotos", 8),
        ("estoque", 5),
        ("atributos", 2),
    ]
    assert r["actions"][1]["text"] == "Adicione mais 3 fotos (+8 pontos)"
    assert r["score"] == 100 - 10 - 8 - 5 - 2


def test_explanations_state_the_numbers():
    r = score_listing(replace(PERFECT, visits_30d=1234, orders_30d=5))
    d = dims(r)
    assert d["performance"]["explanation"] == (
        "Performance: 1.234 visitas e 5 pedidos em 30 dias; conversão 0,4%; mediana da loja: "
        "conversão 2,0% e 200 visitas — 18 de 30 pontos."
    )
    assert d["cadastro"]["explanation"].startswith(
        "Cadastro: título com 49 de 60 caracteres, 12 atributos preenchidos, anúncio Premium "
        "e preço R$ 299,90"
    )
    assert (
        d["midia"]["explanation"]
        == "Mídia: 9 fotos (galeria robusta) e clip publicado — 25 de 25 pontos."
    )


# -- model wording -------------------------------------------------------------


def wording_settings(tmp_path, url, timeout=2.0) -> Settings:
    return Settings(
        data_dir=tmp_path, openai_api_key="sk-test", openai_base_url=url, openai_timeout_s=timeout
    )


def test_model_wording_is_used_cached_and_checked(engine, tmp_path):
    breakdown = score_listing(replace(PERFECT, orders_30d=2))
    facts = deterministic_text(breakdown)
    assert explanation(engine, Settings(data_dir=tmp_path), breakdown) == {
        "text": facts,
        "source": "deterministic",
    }  # no key: no call
    good = "Seu anúncio tem 9 fotos e 400 visitas; a conversão de 0,5% está abaixo de 2,0%."
    with model_stub(good) as (url, calls):
        s = wording_settings(tmp_path, url)
        assert explanation(engine, s, breakdown) == {"text": good, "source": "model"}
        assert explanation(engine, s, breakdown) == {"text": good, "source": "cache"}
        assert len(calls) == 1 and calls[0]["messages"][1]["content"] == facts
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(score_texts)).scalar() == 1


def test_model_wording_falls_back_on_invented_figures_and_timeouts(engine, tmp_path):
    breakdown = score_listing(replace(PERFECT, orders_30d=3))
    facts = deterministic_text(breakdown)
    with model_stub("Você pode vender 35% mais com 12 fotos novas.") as (url, _):
        assert explanation(engine, wording_settings(tmp_path, url), breakdown) == {
            "text": facts,
            "source": "deterministic",
        }
    with model_stub("tarde demais", delay_s=5) as (url, calls):
        out = explanation(engine, wording_settings(tmp_path, url, timeout=0.3), breakdown)
        assert out == {"text": facts, "source": "deterministic"} and len(calls) == 1
    with engine.connect() as conn:  # nothing cached from a rejected or missing answer
        assert conn.execute(select(func.count()).select_from(score_texts)).scalar() == 0


# -- end to end ------------------------------------------------------------------
def test_listings_are_scored_after_a_sandbox_sync(engine, tmp_path):
    with sandbox(listings=40) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        reg = build_registry(settings)
        done = run_sync(engine, reg)
        assert done["status"] == "completed", done["last_error"]
        with running_worker(engine, reg):
            scored = wait_status(engine, done["result"]["scoreJobId"], "completed")
    assert scored["result"]["listingsScored"] == 40
    with engine.connect() as conn:
        rows = conn.execute(
            select(listings.c.id, listings.c.score, listings.c.status, listings.c.score_breakdown)
        ).all()
    assert all(r.score is not None and 0 <= r.score <= 100 for r in rows)
    paused = [r for r in rows if r.status == "paused"]
    assert paused and all(
        any(a["text"].startswith("Reative o anúncio") for a in r.score_breakdown["actions"])
        for r in paused
    )
    # No clip information from the API for MLB: every clip is "não verificado".
    assert {r.score_breakdown["media"]["clipStatus"] for r in rows} == {"unknown"}

    create_user(engine, "ana@loja.com", "correct horse battery", "seller", "t1")
    with (
        serving(settings, engine, reg) as url,
        httpx.Client(base_url=url, headers={"Origin": url}) as c,  # as a browser
    ):
        c.post(
            "/api/v1/auth/login",
            json={"email": "ana@loja.com", "password": "correct horse battery"},
        )
        table = c.get("/api/v1/listings", params={"sort": "score", "order": "asc"}).json()
        scores = [x["score"] for x in table["listings"]]
        assert scores == sorted(scores)
        target = table["listings"][0]["id"]
        before = c.get(f"/api/v1/listings/{target}/score").json()
        assert before["explanation"]["source"] == "deterministic"
        after = c.put(f"/api/v1/listings/{target}/clips", json={"hasClips": False}).json()
        assert after["media"]["clipStatus"] == "no_clip"
        assert any(a["criterion"] == "clip" for a in after["actions"])
        # The clip goes from "sem dados" (outside the weighting) to a known 0 of 10 points:
        # the same points now count over a maximum 10 points larger.
        got = sum(d["points"] or 0 for d in before["dimensions"])
        known_max = sum(d["maxPoints"] or 0 for d in before["dimensions"])
        assert before["score"] == round(100 * got / known_max)
        assert after["score"] == round(100 * got / (known_max + 10))
        clip = next(
            c
            for d in after["dimensions"]
            if d["key"] == "midia"
            for c in d["criteria"]
            if c["key"] == "clip"
        )
        assert clip == {"key": "clip", "points": 0, "maxPoints": 10}
        assert after["score"] < before["score"]
        assert c.get("/api/v1/listings/999999/score").status_code == 404
        assert c.get("/api/v1/listings", params={"sort": "bogus"}).status_code == 422


def test_the_score_counts_the_30_complete_days_the_table_shows(engine):
    """A partial today is not in the score's 30 days (nor is the 31st day back): the
    explanation's figures are the listings table's."""
    tz = ZoneInfo("America/Sao_Paulo")
    now = datetime(2026, 3, 10, 15, 0, tzinfo=tz)
    today = now.date()
    mk.tenant(engine, "t1")
    lid = mk.listing(engine, "t1", "MLB-1", date(2025, 1, 1))
    for back, n in ((0, 500), (1, 7), (30, 11), (31, 1000)):  # today, yesterday, 30, 31 back
        mk.visits(engine, "t1", lid, today - timedelta(days=back), n)
    mk.order(engine, "t1", "today", f"{today}T10:00:00-03:00", "paid", [(lid, 1, "10.00")])
    mk.order(
        engine,
        "t1",
        "yday",
        f"{today - timedelta(days=1)}T10:00:00-03:00",
        "paid",
        [(lid, 2, "10.00")],
    )
    rebuild_daily_metrics(engine, "t1", today - timedelta(days=40), today)
    score_tenant(engine, "t1", now.astimezone(UTC))
    facts = load_facts(engine, "t1", today - timedelta(days=1))[0]
    assert (facts.visits_30d, facts.orders_30d) == (7 + 11, 1)
    with engine.connect() as conn:
        text = conn.execute(select(listings.c.score_breakdown)).scalar_one()
    assert "18 visitas e 1 pedido em 30 dias" in str(text)


def test_a_paused_listing_is_told_to_restock_and_reactivate_first_and_excelente_is_top():
    from superseller.scoring.score import GRADES

    paused = replace(
        PERFECT, status="paused", stock=0, orders_30d=1, media=media_verdict(True, None, 1)
    )
    r = score_listing(paused)
    texts = [a["text"] for a in r["actions"]]
    points = {a["criterion"]: a["points"] for a in r["actions"]}
    assert points["conversao"] > points["status"]  # a bigger gain, yet not the first step
    assert texts[0].startswith("Reponha o estoque")  # no stock: it cannot be reactivated yet
    assert texts[1].startswith("Reative o anúncio")
    assert "Adicione mais 7 fotos" in " ".join(texts)
    one_short = score_listing(replace(PERFECT, media=media_verdict(True, None, 7)))
    assert one_short["actions"][0]["text"].startswith("Adicione mais 1 foto (")
    dims = {d["key"]: d["explanation"] for d in r["dimensions"]}
    assert dims["disponibilidade"].startswith("Disponibilidade: anúncio pausado, 0 unidades")
    assert "1 foto " in dims["midia"] and "1 fotos" not in dims["midia"]
    assert GRADES[0] == (90, "Excelente")
    assert score_listing(PERFECT)["grade"] == "Excelente"
    # no photos: 85 points, good but not top tier any more
    assert score_listing(replace(PERFECT, media=media_verdict(True, None, 0)))["grade"] == "Bom"
