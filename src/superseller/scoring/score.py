"""A listing's score: points per dimension, one explanation sentence per dimension with
the numbers behind it, and actions ordered by the points each would recover."""

from __future__ import annotations

from typing import Any

from superseller.ptbr import number as br_number
from superseller.ptbr import percent as br_percent
from superseller.ptbr import plural
from superseller.scoring.criteria import (
    DIMENSIONS,
    LISTING_TYPES,
    TITLE_MAX,
    Criterion,
    ListingFacts,
    cover_phrase,
    price_phrase,
    runs_out_soon,
)

# "Excelente" is the top tier: almost nothing left to fix (at 80 nearly half of a typical
# catalogue was "Excelente", which told the seller nothing).
GRADES = ((90, "Excelente"), (75, "Bom"), (50, "Regular"), (0, "Crítico"))
STATUS_PT = {
    "paused": "pausado",
    "closed": "encerrado",
    "under_review": "em revisão",
    "inactive": "inativo",
    "not_yet_active": "ainda não ativo",
}


def action_rank(action: dict) -> tuple[int, int]:
    """What a seller does first: a listing nobody can buy (out of stock, then not active:
    Mercado Livre does not reactivate a listing with no stock, so restocking comes before
    reactivating), then one about to run out (less than a week of stock at its pace), before
    anything that only adds points; otherwise the biggest gain first."""
    if action["criterion"] == "estoque" and action.get("blocking"):
        return (0, -action["points"])
    if action["criterion"] == "status":
        return (1, -action["points"])
    if action["criterion"] == "estoque" and action.get("urgent"):
        return (2, -action["points"])
    return (3, -action["points"])


def _points_phrase(got: int, of: int) -> str:
    return f"{got} de {of} pontos"


def _explain(key: str, f: ListingFacts, crits: list[Criterion]) -> str:
    got = sum(c.points for c in crits if c.known)
    of = sum(c.max_points for c in crits if c.known)
    if not of and key == "midia":  # nothing known: say what is not verified
        photos = "fotos: não verificado" if f.media.pictures is None else "fotos"
        return f"Mídia: {photos} e {f.media.clip_phrase}; fora da conta."
    if not of:
        return {
            "performance": "Performance: sem dados de visitas nos últimos 30 dias; "
            "fora da conta até haver visitas conhecidas.",
        }.get(key, f"{key.capitalize()}: sem dados; fora da conta.")
    tally = _points_phrase(got, of)
    if key == "cadastro":
        kind = LISTING_TYPES.get(f.listing_type or "", (f.listing_type or "tipo desconhecido",))
        attrs = (
            "atributos: não verificado (fora da conta)"
            if f.attributes_count is None
            else f"{f.attributes_count} atributos preenchidos"
        )
        price = (
            f"preço R$ {br_number(f.price, 2)} ({price_phrase(f.price, f.price_band)})"
            if f.price and f.price > 0
            else "sem preço"
        )
        return (
            f"Cadastro: título com {len(f.title.strip())} de {TITLE_MAX} caracteres, "
            f"{attrs}, anúncio {kind[0]} e {price} — {tally}."
        )
    if key == "midia":
        photos = (  # unknown (absent from Mercado Livre's answer) is never "no photos"
            "fotos: não verificado (fora da conta)"
            if f.media.pictures is None
            else f"{f.media.pictures} {'foto' if f.media.pictures == 1 else 'fotos'}"
            f" ({f.media.gallery_label})"
        )
        clip = f.media.clip_phrase
        if f.media.clip_status == "unknown":
            clip += " (fora da conta)"
        return f"Mídia: {photos} e {clip} — {tally}."
    if key == "performance":
        conv = f.conversion
        visits = plural(f.visits_30d or 0, "visita", "visitas")
        parts = [f"{visits} e {plural(f.orders_30d, 'pedido', 'pedidos')} em 30 dias"]
        if conv is not None:
            parts.append(f"conversão {br_percent(conv)}")
        medians = []
        if f.median_conversion:
            medians.append(f"conversão {br_percent(f.median_conversion)}")
        if f.median_visits:
            medians.append(f"{br_number(f.median_visits)} visitas")
        if medians:
            parts.append(f"mediana da loja: {' e '.join(medians)}")
        return f"Performance: {'; '.join(parts)} — {tally}."
    status = "ativo" if f.status == "active" else STATUS_PT.get(f.status, "não ativo")
    stock = (
        "estoque não informado"
        if f.stock is None
        else f"{f.stock} {'unidade' if f.stock == 1 else 'unidades'} em estoque"
    )
    if f.stock and f.stock_cover_days is not None:
        stock = cover_phrase(f).replace(" dura", " em estoque, que dura", 1)

    return f"Disponibilidade: anúncio {status}, {stock} — {tally}."


def score_listing(f: ListingFacts) -> dict[str, Any]:
    dims = [(key, label, fn(f)) for key, label, fn in DIMENSIONS]
    known_max = sum(c.max_points for _, _, crits in dims for c in crits if c.known)
    got = sum(c.points for _, _, crits in dims for c in crits if c.known)
    total = round(100 * got / known_max) if known_max else None
    scale = 100 / known_max if known_max else 0
    dimensions, actions = [], []
    for key, label, crits in dims:
        known = [c for c in crits if c.known]
        dimensions.append(
            {
                "key": key,
                "label": label,
                "points": sum(c.points for c in known) if known else None,
                "maxPoints": sum(c.max_points for c in known) if known else None,
                "status": "ok" if known else "sem dados",
                "criteria": [
                    {"key": c.key, "points": c.points, "maxPoints": c.max_points} for c in crits
                ],
                "explanation": _explain(key, f, crits),
            }
        )
        for c in crits:
            if c.known and c.action and c.points < c.max_points:
                gain = round((c.max_points - c.points) * scale)
                if gain > 0:
                    action = {
                        "dimension": key,
                        "criterion": c.key,
                        "points": gain,
                        "text": f"{c.action} (+{gain} {'ponto' if gain == 1 else 'pontos'})",
                    }
                    if c.key == "estoque" and c.points == 0:
                        action["blocking"] = True  # out of stock: nobody can buy it
                    elif c.key == "estoque" and runs_out_soon(f):
                        action["urgent"] = True  # out of stock within the week
                    actions.append(action)
    actions.sort(key=action_rank)  # stable: dimension order breaks ties
    grade = None if total is None else next(g for floor, g in GRADES if total >= floor)
    return {
        "score": total,
        "grade": grade,
        "dimensions": dimensions,
        "actions": actions,
        "media": {
            "clipStatus": f.media.clip_status,
            "clipSource": f.media.clip_source,
            "clipLabel": f.media.clip_label,
            "pictures": f.media.pictures,
        },
    }
