"""The overview's daily chart, drawn on the server as SVG: no charting library to download.

Three small multiples share the day axis: revenue bars on an R$ axis ("R$ 20 mil"), orders
bars on integer ticks, visits as a line broken where visits are unknown (a gap, never a
zero). The plot areas stretch to the page's width (`preserveAspectRatio="none"`); the axis
labels are HTML beside them, so text stays readable at 390 px. Each day has a native
tooltip ("26/11 · Receita R$ 17.521,70") and the figure has a text summary; the template
adds the full table as the text alternative.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from superseller.ptbr import brl, number, plural

STEPS = (1, 2, 2.5, 5, 10)
SLOT = 10  # viewBox units per day
HEIGHT = 100


def nice_ticks(top: float, count: int = 4, integer: bool = False) -> list[float]:
    """0 and a few round values up to at least `top` (1, 2, 2,5 or 5 × 10^k apart)."""
    if top <= 0:
        return [0, 1] if integer else [0, 1]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(s * power for s in STEPS if s * power >= raw)
    if integer:
        step = max(1, math.ceil(step))
    n = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(n + 1)]


def money_tick(value: float) -> str:
    """Axis labels: R$ 0, R$ 500, R$ 2,5 mil, R$ 20 mil, R$ 1,2 mi."""
    if value >= 1_000_000:
        return f"R$\u00a0{number(value / 1_000_000, 0 if value % 1_000_000 == 0 else 1)}\u00a0mi"
    if value >= 1000:
        return f"R$\u00a0{number(value / 1000, 0 if value % 1000 == 0 else 1)}\u00a0mil"
    return f"R$\u00a0{number(value)}"


def _day(iso: str) -> str:
    return date.fromisoformat(iso).strftime("%d/%m")


def _x_labels(series: list[dict]) -> list[dict]:
    n = len(series)
    every = max(1, math.ceil(n / 6))
    return [
        {"label": _day(s["date"]), "pct": (i * SLOT + SLOT / 2) / (n * SLOT) * 100}
        for i, s in enumerate(series)
        if i % every == 0
    ]


def _panel(series, key, title, fmt, tick_fmt, integer, kind) -> dict[str, Any]:
    values = [s[key] for s in series]
    known = [v for v in values if v is not None]
    ticks = nice_ticks(max(known, default=0), integer=integer)
    top = ticks[-1] or 1
    n = len(series)
    bars, hovers, segments, current = [], [], [], []
    for i, (s, v) in enumerate(zip(series, values, strict=True)):
        label = f"{_day(s['date'])} · {title} {fmt(v) if v is not None else 'desconhecidas'}"
        hovers.append({"x": i * SLOT, "w": SLOT, "title": label})
        if v is None:
            if current:
                segments.append(current)
            current = []
            continue
        h = v / top * HEIGHT
        if kind == "bar":
            bars.append({"x": i * SLOT + 1.5, "w": SLOT - 3, "y": HEIGHT - h, "h": h})
        else:
            current.append(f"{i * SLOT + SLOT / 2:g},{HEIGHT - h:.2f}")
    if current:
        segments.append(current)
    best = max(range(n), key=lambda i: (values[i] is not None, values[i] or 0), default=None)
    summary = f"{title} por dia, {_day(series[0]['date'])} a {_day(series[-1]['date'])}: "
    if not known:
        summary += "nenhum valor conhecido."
    else:
        total = sum(known)
        summary += f"total {fmt(total)}, maior {fmt(values[best])} em {_day(series[best]['date'])}"
        gaps = n - len(known)
        summary += f"; {plural(gaps, 'dia desconhecido', 'dias desconhecidos')}." if gaps else "."
    return {
        "key": key,
        "title": title,
        "kind": kind,
        "width": n * SLOT,
        "ticks": [{"label": tick_fmt(t), "pct": t / top * 100} for t in ticks],
        "grid": [HEIGHT - t / top * HEIGHT for t in ticks],
        "bars": bars,
        "lines": [" ".join(seg) for seg in segments if len(seg) > 1],
        "dots": [seg[0] for seg in segments if len(seg) == 1],
        "hovers": hovers,
        "summary": summary,
    }


def daily_chart(series: list[dict]) -> dict[str, Any] | None:
    """The chart's panels for the overview's `series`; None for an empty period."""
    if not series:
        return None
    return {
        "x": _x_labels(series),
        "panels": [
            _panel(series, "revenue", "Receita", brl, money_tick, False, "bar"),
            _panel(series, "orders", "Pedidos", number, number, True, "bar"),
            _panel(series, "visits", "Visitas", number, number, True, "line"),
        ],
    }
