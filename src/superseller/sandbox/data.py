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

BRT = timezone(timedelta(hours=-3))  # the seller's local day (visits count by it)
# Order dates carry an offset as the API's do, and every real MLB example shows -04:00
# (not Brasília's -03:00): a client that reads the offset cannot tell, one that assumes
# -03:00 would put orders near midnight on the wrong day.
ORDER_TZ = timezone(timedelta(hours=-4))

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
    price = round(19.9 + (_h(spec.seed, "p", i) % 480) + (0.9 if i % 2 else 0.0), 2)
    created = (
        spec.history_start
        - timedelta(days=30)
        + timedelta(days=int(_u(spec.seed, "c", i) * (spec.history_days + 25)))
    )
    paused = _h(spec.seed, "s", i) % 11 == 0
    pictures = 1 + _h(spec.seed, "pic", i) % 10
    created_s = created.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    category = f"MLB{1000 + _h(spec.seed, 'cat', i) % 40}"
    thumb_id = f"{600000 + i}-MLB{40000000000 + i}_012026"
    return {
        "id": item_id(spec, i),
        "site_id": "MLB",
        "title": title,
        "subtitle": None,
        "family_name": None,
        "seller_id": spec.user_id,
        "category_id": category,
        "user_product_id": f"MLBU{100000000 + i}",
        "official_store_id": None,
        "price": price,
        "base_price": price,
        "original_price": None,
        "inventory_id": None,
        "currency_id": "BRL",
        "initial_quantity": 100,
        "available_quantity": 0 if paused else 1 + _h(spec.seed, "q", i) % 80,
        "sold_quantity": _h(spec.seed, "sold", i) % 500,
        "sale_terms": [
            {
                "id": "WARRANTY_TYPE",
                "name": "Tipo de garantia",
                "value_id": "2230280",
                "value_name": "Garantia do vendedor",
                "value_struct": None,
                "values": [{"id": "2230280", "name": "Garantia do vendedor", "struct": None}],
                "value_type": "list",
            }
        ],
        "buying_mode": "buy_it_now",
        "listing_type_id": ["gold_special", "gold_pro"][_h(spec.seed, "t", i) % 2],
        "start_time": created_s,
        "stop_time": (created + timedelta(days=7300)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "end_time": (created + timedelta(days=7300)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "expiration_time": (created + timedelta(days=7300)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "condition": "new",
        "permalink": f"https://produto.mercadolivre.com.br/MLB-{3000000000 + i}-_JM",
        "thumbnail_id": thumb_id,
        "thumbnail": f"http://http2.mlstatic.com/D_{thumb_id}-I.jpg",
        "secure_thumbnail": f"https://http2.mlstatic.com/D_{thumb_id}-I.jpg",
        "pictures": [
            {
                "id": f"{600000 + i}-MLB{40000000000 + i * 10 + k}_012026",
                "url": f"http://http2.mlstatic.com/D_{600000 + i}-MLB{40000000000 + i * 10 + k}_012026-O.jpg",
                "secure_url": f"https://http2.mlstatic.com/D_{600000 + i}-MLB{40000000000 + i * 10 + k}_012026-O.jpg",
                "size": "500x500",
                "max_size": "1200x1200",
                "quality": "",
            }
            for k in range(pictures)
        ],
        "video_id": None,  # clips are never in video_id
        "descriptions": [{"id": f"{item_id(spec, i)}-{1400000000 + i}"}],
        "accepts_mercadopago": True,
        "non_mercado_pago_payment_methods": [],
        "shipping": {
            "mode": "me2",
            "methods": [],
            "tags": ["self_service_in", "mandatory_free_shipping"],
            "dimensions": None,
            "local_pick_up": False,
            "free_shipping": price >= 79,
            "logistic_type": "xd_drop_off",
            "store_pick_up": False,
        },
        "international_delivery_mode": "none",
        "seller_address": {
            "city": {"id": "BR-SP-44", "name": "São Paulo"},
            "state": {"id": "BR-SP", "name": "São Paulo"},
            "country": {"id": "BR", "name": "Brasil"},
            "search_location": {
                "neighborhood": {"id": "TUxCQlBJTjQ2NDk", "name": "Pinheiros"},
                "city": {"id": "TUxCQ1NBTzQyNzc", "name": "São Paulo"},
                "state": {"id": "TUxCUFNBT085N2E4", "name": "São Paulo"},
            },
            "latitude": -23.5613,
            "longitude": -46.6565,
            "id": 1200000000 + i,
        },
        "seller_contact": None,
        "location": {},
        "geolocation": {"latitude": -23.5613, "longitude": -46.6565},
        "coverage_areas": [],
        "attributes": [
            {
                "id": f"ATTR{k}",
                "name": f"Atributo {k}",
                "value_id": str(9000000 + k),
                "value_name": "x",
                "value_struct": None,
                "values": [{"id": str(9000000 + k), "name": "x", "struct": None}],
                "attribute_group_id": "OTHERS",
                "attribute_group_name": "Outros",
                "value_type": "string",
            }
            for k in range(_h(spec.seed, "attr", i) % 12)
        ],
        "warnings": [],
        "listing_source": "",
        "variations": [],
        "status": "paused" if paused else "active",
        "sub_status": ["out_of_stock"] if paused else [],
        "tags": ["good_quality_picture", "immediate_payment", "cart_eligible"],
        "warranty": "Garantia do vendedor: 90 dias",
        "catalog_product_id": None,
        "domain_id": f"MLB-{category}",
        "parent_item_id": None,
        "differential_pricing": None,
        "deal_ids": [],
        "automatic_relist": False,
        "date_created": created_s,
        "last_updated": created_s,
        "health": round(0.5 + _u(spec.seed, "h", i) / 2, 2),
        "catalog_listing": False,
        "channels": ["marketplace"],
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
                        "variation_attributes": [],
                        "seller_sku": None,
                        "seller_custom_field": None,
                        "condition": "new",
                        "warranty": "Garantia do vendedor: 90 dias",
                    },
                    "quantity": 1 + (_h(spec.seed, "qty", hour, j, line) % 10 == 0),
                    "requested_quantity": {"measure": "unit", "value": 1},
                    "unit_price": it["price"],
                    "full_unit_price": it["price"],
                    "currency_id": "BRL",
                    "sale_fee": round(it["price"] * (0.16 if line % 2 else 0.11), 2),
                    "listing_type_id": it["listing_type_id"],
                    "manufacturing_days": None,
                    "differential_pricing_id": None,
                    "base_currency_id": None,
                    "base_exchange_rate": None,
                }
            )
        total = round(sum(x["quantity"] * x["unit_price"] for x in items), 2)
        local_created = created.astimezone(ORDER_TZ)
        closed = local_created + timedelta(seconds=2)
        updated = closed + timedelta(seconds=1)
        oid = 2000000000000000 + hour * 1000 + j
        paid = total if status != "payment_required" else 0
        out.append(
            {
                "id": oid,
                "status": status,
                "status_detail": None,
                "date_created": order_time(local_created),
                "date_closed": order_time(closed),
                "last_updated": order_time(updated),
                "date_last_updated": utc_time(updated),
                "expiration_date": order_time(closed + timedelta(days=28)),
                "total_amount": total,
                "paid_amount": paid,
                "currency_id": "BRL",
                "buying_mode": "buy_equals_pay",
                "shipping_cost": None,
                "pack_id": None,
                "pickup_id": None,
                "fulfilled": None,
                "comment": None,
                "coupon": {"amount": 0, "id": None},
                "taxes": {"amount": None, "currency_id": None, "id": None},
                "feedback": {"sale": None, "purchase": None},
                "mediations": [],
                "context": {"channel": "marketplace", "site": "MLB", "flows": []},
                "shipping": {"id": 40000000000 + hour * 1000 + j},
                "order_request": {"return": None, "change": None},
                "order_items": items,
                "payments": [
                    {
                        "id": 50000000000 + hour * 1000 + j,
                        "order_id": oid,
                        "payer_id": 80000000 + _h(spec.seed, "buyer", hour, j) % 1000000,
                        "collector": {"id": spec.user_id},
                        "status": "approved" if status != "payment_required" else "pending",
                        "status_detail": "accredited",
                        "transaction_amount": total,
                        "total_paid_amount": paid,
                        "shipping_cost": 0,
                        "marketplace_fee": round(sum(x["sale_fee"] for x in items), 2),
                        "currency_id": "BRL",
                        "date_created": order_time(local_created),
                        "date_approved": order_time(closed),
                        "date_last_modified": order_time(updated),
                        "payment_method_id": "pix",
                        "payment_type": "bank_transfer",
                        "installments": 1,
                        "operation_type": "regular_payment",
                        "reason": items[0]["item"]["title"],
                    }
                ],
                "buyer": {"id": 80000000 + _h(spec.seed, "buyer", hour, j) % 1000000},
                "seller": {"id": spec.user_id, "nickname": spec.nickname},
                "tags": ["paid", "not_delivered"] if status == "paid" else [],
                "_created": created,
                "_updated": updated.astimezone(UTC),
            }
        )
    return tuple(out)


def order_time(d: datetime) -> str:
    """An order date as the API writes it: milliseconds and the -04:00 offset."""
    return d.astimezone(ORDER_TZ).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "-04:00"


def utc_time(d: datetime) -> str:
    """`date_last_updated`'s form: UTC with a Z."""
    return d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


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


def orders_by_id(spec: SellerSpec, ids: list[int], now: datetime) -> list[dict]:
    """The orders with these ids (an id encodes its creation hour), that exist by `now`."""
    out = []
    last_hour = int(now.timestamp() // 3600)
    for oid in ids:
        hour, j = divmod(oid - 2000000000000000, 1000)
        if not 0 <= hour <= last_hour:  # no order of ours: Mercado Livre answers 404
            continue
        out.extend(o for o in orders_in_hour(spec, hour) if o["id"] == oid and o["_created"] < now)
    return out


def visits_on(spec: SellerSpec, i: int, day: date, now: datetime) -> int:
    """Unique visits of listing i on a local day (partial for today, 0 in the future)."""
    return visits_of(spec, i, (day,), now)[0]


def visits_of(spec: SellerSpec, i: int, days, now: datetime) -> list[int]:
    """`visits_on` for several days of one listing: the listing's own facts are looked up
    once (a visits answer is one listing's days; the hub serves every seller's)."""
    created, popularity, paused = _visit_profile(spec, i)
    floor = spec.history_start - timedelta(days=1)
    out = []
    for day in days:
        day_start = datetime(day.year, day.month, day.day, tzinfo=BRT)
        if day_start >= now or day_start < floor or created > day_start + _DAY:
            out.append(0)
            continue
        o = day.toordinal()
        if _u(spec.seed, "zero", i, o) < 0.15:
            out.append(0)
            continue
        base = 400 * popularity * _WEEKDAY[day.weekday()]
        if paused:
            base *= 0.05
        n = int(base * (0.6 + 0.8 * _u(spec.seed, "v", i, o)))
        elapsed = (now - day_start).total_seconds() / 86400
        out.append(int(n * min(1.0, elapsed)))
    return out


_DAY = timedelta(days=1)


@lru_cache(maxsize=100_000)
def _visit_profile(spec: SellerSpec, i: int) -> tuple[datetime, float, bool]:
    """Listing i's creation time, popularity and whether it is paused."""
    it = item(spec, i)
    created = datetime.fromisoformat(it["date_created"].replace("Z", "+00:00"))
    return created, _popularity(spec, i), it["status"] == "paused"
