"""pt-BR formatting for the pages: money, numbers, percentages (from `superseller.ptbr`),
dates."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from superseller.config import DEFAULT_TIMEZONE
from superseller.ptbr import brl, number, percent, signed_percent


def change(pct: float | None) -> str:
    if pct is None:
        return "sem comparação"
    return f"{signed_percent(pct)} vs período anterior"


def day(value: str | date | None) -> str:
    if value is None:
        return "—"
    d = date.fromisoformat(value) if isinstance(value, str) else value
    return d.strftime("%d/%m")


def when(value: str | datetime | None, tz: str = DEFAULT_TIMEZONE) -> str:
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
