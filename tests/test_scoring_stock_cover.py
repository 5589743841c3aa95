"""The stock criterion weighs the stock against how fast the listing sells.

Four units of a listing that sold 58 in 30 days last about two days: restocking it is
the seller's next step, ahead of a title keyword. Four units of a slow seller last two
months: only the fixed floor (5 units) applies, as before."""

from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from superseller.db.schema import listings
from superseller.metrics.rebuild import rebuild_daily_metrics
from superseller.scoring.criteria import ListingFacts
from superseller.scoring.facts import load_facts
from superseller.scoring.jobs import score_tenant
from superseller.scoring.media import media_verdict
from superseller.scoring.score import score_listing
from tests.support import marketplace as mk

# Everything complete but a short title (a +5 title action) and 4 units in stock.
TENIS = ListingFacts(
    listing_id=1,
    external_id="MLB1",
    title="Tênis Corrida Premium",
    attributes_count=12,
    listing_type="gold_pro",
    price=299.9,
    media=media_verdict(True, None, 9),
    status="active",
    stock=4,
    visits_30d=400,
    orders_30d=12,
    median_visits=200.0,
    median_conversion=0.02,
)


def stock_of(result):
    dim = next(d for d in result["dimensions"] if d["key"] == "disponibilidade")
    points = next(c["points"] for c in dim["criteria"] if c["key"] == "estoque")
    return points, dim["explanation"]


def test_a_fast_seller_about_to_run_out_is_told_to_restock_first():
    fast = score_listing(replace(TENIS, units_30d=58))
    first = fast["actions"][0]
    assert first["criterion"] == "estoque"
    assert first["text"].startswith(
        "Reponha o estoque já: 4 unidades duram cerca de 2 dias no ritmo de 58 vendidas em 30 dias"
    )
    assert fast["actions"][1]["criterion"] == "titulo"  # the keyword comes after
    points, explanation = stock_of(fast)
    assert points == 2
    assert (
        "4 unidades em estoque, que duram cerca de 2 dias no ritmo de 58 vendidas em 30 dias —"
        in explanation
    )


def test_the_same_stock_of_a_slow_seller_keeps_the_fixed_floor():
    slow = score_listing(replace(TENIS, units_30d=2))  # 4 units last 60 days
    assert slow["actions"][0]["criterion"] == "titulo"  # the biggest gain first
    restock = next(a for a in slow["actions"] if a["criterion"] == "estoque")
    assert restock["text"].startswith("Reponha o estoque (tem 4; o ideal é pelo menos 5)")
    assert stock_of(slow)[0] == 5
    fast = score_listing(replace(TENIS, units_30d=58))
    assert fast["score"] < slow["score"]  # running out in 2 days is worse than in 60


def test_plenty_of_units_at_a_fast_pace_still_runs_out():
    # 20 units at 4 a day: 5 days. Ample by the floor, not by the pace.
    r = score_listing(replace(TENIS, stock=20, units_30d=120))
    assert r["actions"][0]["text"].startswith(
        "Reponha o estoque já: 20 unidades duram cerca de 5 dias"
    )
    # 20 units at 2 a day last 10 days: no action.
    calm = score_listing(replace(TENIS, stock=20, units_30d=60))
    assert stock_of(calm)[0] == 10
    assert all(a["criterion"] != "estoque" for a in calm["actions"])


def test_out_of_stock_and_inactive_still_come_before():
    none_left = score_listing(replace(TENIS, stock=0, units_30d=58))
    assert none_left["actions"][0]["text"].startswith("Reponha o estoque (tem 0;")
    paused = score_listing(replace(TENIS, status="paused", units_30d=58))
    assert [a["criterion"] for a in paused["actions"][:2]] == ["status", "estoque"]


def test_the_pace_comes_from_the_listings_30_days_of_sales(engine):
    tz = ZoneInfo("America/Sao_Paulo")
    now = datetime(2026, 3, 10, 15, 0, tzinfo=tz)
    yesterday = now.date() - timedelta(days=1)
    mk.tenant(engine, "t1")
    fast = mk.listing(engine, "t1", "MLB-F", date(2025, 1, 1), available_quantity=4)
    slow = mk.listing(engine, "t1", "MLB-S", date(2025, 1, 1), available_quantity=4)
    for k in range(29):  # 2 units a day over 29 days: 58 in the 30-day window
        day = yesterday - timedelta(days=k)
        mk.order(engine, "t1", f"f{k}", f"{day}T10:00:00-03:00", "paid", [(fast, 2, "10.00")])
    mk.order(engine, "t1", "s1", f"{yesterday}T10:00:00-03:00", "paid", [(slow, 2, "10.00")])
    rebuild_daily_metrics(engine, "t1", yesterday - timedelta(days=40), now.date())
    facts = {f.external_id: f for f in load_facts(engine, "t1", yesterday)}
    assert (facts["MLB-F"].units_30d, facts["MLB-S"].units_30d) == (58, 2)
    score_tenant(engine, "t1", now)
    with engine.connect() as conn:
        rows = conn.execute(select(listings.c.external_id, listings.c.score_breakdown)).all()
    stored = {ext: breakdown for ext, breakdown in rows}
    assert stored["MLB-F"]["actions"][0]["text"].startswith("Reponha o estoque já: 4 unidades")
    assert not stored["MLB-S"]["actions"][0]["text"].startswith("Reponha o estoque já")
