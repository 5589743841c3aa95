"""Anúncios says how fresh its numbers are, as the overview does: the same badge (up to
date, stale, a last sync that failed), and "Não conectado" once the store's account is
disconnected, instead of numbers that read as current."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete

from superseller.db.schema import marketplace_accounts
from superseller.tenants import record_outcome
from tests.support.api import client as signed_in
from tests.support.api import serving_store

SELLER = "ana@loja1.com"
BADGE = re.compile(r'<div id="freshness"[^>]*>(.*?)</div>', re.S)


def badge(html: str) -> str:
    found = BADGE.search(html)
    assert found, html[:3000]
    return " ".join(re.sub(r"<[^>]+>", "", found.group(1)).split())


@pytest.fixture
def url(engine, tmp_path):
    with serving_store(engine, tmp_path, SELLER) as u:
        yield u


@pytest.mark.parametrize("synced_hours_ago", [2, 40])
def test_listings_show_the_overviews_freshness(url, engine, synced_hours_ago):
    at = datetime.now(UTC) - timedelta(hours=synced_hours_ago)
    record_outcome(engine, "t1", "sync", at)
    record_outcome(engine, "t1", "rebuild", at)
    with signed_in(url, SELLER) as c:
        overview, listings = badge(c.get("/").text), badge(c.get("/anuncios").text)
    assert listings == overview and listings  # the same words, whatever they say


def test_a_disconnected_stores_listings_say_so(url, engine):
    record_outcome(engine, "t1", "sync", datetime.now(UTC))
    with engine.begin() as conn:
        conn.execute(delete(marketplace_accounts))
    with signed_in(url, SELLER) as c:
        assert badge(c.get("/anuncios").text).startswith("Não conectado")
