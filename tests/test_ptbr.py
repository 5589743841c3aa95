"""pt-BR numbers have one home (`superseller.ptbr`): the pages, the score's sentences and the
CLI write them the same way."""

import pytest

from superseller import ptbr
from superseller.scoring import score
from superseller.web import format as web_format


@pytest.mark.parametrize(
    ("fn", "args", "text"),
    [
        (ptbr.number, (1234567.891, 2), "1.234.567,89"),
        (ptbr.number, (1234.5,), "1.234"),  # round half to even, like Python
        (ptbr.number, (None,), "—"),
        (ptbr.brl, (1234.5,), "R$\u00a01.234,50"),  # R$ never wraps away from its number
        (ptbr.brl, (-3.5,), "\u2212R$\u00a03,50"),
        (ptbr.brl, (None,), "—"),
        (ptbr.percent, (0.1234,), "12,3%"),
        (ptbr.percent, (0.031416, 2), "3,14%"),
        (ptbr.signed_pct, (5,), "+5,0%"),
        (ptbr.signed_pct, (-2.5,), "\u22122,5%"),  # the minus sign, as a seller reads it
        (ptbr.signed_pct, (0,), "0,0%"),
        (ptbr.signed_pct, (None,), "—"),
    ],
)
def test_numbers_the_brazilian_way(fn, args, text):
    assert fn(*args) == text


def test_pages_and_scores_use_the_same_formatting():
    assert web_format.FILTERS["number"] is ptbr.number
    assert web_format.FILTERS["brl"] is ptbr.brl
    assert web_format.FILTERS["percent"] is ptbr.percent
    assert web_format.change(12.34) == "+12,3% vs período anterior"
    assert score.br_number is ptbr.number and score.br_percent is ptbr.percent
