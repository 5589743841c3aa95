"""Leftovers of the web layer: CSV downloads named after a store whose id predates the slug
rule, over real HTTP, on SQLite and PostgreSQL."""

import re
from datetime import UTC, date, datetime
from urllib.parse import unquote

import pytest
from sqlalchemy import insert

from superseller.config import Settings
from superseller.db.schema import tenants
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import client, serving

ADMIN = "ops@superseller.dev"
# Ids an older release accepted: a quote and a semicolon (they end the header's
# parameter), characters outside Latin-1 (the header could not even be encoded), and a
# CR/LF that would start a header of its own.
AWKWARD_IDS = ['loja "velha"; x=1', "lojão-東京", "a\r\nSet-Cookie: pego=1"]


@pytest.fixture
def url(engine, tmp_path):
    with engine.begin() as conn:
        for i, tid in enumerate(AWKWARD_IDS):
            conn.execute(
                insert(tenants).values(
                    id=tid, name=f"Loja Antiga {i}", timezone="UTC", created_at=datetime.now(UTC)
                )
            )
    mk.listing(engine, AWKWARD_IDS[0], "MLB1", date(2026, 1, 1))
    create_user(engine, ADMIN, "correct horse battery", "admin")
    settings = Settings(data_dir=tmp_path)
    with serving(settings, engine, build_registry(settings)) as u:
        yield u


def filenames(disposition: str) -> tuple[str, str]:
    """(the ASCII `filename`, the decoded `filename*`) of a Content-Disposition value."""
    assert disposition.startswith("attachment;"), disposition
    plain = re.fullmatch(r'attachment; filename="([^"]*)"; filename\*=(.*)', disposition)
    assert plain, disposition
    charset, _, encoded = plain.group(2).partition("''")
    assert charset == "UTF-8" and re.fullmatch(r"[A-Za-z0-9%._~-]+", encoded), encoded
    return plain.group(1), unquote(encoded, encoding="utf-8", errors="strict")


@pytest.mark.parametrize("tid", AWKWARD_IDS, ids=["quote-semicolon", "non-latin1", "crlf"])
@pytest.mark.parametrize("path", ["/anuncios.csv", "/metricas.csv"])
def test_csv_downloads_name_an_awkward_store_safely(url, tid, path):
    with client(url, ADMIN) as c:
        r = c.get(path, params={"loja": tid})
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("text/csv")
    assert all("pego" not in v for v in r.headers.get_list("set-cookie"))  # no header smuggled
    [disposition] = r.headers.get_list("content-disposition")
    ascii_name, exact = filenames(disposition)
    # The exact name keeps the id (control characters aside: no file name holds them).
    kind = path.strip("/").removesuffix(".csv")
    shown = tid.replace("\r", "_").replace("\n", "_")
    assert exact.startswith(f"{kind}_{shown}_") and exact.endswith(".csv"), exact
    # Old clients get a plain ASCII token: nothing to end the parameter or the header.
    assert re.fullmatch(r"[A-Za-z0-9._-]+", ascii_name), ascii_name
    assert ascii_name.startswith(f"{kind}_") and ascii_name.endswith(".csv")
