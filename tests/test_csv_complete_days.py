"""The daily CSV of a chosen period holds the days the overview shows: its complete days,
never half of today as a full row nor days still to come as zeros; a period with no complete
day is refused as the page refuses it. Real HTTP, on SQLite and PostgreSQL."""

import csv
import io
from datetime import timedelta

import pytest

from tests.support.api import client
from tests.test_period_complete_days import SELLER, shop  # noqa: F401 (the fixture)


def _rows(r) -> list[list[str]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(r.text.lstrip("\ufeff")), delimiter=","))


@pytest.mark.parametrize("ahead", [0, 1, 30], ids=["to-today", "to-tomorrow", "a-month-ahead"])
def test_the_daily_csv_of_a_period_reaching_today_ends_yesterday(shop, ahead):  # noqa: F811
    url, today = shop
    yesterday, start = today - timedelta(days=1), today - timedelta(days=7)
    asked = today + timedelta(days=ahead)
    with client(url, SELLER) as c:
        r = c.get("/metricas.csv", params={"de": str(start), "ate": str(asked), "formato": "intl"})
    rows = _rows(r)
    assert rows[0] == ["data", "receita", "pedidos", "visitas"]
    days = [row[0] for row in rows[1:]]
    assert days == [str(start + timedelta(days=n)) for n in range(7)]  # start .. yesterday
    assert all(row[2] == "1" for row in rows[1:])  # one order a day; today's five are not here
    assert f"_{start}_{yesterday}.csv" in r.headers["content-disposition"]


def test_the_daily_csv_of_a_period_with_no_complete_day_is_refused(shop):  # noqa: F811
    url, today = shop
    yesterday = today - timedelta(days=1)
    with client(url, SELLER) as c:
        for a, b in ((today, today), (today + timedelta(days=1), today + timedelta(days=3))):
            r = c.get("/metricas.csv", params={"de": str(a), "ate": str(b)})
            assert r.status_code == 422, r.text
            assert "text/html" in r.headers["content-type"]
            assert "não tem nenhum dia completo" in r.text
            assert f"até ontem ({yesterday:%d/%m/%Y})" in r.text
