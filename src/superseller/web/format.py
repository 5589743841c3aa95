"""pt-BR formatting for the pages: money, numbers, percentages, dates."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo


def number(value: float | None, decimals: int = 0) -> str:
    if value is None:
        return "—"
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "_").replace(".", ",").replace("_", ".")


def brl(value: float | None) -> str:
    return "—" if value is None else f"R$ {number(value, 2)}"


def percent(fraction: float | None, decimals: int = 1) -> str:
    return "—" if fraction is None else f"{number(fraction * 100, decimals)}%"


def change(pct: float | None) -> str:
    if pct is None:
        return "sem comparação"
    sign = "+" if pct > 0 else ""
    return f"{sign}{number(pct, 1)}% vs período anterior"


def day(value: str | date | None) -> str:
    if value is None:
        return "—"
    d = date.fromisoformat(value) if isinstance(value, str) else value
    return d.strftime("%d/%m")


def when(value: str | datetime | None, tz: str = "America/Sao_Paulo") -> str:
    """A moment in the seller's time zone."""
    if value is None:
        return "—"
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    return dt.astimezone(ZoneInfo(tz)).strftime("%d/%m %H:%M")


FILTERS = {
    "number": number,
    "brl": brl,
    "percent": percent,
    "change": change,
    "day": day,
    "when": when,
}
