"""A paused listing with no stock is told to restock before it is told to reactivate:
Mercado Livre does not reactivate a listing with nothing to sell, so "Reative o anúncio"
first would be an impossible first step. With stock, reactivating stays first."""

from dataclasses import replace

from superseller.scoring.media import media_verdict
from superseller.scoring.score import score_listing
from tests.test_scoring import PERFECT


def _texts(**changes) -> list[str]:
    return [a["text"] for a in score_listing(replace(PERFECT, **changes))["actions"]]


def test_a_paused_listing_with_no_stock_is_told_to_restock_then_reactivate():
    texts = _texts(status="paused", stock=0, orders_30d=1, media=media_verdict(True, None, 1))
    assert texts[0].startswith("Reponha o estoque"), texts
    assert texts[1].startswith("Reative o anúncio"), texts


def test_a_paused_listing_with_stock_is_told_to_reactivate_first():
    texts = _texts(status="paused", stock=3, orders_30d=1, media=media_verdict(True, None, 1))
    assert texts[0].startswith("Reative o anúncio"), texts
    assert any(t.startswith("Reponha o estoque (tem 3") for t in texts), texts


def test_a_listing_whose_stock_is_unknown_is_told_to_reactivate_first():
    texts = _texts(status="paused", stock=None)
    assert texts[0].startswith("Reative o anúncio"), texts
    assert not any(t.startswith("Reponha o estoque") for t in texts)
