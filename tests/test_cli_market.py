"""`superseller market drops` as an operator meets it before the second harvest."""

from superseller.db.engine import make_engine
from superseller.tenants import create_tenant
from tests.support.cli import cli


def test_market_drops_with_none_yet_says_why_instead_of_an_empty_table(db_url):
    engine = make_engine(db_url)
    create_tenant(engine, "Loja Um", tenant_id="t1")
    engine.dispose()
    out = cli(db_url, "market", "drops", "--tenant", "t1", check=True).stdout
    assert "no price drops for t1" in out
    assert "harvests on two days" in out
    assert "listing" not in out  # no empty table's header
