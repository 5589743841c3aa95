"""pt-BR formatting of numbers, money and percentages: the one home for it (the pages, the
score's sentences and the CLI all write numbers the Brazilian way: 1.234,5)."""

from __future__ import annotations

EMPTY = "—"  # what an unknown value is shown as


def number(value: float | None, decimals: int = 0) -> str:
    """1234.5 -> '1.234,5' (thousands with '.', decimals with ',')."""
    if value is None:
        return EMPTY
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "_").replace(".", ",").replace("_", ".")


def brl(value: float | None) -> str:
    """1234.5 -> 'R$ 1.234,50'."""
    return EMPTY if value is None else f"R$ {number(value, 2)}"


def percent(fraction: float | None, decimals: int = 1) -> str:
    """0.1234 -> '12,3%'."""
    return EMPTY if fraction is None else f"{number(fraction * 100, decimals)}%"


def signed_percent(pct: float | None, decimals: int = 1) -> str | None:
    """A change already in percent: 5 -> '+5,0%', -2.5 -> '-2,5%'; None stays None."""
    if pct is None:
        return None
    return f"{'+' if pct > 0 else ''}{number(pct, decimals)}%"
