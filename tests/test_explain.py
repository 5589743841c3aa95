"""The change explained: the LMDI split of the revenue change, its listings, its sentences,
and the honest periods it stands on (no comparison against history never synced)."""

import math
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from superseller.metrics.explain import _headline, explain, lmdi, to_cents
from superseller.metrics.queries import complete_period, overview, today_so_far
from superseller.metrics.rebuild import rebuild_daily_metrics
from superseller.ptbr import brl, number, signed_brl, signed_pct
from superseller.tenants import get_tenant, record_outcome
from tests.support import marketplace as mk

D = date.fromisoformat
PREV = [D("2026-01-01") + timedelta(days=i) for i in range(7)]
CUR = [D("2026-01-08") + timedelta(days=i) for i in range(7)]


def _order(engine, n, day, lid, price):
    mk.order(engine, "t1", f"o{n}", f"{day.isoformat()}T12:00:00-03:00", "paid", [(lid, 1, price)])


@pytest.fixture
def shop(engine):
    """Mochila: visits halve (40 → 20) at the same conversion (10%) and ticket (R$ 50):
    a pure visits loss of R$ 100. Garrafa: same visits and orders, ticket R$ 30 → R$ 45."""
    mk.tenant(engine)
    a = mk.listing(engine, "t1", "MLB1", D("2025-12-01"), title="Mochila Kit 3")
    b = mk.listing(engine, "t1", "MLB2", D("2025-12-01"), title="Garrafa 750 ml")
    n = 0
    for days, a_visits, a_orders, b_price in ((PREV, 40, 4, "30.00"), (CUR, 20, 2, "45.00")):
        for i, d in enumerate(days):
            mk.visits(engine, "t1", a, d, a_visits // 7 + (1 if i < a_visits % 7 else 0))
            mk.visits(engine, "t1", b, d, 3 if i < 6 else 2)  # 20 a period
        for i in range(a_orders):
            n += 1
            _order(engine, n, days[i], a, "50.00")
        for i in range(2):
            n += 1
            _order(engine, n, days[i + 3], b, b_price)
    return {"a": a, "b": b}


def test_effects_sum_exactly_to_the_change_and_name_the_cause(engine, shop):
    rebuild_daily_metrics(engine, "t1", PREV[0], CUR[-1])
    e = explain(engine, "t1", CUR[0], CUR[-1])
    assert e["available"] and e["method"] == "lmdi"
    assert e["factors"] == ("visits", "conversion", "ticket")
    r = e["revenue"]
    assert (r["previous"], r["current"], r["change"]) == (260.0, 190.0, -70.0)
    parts = [Decimal(str(v)) for v in e["effects"].values()]
    assert sum(parts) == Decimal("-70.00")  # to the cent, after rounding
    # The tenant: visits 60 -> 40, orders 6 -> 4 (conversion 10% both), ticket 43,33 -> 47,50
    assert e["effects"]["conversion"] == 0.0
    weight = (190 - 260) / math.log(190 / 260)
    assert e["effects"]["visits"] == pytest.approx(weight * math.log(40 / 60), abs=0.01)
    assert e["effects"]["ticket"] == pytest.approx(weight * math.log(47.5 / (260 / 6)), abs=0.01)
    assert e["sentence"].startswith("Receita −26,9% (−R$\u00a070,00): menos visitas pesaram mais")
    # listings: the Mochila's loss first, then the Garrafa's gain; they add up to the total
    assert [i["listingId"] for i in e["listings"]] == [shop["a"], shop["b"]]
    mochila, garrafa = e["listings"]
    assert (mochila["change"], garrafa["change"]) == (-100.0, 30.0)
    assert mochila["effects"] == {"visits": -100.0, "conversion": 0.0, "ticket": 0.0}
    assert garrafa["effects"] == {"visits": 0.0, "conversion": 0.0, "ticket": 30.0}
    assert mochila["sentence"] == (
        "Mochila Kit 3: −R$\u00a0100,00 (mais que toda a variação); perdeu 50% das visitas "
        "(40 → 20)."
    )


def test_an_effect_larger_than_the_change_is_not_a_share_of_it():
    """Revenue barely moved because effects cancelled out: the headline names what weighed
    most, in reais, instead of "explica 1.782%"."""
    effects = {"visits": Decimal("3226.99"), "conversion": Decimal("-5984.90")}
    effects["ticket"] = Decimal("2422.01")
    text = _headline(-0.3, Decimal("-335.90"), effects)
    assert text.startswith("Receita −0,3% (−R$\u00a0335,90): conversão menor pesou mais (−R$")
    assert "%" not in text.split(":", 1)[1]
    normal = _headline(-26.9, Decimal("-70"), {"visits": Decimal("-60"), "ticket": Decimal("-10")})
    assert "menos visitas explicam 86% (−R$\u00a060,00)" in normal


def _numbers(text: str) -> list[str]:
    return re.findall(r"[−+]?\d[\d.]*(?:,\d+)?", text)


def test_sentences_state_only_computed_figures(engine, shop):
    rebuild_daily_metrics(engine, "t1", PREV[0], CUR[-1])
    e = explain(engine, "t1", CUR[0], CUR[-1])
    r = e["revenue"]
    allowed = {signed_pct(r["changePct"]), signed_brl(r["change"]), brl(0)}
    allowed |= {signed_brl(v) for v in e["effects"].values()}
    allowed |= {f"{number(s)}%" for s in e["effectShares"].values()}
    for item in e["listings"]:
        allowed |= {signed_brl(item["change"]), f"{number(item['share'])}%"}
        allowed |= {number(item[k]) for k in ("visits", "previousVisits", "orders")}
        allowed |= {number(item["previousOrders"])}
        if item["visits"] is not None and item["previousVisits"]:
            change = (item["visits"] - item["previousVisits"]) / item["previousVisits"] * 100
            allowed.add(f"{number(abs(change))}%")
    allowed_numbers = {n for a in allowed for n in _numbers(a)}
    texts = [e["sentence"]] + [i["sentence"].replace(i["title"], "") for i in e["listings"]]
    stated = [n for t in texts for n in _numbers(t)]
    assert stated, "the sentences state figures"
    assert set(stated) <= allowed_numbers, set(stated) - allowed_numbers


def test_no_comparison_when_the_previous_period_was_never_synced(engine, shop):
    rebuild_daily_metrics(engine, "t1", CUR[0], CUR[-1])  # only the current week
    o = overview(engine, "t1", CUR[0], CUR[-1])
    assert o["comparison"] == {
        "available": False,
        "reason": "insufficient_history",
        "previousCoveredDays": 0,
    }
    assert o["cards"]["revenue"]["value"] == 190.0
    assert all(c["changePct"] is None and c["previous"] is None for c in o["cards"].values())
    e = explain(engine, "t1", CUR[0], CUR[-1])
    assert not e["available"] and e["listings"] == []
    assert e["sentence"].startswith("Sem comparação (histórico insuficiente)")
    rebuild_daily_metrics(engine, "t1", PREV[1], PREV[-1])  # one day short
    assert not overview(engine, "t1", CUR[0], CUR[-1])["comparison"]["available"]
    rebuild_daily_metrics(engine, "t1", PREV[0], PREV[0])
    assert overview(engine, "t1", CUR[0], CUR[-1])["cards"]["revenue"]["changePct"] == -26.9


def test_unknown_visits_split_into_orders_and_ticket(engine, shop):
    mk.visits(engine, "t1", mk.listing(engine, "t1", "MLB3", D("2025-12-01")), CUR[2], None)
    rebuild_daily_metrics(engine, "t1", PREV[0], CUR[-1])
    e = explain(engine, "t1", CUR[0], CUR[-1])
    assert e["factors"] == ("orders", "ticket")
    assert sum(Decimal(str(v)) for v in e["effects"].values()) == Decimal("-70.00")


def test_lmdi_parts_sum_for_any_positive_figures():
    for factors in [
        {"v": (40, 60), "c": (0.1, 0.1), "t": (47.5, 43.33)},
        {"v": (812, 1000), "c": (0.02, 0.015), "t": (760.1, 658.4)},
        {"o": (1, 2), "t": (5.0, 2.5)},
    ]:
        r1, r0 = (math.prod(x[i] for x in factors.values()) for i in (0, 1))
        raw = lmdi(r1, r0, factors)
        assert sum(raw.values()) == pytest.approx(r1 - r0, abs=1e-9)
        total = (Decimal(str(r1)) - Decimal(str(r0))).quantize(Decimal("0.01"))
        assert sum(to_cents(raw, total).values()) == total


def test_complete_periods_end_yesterday_and_today_stands_alone(engine, shop):
    now = datetime(2026, 1, 15, 17, 31, tzinfo=UTC)  # 14:31 in São Paulo
    assert complete_period("America/Sao_Paulo", now, 7) == (CUR[0], CUR[-1])
    mk.order(engine, "t1", "today", "2026-01-15T09:00:00-03:00", "paid", [(shop["a"], 2, "10")])
    rebuild_daily_metrics(engine, "t1", CUR[0], D("2026-01-15"))
    tenant = get_tenant(engine, "t1")
    assert today_so_far(engine, tenant, now)["asOf"] is None  # never synced: no "today"
    record_outcome(engine, "t1", "sync", now - timedelta(minutes=1))
    record_outcome(engine, "t1", "rebuild", now)
    today = today_so_far(engine, get_tenant(engine, "t1"), now)
    assert today == {
        "date": "2026-01-15",
        "asOf": "14:30",
        "revenue": 20.0,
        "orders": 1,
        "visits": None,
    }


def test_the_explain_api(engine, shop, tmp_path):
    import httpx

    from superseller.config import Settings
    from superseller.users.accounts import create_user
    from superseller.wiring import build_registry
    from tests.support.api import serving

    rebuild_daily_metrics(engine, "t1", PREV[0], CUR[-1])
    create_user(engine, "ana@loja1.com", "correct horse battery", "seller", "t1")
    settings = Settings(data_dir=tmp_path)
    with serving(settings, engine, build_registry(settings)) as url:
        c = httpx.Client(base_url=url, timeout=30)
        c.post(
            "/api/v1/auth/login",
            json={"email": "ana@loja1.com", "password": "correct horse battery"},
        )
        body = c.get("/api/v1/metrics/explain", params={"from": "2026-01-08", "to": "2026-01-14"})
        assert body.status_code == 200
        e = body.json()
        assert e["revenue"]["change"] == -70.0
        assert sum(Decimal(str(v)) for v in e["effects"].values()) == Decimal("-70.00")
        assert e["listings"][0]["title"] == "Mochila Kit 3"
        reversed_ = c.get(
            "/api/v1/metrics/explain", params={"from": "2026-01-14", "to": "2026-01-08"}
        )
        assert reversed_.status_code == 400 and reversed_.json()["error"]["code"] == "invalid_range"
        assert c.get("/api/v1/metrics/explain").json()["period"]["days"] == 30  # complete days


def test_dates_outside_the_limits_are_a_400_not_a_500(engine, shop, tmp_path):
    import httpx

    from superseller.config import Settings
    from superseller.users.accounts import create_user
    from superseller.wiring import build_registry
    from tests.support.api import serving

    create_user(engine, "ana@loja1.com", "correct horse battery", "seller", "t1")
    settings = Settings(data_dir=tmp_path)
    with serving(settings, engine, build_registry(settings)) as url:
        c = httpx.Client(base_url=url, timeout=30)
        c.post(
            "/api/v1/auth/login",
            json={"email": "ana@loja1.com", "password": "correct horse battery"},
        )
        for route in ("/api/v1/metrics/explain", "/api/v1/metrics/overview"):
            r = c.get(route, params={"from": "0001-01-01", "to": "0001-01-05"})
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_range", r.text


def test_the_listings_api_searches_filters_and_pages(engine, shop, tmp_path):
    import httpx

    from superseller.config import Settings
    from superseller.users.accounts import create_user
    from superseller.wiring import build_registry
    from tests.support.api import serving

    rebuild_daily_metrics(engine, "t1", PREV[0], CUR[-1])
    create_user(engine, "ana@loja1.com", "correct horse battery", "seller", "t1")
    settings = Settings(data_dir=tmp_path)
    with serving(settings, engine, build_registry(settings)) as url:
        c = httpx.Client(base_url=url, timeout=30)
        c.post(
            "/api/v1/auth/login",
            json={"email": "ana@loja1.com", "password": "correct horse battery"},
        )
        week = {"from": "2026-01-08", "to": "2026-01-14"}
        found = c.get("/api/v1/listings", params={**week, "q": "MOCHILA"}).json()
        assert found["total"] == 1 and found["listings"][0]["title"] == "Mochila Kit 3"
        paged = c.get("/api/v1/listings", params={**week, "page": 2, "perPage": 1}).json()
        assert (paged["total"], paged["page"], paged["pages"]) == (2, 2, 2)
        assert [r["title"] for r in paged["listings"]] == ["Garrafa 750 ml"]  # R$ 90 < R$ 100
        assert c.get("/api/v1/listings", params={**week, "status": "paused"}).json()["total"] == 0
        assert c.get("/api/v1/listings", params={"clip": "talvez"}).status_code == 422
