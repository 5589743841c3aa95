"""CLI tables under cron or CI (stdout not a terminal) show every cell whole."""

from datetime import UTC, datetime

from superseller.tenants import record_outcome
from tests.support import marketplace as mk
from tests.support.cli import cli

LONG_ID = "loja-com-um-identificador-bem-longo1"  # 36 characters, the most an id holds


def test_freshness_table_is_not_truncated_without_a_terminal(db_url, engine):
    mk.tenant(engine, LONG_ID)
    synced = datetime(2026, 11, 20, 3, 4, 5, tzinfo=UTC)
    record_outcome(engine, LONG_ID, "sync", synced)
    record_outcome(engine, LONG_ID, "rebuild", synced)
    # COLUMNS=80: what a cron job or a CI runner gets (the test's own stdout is a pipe too)
    out = cli(db_url, "freshness", env={"COLUMNS": "80"}).stdout
    assert "…" not in out, out
    assert LONG_ID in out
    assert out.count("2026-11-20") >= 2, out  # last sync and last rebuild, whole
    assert out.count(":04:05") >= 2, out
