"""pt-BR formatting for the pages: money, numbers, percentages, dates (see superseller.ptbr)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from superseller.config import DEFAULT_TIMEZONE
from superseller.ptbr import brl, number, percent, plural, signed_brl, signed_pct


def change(pct: float | None) -> str:
    if pct is None:
        return "sem comparação"
    return f"{signed_pct(pct)} vs período anterior"


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


def reasons(items: list[dict]) -> str:
    """Freshness reasons in one sentence: "Reconecte sua conta; nenhuma sincronização…"
    (lower case after a semicolon)."""
    texts = [r["message"] for r in items]
    return "; ".join([t if i == 0 else t[:1].lower() + t[1:] for i, t in enumerate(texts)])


FILTERS = {
    "reasons": reasons,
    "number": number,
    "brl": brl,
    "signed_brl": signed_brl,
    "percent": percent,
    "signed_pct": signed_pct,
    "change": change,
    "day": day,
    "when": when,
    "plural": plural,
}
