"""Brazilian Portuguese number formatting: one home for R$, thousands and percentages.

The web pages and the sentences the metrics build ("Receita −9,8%: …") share it, so a figure
reads the same everywhere. Negative numbers use the minus sign U+2212, as a seller reads them.
"""

from __future__ import annotations

MINUS = "\u2212"


def number(value: float | None, decimals: int = 0) -> str:
    if value is None:
        return "—"
    text = f"{abs(value):,.{decimals}f}".replace(",", "_").replace(".", ",").replace("_", ".")
    negative = round(value, decimals) < 0
    return f"{MINUS}{text}" if negative else text


def brl(value: float | None) -> str:
    """R$ 1.234,56 — the space is a no-break space so R$ never wraps away from its number."""
    if value is None:
        return "—"
    sign = MINUS if round(value, 2) < 0 else ""
    return f"{sign}R$\u00a0{number(abs(value), 2)}"


def signed_brl(value: float) -> str:
    return ("+" if round(value, 2) > 0 else "") + brl(value)


def percent(fraction: float | None, decimals: int = 1) -> str:
    return "—" if fraction is None else f"{number(fraction * 100, decimals)}%"


def signed_pct(pct: float | None, decimals: int = 1) -> str:
    """A change already in percent (−9.8 → "−9,8%")."""
    if pct is None:
        return "—"
    return ("+" if round(pct, decimals) > 0 else "") + f"{number(pct, decimals)}%"


def plural(n: int, one: str, many: str) -> str:
    return f"{number(n)} {one if n == 1 else many}"
