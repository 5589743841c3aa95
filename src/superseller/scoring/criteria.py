"""The score's criteria, grouped in named dimensions, with their maximum points.

| dimension | criterion | max | full marks when |
| --- | --- | ---: | --- |
| cadastro | título | 10 | ≥ 45 of Mercado Livre's 60 characters, not all capitals |
| cadastro | atributos | 7 | ≥ 10 attributes filled |
| cadastro | tipo | 5 | Premium (`gold_pro`); Clássico 4, Grátis 1 |
| cadastro | preço | 3 | priced at most 10% above the median of ≥ 5 comparable items (market/prices.py); 10–25% above: 2, more: 1; without that reference, a price above zero |
| mídia | fotos | 15 | ≥ 8 pictures (6–7: 12, 3–5: 7, 1–2: 3) |
| mídia | clip | 10 | a clip is published |
| performance | conversão | 15 | 30-day conversion ≥ the tenant's median (proportional below) |
| performance | visitas | 15 | 30-day visits ≥ the tenant's median (proportional below) |
| disponibilidade | status | 10 | active |
| disponibilidade | estoque | 10 | ≥ 5 units and ≥ 7 days of cover (1–4 units: 5; < 7 days: 2; none: 0) |

Days of cover = stock ÷ the units sold per day over the last 30 days (`stock_cover_days`);
a listing that sold nothing has no cover limit, and only the fixed floor of 5 units applies.

The maxima add up to 100. A criterion whose data is unknown scores None ("sem dados") and leaves the
weighting: the score is 100 × points ÷ the maxima of the known criteria. No
placeholder points.
"""

from __future__ import annotations

from dataclasses import dataclass

from superseller.scoring.media import GALLERY_FULL, MediaVerdict

TITLE_MAX = 60
TITLE_FULL = 45
ATTRS_FULL = 10
STOCK_FULL = 5  # the floor, whatever the pace: fewer units is half marks
COVER_URGENT_DAYS = 7  # stock that lasts less at the current pace: restock first
SALES_WINDOW_DAYS = 30  # the pace is the units sold in this many local days, per day
LISTING_TYPES = {"gold_pro": ("Premium", 5), "gold_special": ("Clássico", 4), "free": ("Grátis", 1)}


@dataclass(frozen=True)
class PriceBand:
    """Latest prices of a listing's comparable items (superseller.market.prices)."""

    median: float
    q1: float
    q3: float
    count: int


MIN_COMPARABLES = 5  # fewer comparables: "sem referência"


def price_position(price: float | None, band: PriceBand | None) -> float | None:
    """How far the price is from the comparables' median (0.18 = 18% above), or None
    without a reference."""
    if not price or band is None or band.count < MIN_COMPARABLES or band.median <= 0:
        return None
    return price / band.median - 1


def price_phrase(price: float | None, band: PriceBand | None) -> str:
    pos = price_position(price, band)
    if pos is None:
        return "sem referência de preço"
    pct = round(abs(pos) * 100)
    where = "na mediana" if pct == 0 else f"{pct}% {'acima' if pos > 0 else 'abaixo'} da mediana"
    return f"seu preço está {where} de {band.count} anúncios parecidos"


def _price_points(price: float | None, band: PriceBand | None) -> tuple[int, str | None]:
    if not price or price <= 0:
        return 0, "Informe o preço do anúncio"
    pos = price_position(price, band)
    if pos is None or pos <= 0.10:
        return 3, None
    action = f"Revise o preço: {price_phrase(price, band)}"
    return (2 if pos <= 0.25 else 1), action


@dataclass(frozen=True)
class ListingFacts:
    listing_id: int
    external_id: str
    title: str
    attributes_count: int | None
    listing_type: str | None
    price: float | None
    media: MediaVerdict
    status: str
    stock: int | None
    visits_30d: int | None  # None: no day with known visits
    orders_30d: int
    median_visits: float | None  # the tenant's, over listings with known visits
    median_conversion: float | None
    price_band: PriceBand | None = None  # comparables' prices (market feature), if any
    units_30d: int | None = None  # units sold in the window; None: not known

    @property
    def conversion(self) -> float | None:
        return self.orders_30d / self.visits_30d if self.visits_30d else None

    @property
    def stock_cover_days(self) -> float | None:
        """How many days the stock lasts at the last 30 days' pace; None without a stock
        or without sales (no pace to run out at)."""
        if self.stock is None or not self.units_30d or self.units_30d <= 0:
            return None
        return self.stock / (self.units_30d / SALES_WINDOW_DAYS)


def runs_out_soon(f: ListingFacts) -> bool:
    """In stock, but for less than COVER_URGENT_DAYS at the current pace."""
    cover = f.stock_cover_days
    return bool(f.stock) and f.stock > 0 and cover is not None and cover < COVER_URGENT_DAYS


