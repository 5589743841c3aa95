"""Deterministic sandbox data: a seller's listings, orders and visits.

Everything is a pure function of (seed, parameters, time), so two sandboxes
with the same seed agree, and the data keeps moving: orders and visits for a
moment exist once the sandbox clock has passed it. Orders follow a weekly and
daily rhythm (busier evenings, slower Sundays); some listings are paused,
some have clips, prices look like prices.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache

BRT = timezone(timedelta(hours=-3))  # order dates carry the local offset, as the API's do

_NOUNS = [
    "Fone Bluetooth",
    "Capa Celular",
    "Garrafa Térmica",
    "Luminária LED",
    "Mochila",
    "Tênis Corrida",
    "Relógio Digital",
    "Caixa de Som",
    "Carregador Turbo",
    "Mouse Gamer",
    "Teclado Mecânico",
    "Panela Antiaderente",
    "Kit Ferramentas",
    "Camiseta Algodão",
    "Tapete Yoga",
    "Suporte Notebook",
    "Cabo USB-C",
    "Smartwatch",
    "Ring Light",
    "Organizador",
]
_ADJ = [
    "Premium",
    "Original",
    "Profissional",
    "Compacto",
    "Resistente",
    "Sem Fio",
    "Kit 3",
    "Preto",
    "Azul",
    "Slim",
    "Ultra",
    "Com Garantia",
]
_WEEKDAY = [1.0, 1.05, 1.1, 1.1, 1.2, 0.9, 0.7]  # Mon..Sun
_HOUR = [
    0.2,
    0.1,
    0.1,
    0.05,
    0.05,
    0.1,
    0.3,
    0.6,
    0.9,
    1.1,
    1.2,
    1.2,
    1.3,
    1.2,
    1.1,
    1.1,
    1.2,
    1.3,
    1.5,
    1.8,
    2.0,
    1.9,
    1.4,
    0.7,
]


def _h(*parts) -> int:
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "big")


def _u(*parts) -> float:
    """A uniform number in [0, 1) from the parts."""
    return _h(*parts) / 2**64


@dataclass(frozen=True)
class SellerSpec:
    seed: int = 42
    user_id: int = 123456789
    nickname: str = "LOJA_SANDBOX"
    listings: int = 200
    history_days: int = 90
    orders_per_day: float = 60.0
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)  # when the sandbox clock began

    @property
    def history_start(self) -> datetime:
        return self.start - timedelta(days=self.history_days)


def item_id(spec: SellerSpec, i: int) -> str:
    return f"MLB{3000000000 + i}"


def item_index(spec: SellerSpec, ext: str) -> int | None:
    if not ext.startswith("MLB") or not ext[3:].isdigit():
        return None
    i = int(ext[3:]) - 3000000000
    return i if 0 <= i < spec.listings else None


@lru_cache(maxsize=100_000)
def item(spec: SellerSpec, i: int) -> dict:
    title = (
        f"{_NOUNS[_h(spec.seed, 'n', i) % len(_NOUNS)]} {_ADJ[_h(spec.seed, 'a', i) % len(_ADJ)]}"
    )
    price = round(19.9 + (_h(spec.seed, "p", i) % 480) + 0.0, 2) + (0.9 if i % 2 else 0.0)
    created = (
        spec.history_start
        - timedelta(days=30)
        + timedelta(days=int(_u(spec.seed, "c", i) * (spec.history_days + 25)))
    )
    paused = _h(spec.seed, "s", i) % 11 == 0
    pictures = 1 + _h(spec.seed, "pic", i) % 10
    return {
        "id": item_id(spec, i),
        "site_id": "MLB",
        "title": title,
        "seller_id": spec.user_id,
        "category_id": f"MLB{1000 + _h(spec.seed, 'cat', i) % 40}",
        "price": price,
        "base_price": price,
        "currency_id": "BRL",
        "initial_quantity": 100,
        "available_quantity": 0 if paused else 1 + _h(spec.seed, "q", i) % 80,
        "sold_quantity": _h(spec.seed, "sold", i) % 500,
        "buying_mode": "buy_it_now",
        "listing_type_id": ["gold_special", "gold_pro"][_h(spec.seed, "t", i) % 2],
        "condition": "new",
        "permalink": f"https://produto.mercadolivre.com.br/MLB-{3000000000 + i}-_JM",
        "thumbnail": f"http://http2.mlstatic.com/D_{i}-MLB{i}_012026-I.jpg",
        "pictures": [
            {"id": f"{i}-{k}", "url": f"http://http2.mlstatic.com/D_{i}_{k}-O.jpg"}
            for k in range(pictures)
        ],
        "video_id": None,  # clips are never in video_id
        "attributes": [
            {"id": f"ATTR{k}", "value_name": "x"} for k in range(_h(spec.seed, "attr", i) % 12)
        ],
        "status": "paused" if paused else "active",
        "sub_status": ["out_of_stock"] if paused else [],
        "date_created": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "last_updated": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "health": round(0.5 + _u(spec.seed, "h", i) / 2, 2),
        "_has_clip": _h(spec.seed, "clip", i) % 3 == 0,
    }


def _popularity(spec: SellerSpec, i: int) -> float:
    """A long tail: a few listings sell most."""
    return 1.0 / (1 + (_h(spec.seed, "pop", i) % spec.listings) / 8)


@lru_cache(maxsize=1)
def _popularity_table(spec: SellerSpec) -> tuple[list[int], list[float]]:
    weights = [
        0.0 if item(spec, i)["status"] == "paused" else _popularity(spec, i)
        for i in range(spec.listings)
    ]
    total = sum(weights) or 1.0
    cumulative, acc = [], 0.0
    for w in weights:
        acc += w / total
        cumulative.append(acc)
    return list(range(spec.listings)), cumulative


def _pick_listing(spec: SellerSpec, u: float) -> int:
    _, cumulative = _popularity_table(spec)
    lo, hi = 0, len(cumulative) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cumulative[mid] < u:
            lo = mid + 1
        else:
            hi = mid
    return lo


@lru_cache(maxsize=20_000)
def orders_in_hour(spec: SellerSpec, hour: int) -> tuple[dict, ...]:
    """Orders created in hour number `hour` (hours since the epoch, UTC)."""
    when = datetime.fromtimestamp(hour * 3600, UTC)
    local = when.astimezone(BRT)
    mean = spec.orders_per_day / 24 * _WEEKDAY[local.weekday()] * _HOUR[local.hour] / 0.96
    # A deterministic Poisson draw by inversion.
    u, k, p = _u(spec.seed, "n_orders", hour), 0, math.exp(-mean)
    acc = p
    while u > acc and k < 1000:
        k += 1
        p *= mean / k
        acc += p
    out = []
    for j in range(k):
        created = when + timedelta(seconds=int(_u(spec.seed, "sec", hour, j) * 3600))
        r = _u(spec.seed, "status", hour, j)
        status = (
            "paid"
            if r < 0.86
            else "cancelled"
            if r < 0.93
            else "partially_refunded"
            if r < 0.96
            else "payment_required"
        )
        n_items = 1 if _u(spec.seed, "multi", hour, j) < 0.85 else 2
        items = []
        for line in range(n_items):
            for salt in range(20):  # only listings that exist by then can sell
                i = _pick_listing(spec, _u(spec.seed, "which", hour, j, line, salt))
                it = item(spec, i)
                if it["date_created"] <= created.strftime("%Y-%m-%dT%H:%M:%S.000Z"):
                    break
            items.append(
                {
                    "item": {
                        "id": it["id"],
                        "title": it["title"],
                        "category_id": it["category_id"],
                        "variation_id": None,
                        "seller_sku": None,
                    },
                    "quantity": 1 + (_h(spec.seed, "qty", hour, j, line) % 10 == 0),
                    "unit_price": it["price"],
                    "currency_id": "BRL",
                }
            )
        total = round(sum(x["quantity"] * x["unit_price"] for x in items), 2)
        local_created = created.astimezone(BRT)
        closed = local_created + timedelta(seconds=2)
        out.append(
            {
                "id": 2000000000000000 + hour * 1000 + j,
                "status": status,
                "status_detail": None,
                "date_created": local_created.strftime("%Y-%m-%dT%H:%M:%S.000-03:00"),
                "date_closed": closed.strftime("%Y-%m-%dT%H:%M:%S.000-03:00"),
                "last_updated": closed.strftime("%Y-%m-%dT%H:%M:%S.000-03:00"),
                "total_amount": total,
                "paid_amount": total if status != "payment_required" else 0,
                "currency_id": "BRL",
                "order_items": items,
                "buyer": {"id": 80000000 + _h(spec.seed, "buyer", hour, j) % 1000000},
                "seller": {"id": spec.user_id, "nickname": spec.nickname},
                "tags": ["paid"] if status == "paid" else [],
                "_created": created,
            }
        )
    return tuple(out)


def orders_between(spec: SellerSpec, start: datetime, end: datetime, now: datetime) -> list[dict]:
    """Orders created in [start, end), only those that exist by `now`."""
    lo = max(start, spec.history_start)
    hi = min(end, now)
    out: list[dict] = []
    hour = int(lo.timestamp() // 3600)
    while hour * 3600 < hi.timestamp():
        out.extend(o for o in orders_in_hour(spec, hour) if lo <= o["_created"] < hi)
        hour += 1
    return out


def visits_on(spec: SellerSpec, i: int, day: date, now: datetime) -> int:
    """Unique visits of listing i on a local day (partial for today, 0 in the future)."""
    day_start = datetime(day.year, day.month, day.day, tzinfo=BRT)
    if day_start >= now or day_start < spec.history_start - timedelta(days=1):
        return 0
    it = item(spec, i)
    if datetime.fromisoformat(it["date_created"].replace("Z", "+00:00")) > day_start + timedelta(
        days=1
    ):
        return 0
    base = 400 * _popularity(spec, i) * _WEEKDAY[day.weekday()]
    if it["status"] == "paused":
        base *= 0.05
    n = int(base * (0.6 + 0.8 * _u(spec.seed, "v", i, day.toordinal())))
    if _u(spec.seed, "zero", i, day.toordinal()) < 0.15:
        n = 0
    elapsed = (now - day_start).total_seconds() / 86400
    return int(n * min(1.0, elapsed))
