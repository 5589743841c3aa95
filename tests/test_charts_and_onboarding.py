"""The server-drawn chart's axes and gaps, pt-BR formatting, and where a seller stands
with Mercado Livre (what the overview offers first)."""

from datetime import UTC, datetime

from sqlalchemy import insert, update

from superseller.config import Settings
from superseller.db.schema import marketplace_accounts
from superseller.jobs.queue import Queue
from superseller.mercadolivre.account_state import account_state
from superseller.ptbr import brl, number, signed_pct
from superseller.tenants import record_outcome
from superseller.web.charts import daily_chart, money_tick, nice_ticks
from superseller.web.format import reasons
from superseller.wiring import build_registry
from tests.support import marketplace as mk


def test_axes_are_round_money_and_whole_counts():
    assert nice_ticks(17521.70) == [0, 5000, 10000, 15000, 20000]
    assert [money_tick(t) for t in nice_ticks(17521.70)] == [
        "R$\u00a00",
        "R$\u00a05\u00a0mil",
        "R$\u00a010\u00a0mil",
        "R$\u00a015\u00a0mil",
        "R$\u00a020\u00a0mil",
    ]
    assert (
        money_tick(2500) == "R$\u00a02,5\u00a0mil"
        and money_tick(1_200_000) == "R$\u00a01,2\u00a0mi"
    )
    for top in (1, 3, 7, 33, 66):
        ticks = nice_ticks(top, integer=True)
        assert all(t == int(t) for t in ticks) and ticks[-1] >= top  # never 16,5 orders
    assert nice_ticks(0, integer=True) == [0, 1]  # an empty period still has an axis


def test_unknown_visits_are_gaps_and_tooltips_read_pt_br():
    series = [
        {"date": "2026-11-25", "revenue": 100.0, "orders": 1, "visits": 40},
        {"date": "2026-11-26", "revenue": 17521.7, "orders": 33, "visits": 50},
        {"date": "2026-11-27", "revenue": 0.0, "orders": 0, "visits": None},
        {"date": "2026-11-28", "revenue": 10.0, "orders": 1, "visits": 30},
    ]
    chart = daily_chart(series)
    revenue, orders, visits = chart["panels"]
    assert revenue["hovers"][1]["title"] == "26/11 · Receita R$\u00a017.521,70"
    assert orders["hovers"][1]["title"] == "26/11 · Pedidos 33"
    assert visits["hovers"][2]["title"] == "27/11 · Visitas desconhecidas"
    # two separate pieces of line around the unknown day, not a line through zero
    assert len(visits["lines"]) == 1 and visits["dots"] == ["35,50.00"]  # 30 of an axis up to 60
    assert revenue["summary"] == (
        "Receita por dia, 25/11 a 28/11: total R$\u00a017.631,70, maior R$\u00a017.521,70 em 26/11."
    )
    assert visits["summary"].endswith("; 1 dia desconhecido.")
    assert daily_chart([]) is None


def test_pt_br_numbers_and_reasons():
    assert brl(1234.5) == "R$\u00a01.234,50" and brl(-70) == "\u2212R$\u00a070,00"
    assert number(1234567) == "1.234.567" and signed_pct(-9.8) == "\u22129,8%"
    assert (
        reasons([{"message": "Reconecte sua conta"}, {"message": "Nenhuma sincronização"}])
        == "Reconecte sua conta; nenhuma sincronização"
    )


def test_account_state_drives_the_first_step(engine, tmp_path):
    mk.tenant(engine)
    assert account_state(engine, "t1") == "not_connected"
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(marketplace_accounts).values(
                tenant_id="t1", ml_user_id=1, status="connected", created_at=now, updated_at=now
            )
        )
    assert account_state(engine, "t1") == "never_synced"  # connected, nothing running yet
    Queue(engine, build_registry(Settings(data_dir=tmp_path))).enqueue(
        "sync_mercadolivre", {"tenantId": "t1", "daysBack": 30}, tenant_id="t1"
    )
    assert account_state(engine, "t1") == "importing"
    record_outcome(engine, "t1", "sync", now)
    assert account_state(engine, "t1") == "connected"
    with engine.begin() as conn:
        conn.execute(update(marketplace_accounts).values(status="reauth_required"))
    assert account_state(engine, "t1") == "reauth_required"