def cover_phrase(f: ListingFacts) -> str:
    """How long the stock lasts, in pt-BR: '4 unidades duram cerca de 2 dias no ritmo
    de 58 vendidas em 30 dias' (no brackets: it sits inside the explanation's own sentence). Only for a listing with a cover (stock_cover_days)."""
    days = int(f.stock_cover_days)  # whole days the stock surely lasts
    lasts = "menos de 1 dia" if days < 1 else f"cerca de {days} {'dia' if days == 1 else 'dias'}"
    units = f"{f.stock} {'unidade dura' if f.stock == 1 else 'unidades duram'}"
    sold = f"{f.units_30d} {'vendida' if f.units_30d == 1 else 'vendidas'}"
    return f"{units} {lasts} no ritmo de {sold} em {SALES_WINDOW_DAYS} dias"


@dataclass(frozen=True)
class Criterion:
    dimension: str
    key: str
    max_points: int
    points: int | None  # None: sem dados
    action: str | None = None  # what to do to recover the missing points

    @property
    def known(self) -> bool:
        return self.points is not None


def _proportional(value: float, full: float, max_points: int) -> int:
    return max_points if value >= full else round(max_points * value / full)


def cadastro(f: ListingFacts) -> list[Criterion]:
    length = len(f.title.strip())
    title = _proportional(length, TITLE_FULL, 10)
    shouting = f.title.isupper()
    if shouting:
        title //= 2
    title_action = None
    if title < 10:
        title_action = (
            "Reescreva o título sem usar só maiúsculas"
            if shouting and length >= TITLE_FULL
            else f"Use mais palavras-chave no título: ele tem {length} de {TITLE_MAX} caracteres"
        )
    attrs = None if f.attributes_count is None else _proportional(f.attributes_count, ATTRS_FULL, 7)
    missing_attrs = ATTRS_FULL - (f.attributes_count or 0)
    kind = LISTING_TYPES.get(f.listing_type or "")
    price_points, price_action = _price_points(f.price, f.price_band)
    return [
        Criterion("cadastro", "titulo", 10, title, title_action),
        Criterion(
            "cadastro",
            "atributos",
            7,
            attrs,
            f"Preencha mais {missing_attrs} atributos da ficha técnica"
            if attrs is not None and attrs < 7
            else None,
        ),
        Criterion(
            "cadastro",
            "tipo",
            5,
            kind[1] if kind else None,
            f"Troque o anúncio {kind[0]} por Premium" if kind and kind[1] < 5 else None,
        ),
        Criterion("cadastro", "preco", 3, price_points, price_action),
    ]


def _picture_points(n: int) -> int:
    return 15 if n >= GALLERY_FULL else 12 if n >= 6 else 7 if n >= 3 else 3 if n >= 1 else 0


def midia(f: ListingFacts) -> list[Criterion]:
    n = f.media.pictures
    photos = None if n is None else _picture_points(n)
    clip = {"has_clip": 10, "no_clip": 0}.get(f.media.clip_status)  # unknown: sem dados
    return [
        Criterion(
            "midia",
            "fotos",
            15,
            photos,
            f"Adicione mais {GALLERY_FULL - n} {'foto' if GALLERY_FULL - n == 1 else 'fotos'}"
            if photos is not None and photos < 15
            else None,
        ),
        # Only a known absence may produce this action (MediaVerdict).
        Criterion(
            "midia",
            "clip",
            10,
            clip,
            "Publique um clip (vídeo curto vertical)" if f.media.can_affirm_no_clip else None,
        ),
    ]


def performance(f: ListingFacts) -> list[Criterion]:
    conv, median_conv = f.conversion, f.median_conversion
    conv_points = None if conv is None or not median_conv else _proportional(conv, median_conv, 15)
    visits_points = (
        None
        if f.visits_30d is None or not f.median_visits
        else _proportional(f.visits_30d, f.median_visits, 15)
    )
    return [
        Criterion(
            "performance",
            "conversao",
            15,
            conv_points,
            "Melhore a conversão: revise preço, fotos e descrição"
            if conv_points is not None and conv_points < 15
            else None,
        ),
        Criterion(
            "performance",
            "visitas",
            15,
            visits_points,
            "Atraia mais visitas: título com as buscas do comprador e anúncios patrocinados"
            if visits_points is not None and visits_points < 15
            else None,
        ),
    ]


def disponibilidade(f: ListingFacts) -> list[Criterion]:
    active = f.status == "active"
    if f.stock is None:
        stock, stock_action = None, None
    elif runs_out_soon(f):
        stock, stock_action = 2, f"Reponha o estoque já: {cover_phrase(f)}"
    else:
        stock = 10 if f.stock >= STOCK_FULL else 5 if f.stock >= 1 else 0
        stock_action = f"Reponha o estoque (tem {f.stock}; o ideal é pelo menos {STOCK_FULL})"
    return [
        Criterion(
            "disponibilidade",
            "status",
            10,
            10 if active else 0,
            None if active else "Reative o anúncio",
        ),
        Criterion(
            "disponibilidade",
            "estoque",
            10,
            stock,
            stock_action if stock is not None and stock < 10 else None,
        ),
    ]


DIMENSIONS = (
    ("cadastro", "Cadastro", cadastro),
    ("midia", "Mídia", midia),
    ("performance", "Performance", performance),
    ("disponibilidade", "Disponibilidade", disponibilidade),
)
