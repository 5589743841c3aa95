"""The sandbox's public market: `GET /sites/MLB/search`, `GET /trends/MLB/{category_id}` and
`GET /questions/search?seller_id=…`.

Deterministic: competitors of a category are a pure function of (seed, category, index);
their titles share words with the query, so similarity has something to find; a price is a
function of (item, UTC day) and drops now and then (about 1 item-day in 12, by 15-30%), so
successive harvests see price changes. Questions repeat a handful of topics per item.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI, Request

from superseller.sandbox import data
from superseller.sandbox.data import _ADJ, _NOUNS, _h, _u

COMPETITORS_PER_CATEGORY = 60
SEARCH_LIMIT_MAX = 50
_TRENDS = ["promoção", "kit", "original", "barato", "frete grátis", "premium", "oferta"]
QUESTION_TOPICS = {
    "frete": ["Qual o valor do frete para {cep}?", "Vocês entregam em {cep}?", "Frete grátis?"],
    "estoque": ["Tem em estoque?", "Ainda tem disponível?", "Pronta entrega?"],
    "garantia": ["Tem garantia?", "Qual a garantia do produto?"],
    "nota": ["Emite nota fiscal?", "Vem com nota fiscal?"],
}


def competitor(seed: int, category_id: str, k: int, day) -> dict:
    noun = _NOUNS[_h(seed, "cat-noun", category_id) % len(_NOUNS)]
    if _h(seed, "stray", category_id, k) % 5 == 0:  # not every result is the same product
        noun = _NOUNS[_h(seed, "other", category_id, k) % len(_NOUNS)]
    adj = _ADJ[_h(seed, "cadj", category_id, k) % len(_ADJ)]
    base = 25 + (_h(seed, "base", category_id) % 300)
    price = base * (0.7 + 0.6 * _u(seed, "cp", category_id, k))
    if _u(seed, "drop", category_id, k, day.isoformat()) < 1 / 12:
        price *= 0.7 + 0.15 * _u(seed, "depth", category_id, k, day.isoformat())
    n = 5_000_000_000 + _h(seed, "cid", category_id, k) % 1_000_000_000
    return {
        "id": f"MLB{n}",
        "site_id": "MLB",
        "title": f"{noun} {adj} {k % 7 + 1}",
        "price": round(price, 2),
        "currency_id": "BRL",
        "category_id": category_id,
        "seller": {"id": 900_000_000 + _h(seed, "seller", category_id, k) % 50_000},
        "sold_quantity": _h(seed, "csold", category_id, k) % 2000,
        "available_quantity": 1 + _h(seed, "cq", category_id, k) % 50,
        "condition": "new",
        "permalink": f"https://produto.mercadolivre.com.br/MLB-{n}-_JM",
    }


def install(app: FastAPI) -> None:
    state = app.state.sandbox
    spec = state.spec

    @app.get("/sites/{site_id}/search")
    async def site_search(site_id: str, request: Request):
        q = request.query_params
        category, query = q.get("category"), (q.get("q") or "").lower()
        if not category and not query:
            return _bad("category or q is required")
        try:
            offset, limit = int(q.get("offset", 0)), int(q.get("limit", SEARCH_LIMIT_MAX))
        except ValueError:
            return _bad("offset and limit must be integers")
        if limit > SEARCH_LIMIT_MAX or offset < 0 or limit < 0:
            return _bad(f"limit must be <= {SEARCH_LIMIT_MAX}")
        day = state.now().date()
        cat = category or f"MLB{1000 + _h(spec.seed, 'qcat', query) % 40}"
        items = [competitor(spec.seed, cat, k, day) for k in range(COMPETITORS_PER_CATEGORY)]
        words = [w for w in query.split() if len(w) > 2]
        if words:  # relevance: items sharing more query words first, then by sales
            items.sort(key=lambda i: (-sum(w in i["title"].lower() for w in words), i["id"]))
        return {
            "site_id": site_id,
            "query": query or None,
            "paging": {
                "total": len(items),
                "primary_results": len(items),
                "offset": offset,
                "limit": limit,
            },
            "results": items[offset : offset + limit],
        }

    @app.get("/trends/{site_id}/{category_id}")
    async def trends(site_id: str, category_id: str):
        if not category_id.startswith(site_id) or not category_id[len(site_id) :].isdigit():
            return err(404, "not_found", f"Category {category_id} not found")
        noun = _NOUNS[_h(spec.seed, "cat-noun", category_id) % len(_NOUNS)].lower()
        words = sorted(_TRENDS, key=lambda w: _h(spec.seed, "trend", category_id, w))[:5]
        return [
            {
                "keyword": f"{noun} {w}",
                "url": f"https://lista.mercadolivre.com.br/{noun.replace(' ', '-')}-{w}",
            }
            for w in words
        ]

    @app.get("/questions/search")
    async def questions(request: Request):
        q = request.query_params
        if q.get("seller_id") != str(spec.user_id):
            return _bad("seller_id must be the authenticated seller")
        now = state.now()
        out = []
        for i in range(min(spec.listings, 40)):
            if _h(spec.seed, "asked", i) % 3:
                continue
            for j in range(2 + _h(spec.seed, "nq", i) % 4):
                topic = list(QUESTION_TOPICS)[_h(spec.seed, "qt", i, j) % 3]  # topics recur
                forms = QUESTION_TOPICS[topic]
                text = forms[_h(spec.seed, "qf", i, j) % len(forms)].format(cep="01310-100")
                out.append(
                    {
                        "id": 13_000_000_000 + i * 100 + j,
                        "item_id": data.item_id(spec, i),
                        "seller_id": spec.user_id,
                        "status": "UNANSWERED",
                        "text": text,
                        "date_created": (now - timedelta(hours=3 * j + i)).strftime(
                            "%Y-%m-%dT%H:%M:%S.000-04:00"
                        ),
                        "from": {"id": 700_000_000 + _h(spec.seed, "buyer", i, j) % 99_999},
                        "answer": None,
                    }
                )
        offset, limit = int(q.get("offset", 0)), min(int(q.get("limit", 50)), 50)
        return {
            "total": len(out),
            "limit": limit,
            "questions": out[offset : offset + limit],
            "filters": {"seller_id": spec.user_id},
        }


def err(status: int, error: str, message: str):
    from superseller.sandbox.app import err as app_err

    return app_err(status, error, message)


def _bad(message: str):
    return err(400, "bad_request", message)
