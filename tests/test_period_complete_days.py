"""A period the seller chooses that reaches today (or days still to come) shows and compares
only its complete days: half of today is never compared with full days, on the page and in
the API, whatever the range. Real HTTP, on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from superseller.config import Settings
from superseller.db.schema import tenants
from superseller.jobs.cron import zone
from superseller.metrics.rebuild import rebuild_daily_metrics
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import PASSWORD, client, serving

TZ = "America/Sao_Paulo"
SELLER = "ana@loja1.com"


@pytest.fixture
def shop(engine, tmp_path):
    """One order on each of the 14 days before today, and five today (local days)."""
    mk.tenant(engine, "t1", TZ)
    mk.account(engine, "t1")
    today = datetime.now(UTC).astimezone(zone(TZ)).date()
    lid = mk.listing(engine, "t1", "MLB1", today - timedelta(days=60))
    for back in range(1, 15):
        day = today - timedelta(days=back)
        mk.order(engine, "t1", f"o{back}", f"{day}T12:00:00-03:00", "paid", [(lid, 1, "10.00")])
    for n in range(5):
        mk.order(engine, "t1", f"t{n}", f"{today}T00:0{n}:00-03:00", "paid", [(lid, 1, "10.00")])
    rebuild_daily_metrics(engine, "t1", str(today - timedelta(days=20)), str(today))
    with engine.begin() as conn:  # synced: the page shows the store's numbers
        conn.execute(update(tenants).values(last_sync_ok_at=datetime.now(UTC)))
    create_user(engine, SELLER, PASSWORD, "seller", "t1")
    settings = Settings(data_dir=tmp_path)
    with serving(settings, engine, build_registry(settings)) as url:
        yield url, today


@pytest.mark.parametrize("ahead", [0, 1, 30], ids=["to-today", "to-tomorrow", "a-month-ahead"])
def test_a_period_reaching_today_ends_yesterday_in_the_api(shop, ahead):
    url, today = shop
    yesterday, start = today - timedelta(days=1), today - timedelta(days=7)
    with client(url, SELLER) as c:
        r = c.get(
            "/api/v1/metrics/overview",
            params={"from": str(start), "to": str(today + timedelta(days=ahead))},
        )
    assert r.status_code == 200, r.text
    o = r.json()
    assert (o["period"]["from"], o["period"]["to"]) == (str(start), str(yesterday))
    orders = o["cards"]["orders"]
    assert orders["value"] == 7  # today's five orders are in `today`, not in the period
    assert orders["previous"] == 7 and orders["changePct"] == 0  # like with like
    assert o["today"] is None or o["today"]["date"] == str(today)


def test_a_period_with_no_complete_day_is_refused_in_the_api(shop):
    url, today = shop
    with client(url, SELLER) as c:
        for a, b in ((today, today), (today + timedelta(days=1), today + timedelta(days=3))):
            r = c.get("/api/v1/metrics/overview", params={"from": str(a), "to": str(b)})
            assert r.status_code == 400, r.text
            assert r.json()["error"]["code"] == "invalid_range"
            assert "no complete day" in r.json()["error"]["message"]


def test_the_page_shows_the_complete_days_and_says_why(shop):
    url, today = shop
    yesterday, start = today - timedelta(days=1), today - timedelta(days=7)
    br = "{:%d/%m}".format
    with client(url, SELLER) as c:
        page = c.get("/", params={"de": str(start), "ate": str(today)})
        assert page.status_code == 200
        period = page.text[page.text.index('id="period"') :][:600]
        assert f"{br(start)} a {br(yesterday)}" in period, period
        assert "até ontem: só dias completos; hoje aparece à parte" in page.text
        assert f'name="ate" value="{today}"' in page.text  # the form as the seller typed it
        # A period within complete days is shown as chosen, without the note.
        plain = c.get("/", params={"de": str(start), "ate": str(yesterday)})
        assert plain.status_code == 200 and 'id="period-cut"' not in plain.text
        only_today = c.get("/", params={"de": str(today), "ate": str(today)})
        assert only_today.status_code == 422
        assert "não tem nenhum dia completo" in only_today.text
        assert f"até ontem ({yesterday:%d/%m/%Y})" in only_today.text
