"""A local imitation of the Mercado Livre API, faithful to shared/reference/mercadolivre-api.md.

- `/oauth/token`: form body; single-use rotating refresh tokens; `invalid_grant` bodies.
- `/authorization`: approves at once and redirects back with a code (the sandbox seller).
- `/users/{id}/items/search`: offset paging (offset >= 1000 refused), scan with
  expiring `scroll_id`s (limit <= 100), empty `results` at the end.
- `/items/{id}` and multiget `/items?ids=` (<= 20; `{code, body}` in request order).
- `/orders/search`: `seller` required, hour-truncated date filters, `limit` <= 51, sorts.
- `/items/{id}/visits/time_window`: sparse, unordered, N+1 days, 150-day cap.
- Errors in `{message, error, status, cause}`; fault injection (429 with and without
  Retry-After, 5xx, latency, a request-rate limit); `/_sandbox/*` controls for tests.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse

from superseller.sandbox import data, market
from superseller.sandbox.data import BRT, SellerSpec
from superseller.sandbox.notifier import Emitter, EmitterConfig, MissedFeed

TOKEN_TTL_S = 21600
_TICK = timedelta(microseconds=1)
SCROLL_TTL_S = 300


def err(status: int, error: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(
        {"message": message, "error": error, "status": status, "cause": []},
        status_code=status,
        headers=headers,
    )


@dataclass
class Faults:
    rate_429: float = 0.0
    retry_after_share: float = 0.5  # of the 429s, how many carry Retry-After
    retry_after_s: float = 0.05
    rate_500: float = 0.0
    latency_ms: float = 0.0
    requests_per_s: float = 0.0  # 0 = no limit
    visits_fail_ids: list[str] = field(default_factory=list)  # always 500 for these items
    visits_refuse_ids: list[str] = field(default_factory=list)  # always 403 for these items
    # item -> how many of its next visits calls answer 500 (a burst that passes)
    visits_fail_next: dict[str, int] = field(default_factory=dict)
    order_fail_ids: list[int] = field(default_factory=list)  # GET /orders/{id}: always 500
    token_429: int = 0  # the next N calls to /oauth/token answer 429 local_rate_limited
    token_retry_after_s: float | None = None  # ...with this Retry-After (None: without)
    scroll_invalid: int = 0  # the next N scan continuations answer 400 invalid.scroll.id
    # The next N authorization-code exchanges answer 400 invalid_grant (the code expired or
    # was already used), whoever the seller is.
    refuse_codes: int = 0


SEARCH_ORDERS = [
    {"id": f"{key}_{way}", "name": f"Order by {key.replace('_', ' ')} {name}"}
    for key in ("stop_time", "start_time", "available_quantity", "price", "last_updated")
    for way, name in (("asc", "ascending"), ("desc", "descending"))
] + [{"id": "inventory_id_asc", "name": "Order by inventory id ascending"}]


def _scroll_id() -> str:
    """Shaped like the real ones (three base64 parts joined by ':')."""
    parts = [secrets.token_bytes(n) for n in (12, 18, 40)]
    return ":".join(base64.b64encode(p).decode() for p in parts)


def _policy_403_body() -> dict:
    return {
        "message": "At least one policy returned UNAUTHORIZED",
        "error": "PA_UNAUTHORIZED_RESULT_FROM_POLICIES",
        "status": 403,
        "cause": [],
    }


def _policy_403() -> JSONResponse:
    return JSONResponse(_policy_403_body(), status_code=403)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class SandboxState:
    spec: SellerSpec
    client_id: str = "sandbox-app"
    client_secret: str = "sandbox-secret"
    token_ttl_s: int = TOKEN_TTL_S
    scroll_ttl_s: float = SCROLL_TTL_S
    offset_s: float = 0.0
    frozen_at: datetime | None = None  # tests pin the sandbox's "now"
    faults: Faults = field(default_factory=Faults)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    codes: dict[str, int] = field(default_factory=dict)
    challenges: dict[str, str] = field(default_factory=dict)  # code -> PKCE S256 challenge
    access: dict[str, tuple[int, float]] = field(default_factory=dict)  # token -> (user, expiry)
    latest_refresh: dict[int, str] = field(default_factory=dict)  # user -> only valid token
    # Sellers who revoked the app: their grant is dead (tokens, refresh token, codes not yet
    # exchanged) until they authorize the app again, which issues a new grant.
    revoked: set[int] = field(default_factory=set)
    scrolls: dict[str, tuple[int, float]] = field(default_factory=dict)
    # Orders changed after their creation (the "old orders change" mode):
    # id -> (new status, when); they then carry the new status and date_last_updated.
    order_changes: dict[int, tuple[str, datetime]] = field(default_factory=dict)
    hidden_items: set[str] = field(default_factory=set)  # not in items/search, fetchable
    deleted_items: set[str] = field(default_factory=set)  # 404 everywhere
    forbidden_items: set[str] = field(default_factory=set)  # 403 PolicyAgent in multiget
    invalid_grants: int = 0  # alternates the two real invalid_grant bodies
    login_as: int | None = None  # the next authorization approves this user (then resets)
    stats: dict[str, int] = field(
        default_factory=lambda: {"requests": 0, "refreshes": 0, "429": 0, "500": 0}
    )
    _bucket: list[float] = field(default_factory=lambda: [0.0, 0.0])
    # When each API request arrived and when each rate-limit 429 was sent (epoch seconds):
    # what a test checks an app-wide limit against.
    request_times: list[float] = field(default_factory=list)
    limited_times: list[float] = field(default_factory=list)
    # Every API request as (epoch seconds, path, query): what a test counts re-fetches by.
    request_log: list[tuple[float, str, str]] = field(default_factory=list)
    # Sellers of other sizes than the spec's (user id -> listings, at most the spec's):
    # one sandbox serves a fleet of big and small sellers.
    listings_of: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Sales made on demand (`/_sandbox/sell`), item edits (`/_sandbox/edit-item`), how many
    # times each order was fetched by id, and the notification emitter (sandbox/notifier.py).
    extra_orders: dict[int, dict] = field(default_factory=dict)
    item_edits: dict[str, dict] = field(default_factory=dict)
    # Each item's edits before the last one, and how many of its next fetches answer the
    # version before the last edit (`/_sandbox/stale-items`: a lagging read replica).
    item_history: dict[str, list[dict]] = field(default_factory=dict)
    stale_items: dict[str, int] = field(default_factory=dict)
    order_fetches: dict[int, int] = field(default_factory=dict)
    emitter: Any = None
    # What /missed_feeds lists: the application's, so a fleet of sellers shares one.
    missed_feed: MissedFeed = field(default_factory=MissedFeed)

    def orders_between(self, start: datetime, end: datetime, now: datetime) -> list[dict]:
        """Orders created in [start, end) that exist by `now`: generated and sold ones."""
        found = data.orders_between(self.spec, start, end, now)
        extra = [
            o for o in self.extra_orders.values() if start <= o["_created"] < min(end, now + _TICK)
        ]
        return found + extra

    def orders_by_id(self, ids: list[int], now: datetime) -> list[dict]:
        extra = [self.extra_orders[i] for i in ids if i in self.extra_orders]
        generated = [i for i in ids if i not in self.extra_orders]
        return data.orders_by_id(self.spec, generated, now) + extra

    def notify(self, topic: str, resource: str) -> None:
        if self.emitter is not None:
            self.emitter.add(topic, resource)

    def current_order(self, o: dict) -> dict:
        """The order as it is now: a change made later shows in status and update dates."""
        change = self.order_changes.get(o["id"])
        if change is None:
            return o
        status, when = change
        paid = o["total_amount"] if status == "paid" else 0
        if status == "partially_refunded":
            paid = round(o["total_amount"] / 2, 2)
        return {
            **o,
            "status": status,
            "paid_amount": paid,
            "tags": [t for t in o["tags"] if t != "paid"],
            "last_updated": data.order_time(when),
            "date_last_updated": data.utc_time(when),
            "_updated": when,
        }

    def now(self) -> datetime:
        if self.frozen_at is not None:
            return self.frozen_at + timedelta(seconds=self.offset_s)
        return datetime.now(UTC) + timedelta(seconds=self.offset_s)

    def end_grant(self, user: int) -> None:
        """Kill `user`'s grant: every access token, the refresh token, the codes handed out
        and not yet exchanged (the caller holds the lock)."""
        for tok, (who, _) in list(self.access.items()):
            if who == user:
                del self.access[tok]
        self.latest_refresh.pop(user, None)
        for code, who in list(self.codes.items()):
            if who == user:
                del self.codes[code]
                self.challenges.pop(code, None)

    def issue(self, user: int) -> dict[str, Any]:
        access = f"APP_USR-{secrets.token_hex(12)}-{user}"
        refresh = f"TG-{secrets.token_hex(12)}-{user}"
        self.access[access] = (user, time.time() + self.token_ttl_s)
        self.latest_refresh[user] = refresh
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.token_ttl_s,
            "scope": "offline_access read write",
            "user_id": user,
            "refresh_token": refresh,
        }


def create_app(spec: SellerSpec | None = None, state: SandboxState | None = None) -> FastAPI:
    state = state or SandboxState(spec or SellerSpec())
    spec = state.spec
    app = FastAPI(title="Mercado Livre sandbox", docs_url=None, redoc_url=None)
    app.state.sandbox = state

    @app.middleware("http")
    async def faults(request: Request, call_next):
        path = request.url.path
        if path.startswith("/_sandbox") or path == "/authorization":
            return await call_next(request)
        f = state.faults
        with state.lock:
            state.stats["requests"] += 1
            arrived = time.time()
            state.request_times.append(arrived)
            state.request_log.append((arrived, path, request.url.query))
            limited = False
            if f.requests_per_s:
                tokens, last = state._bucket
                now = time.monotonic()
                tokens = min(f.requests_per_s, tokens + (now - last) * f.requests_per_s)
                limited = tokens < 1
                state._bucket[:] = [tokens if limited else tokens - 1, now]
                if limited:
                    state.limited_times.append(arrived)
            roll = state.rng.random()
            with_retry_after = state.rng.random() < f.retry_after_share
        if path == "/oauth/token" and f.token_429 > 0:
            with state.lock:
                f.token_429 -= 1
                state.stats["429"] += 1
            headers = (
                {"Retry-After": f"{f.token_retry_after_s:g}"}
                if f.token_retry_after_s is not None
                else None
            )
            return JSONResponse(
                {"status": 429, "error": "local_rate_limited"}, status_code=429, headers=headers
            )
        if f.latency_ms:
            await asyncio.sleep(f.latency_ms / 1000)
        if limited or roll < f.rate_429:
            state.stats["429"] += 1
            if path == "/oauth/token":
                return JSONResponse({"error": "local_rate_limited"}, status_code=429)
            headers = {"Retry-After": f"{f.retry_after_s:g}"} if with_retry_after else None
            return err(429, "too_many_requests", "Too Many Requests", headers)
        if roll < f.rate_429 + f.rate_500:
            state.stats["500"] += 1
            return err(500, "internal_server_error", "Internal Server Error")
        return await call_next(request)

    def owner(request: Request) -> int | JSONResponse:
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        entry = state.access.get(token)
        if entry is None or entry[1] < time.time() or entry[0] in state.revoked:
            return err(401, "unauthorized_request_error", "invalid access token")
        return entry[0]

    # -- OAuth ---------------------------------------------------------------
    @app.get("/authorization")
    async def authorization(
        response_type: str = "code",
        client_id: str = "",
        redirect_uri: str = "",
        state_: str | None = None,
        request: Request = None,
    ):
        if client_id != state.client_id or response_type != "code" or not redirect_uri:
            return err(400, "invalid_request", "bad authorization request")
        with state.lock:
            user = state.login_as or spec.user_id
            state.login_as = None
            if user in state.revoked:
                # The seller authorizes the app again (as on Mercado Livre): a new grant. The
                # old one stays dead: its tokens go (a test may have marked the revocation
                # in `revoked` by hand, without `/_sandbox/revoke` ending the grant).
                state.end_grant(user)
                state.revoked.discard(user)
        code = f"TG-{secrets.token_hex(10)}-{user}"
        state.codes[code] = user
        challenge = request.query_params.get("code_challenge")
        if challenge:  # PKCE (S256): the exchange must present the matching verifier
            state.challenges[code] = challenge
        st = request.query_params.get("state")
        sep = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{sep}code={code}" + (f"&state={st}" if st else ""))

    @app.post("/oauth/token")
    async def token(request: Request):
        form = await request.form()
        # Both real shapes: the documented `error_description`, and `message` (seen live).
        text = (
            "Error validating grant. Your authorization code or "
            "refresh token may be expired or it was already used"
        )
        state.invalid_grants += 1
        key = "error_description" if state.invalid_grants % 2 else "message"
        invalid = {key: text, "error": "invalid_grant", "status": 400, "cause": []}
        if (
            form.get("client_id") != state.client_id
            or form.get("client_secret") != state.client_secret
        ):
            return JSONResponse(
                {
                    "message": "invalid client_id or client_secret",
                    "error": "invalid_client",
                    "status": 401,
                    "cause": [],
                },
                status_code=401,
            )
        grant = form.get("grant_type")
        with state.lock:
            if grant == "authorization_code":
                user = state.codes.pop(form.get("code", ""), None)  # single use
                challenge = state.challenges.pop(form.get("code", ""), None)
                if state.faults.refuse_codes > 0:
                    state.faults.refuse_codes -= 1
                    return JSONResponse(invalid, status_code=400)
                if user is None or user in state.revoked:
                    return JSONResponse(invalid, status_code=400)
                if challenge is not None and _s256(form.get("code_verifier", "")) != challenge:
                    return JSONResponse(invalid, status_code=400)
                return state.issue(user)
            if grant == "refresh_token":
                presented = form.get("refresh_token", "")
                user = next((u for u, t in state.latest_refresh.items() if t == presented), None)
                if user is None or user in state.revoked:
                    return JSONResponse(invalid, status_code=400)
                state.stats["refreshes"] += 1
                return state.issue(user)  # rotates: the presented token is now dead
        return JSONResponse(
            {
                "message": "unsupported grant type",
                "error": "unsupported_grant_type",
                "status": 400,
                "cause": [],
            },
            status_code=400,
        )

    # -- items ---------------------------------------------------------------
    @app.get("/users/{user_id}/items/search")
    async def items_search(user_id: int, request: Request):
        who = owner(request)
        if isinstance(who, JSONResponse):
            return who
        if who != user_id:
            return err(403, "forbidden", "access to the requested resource is forbidden")
        q = request.query_params
        ids = [
            x
            for x in (
                data.item_id(spec, i)
                for i in range(min(spec.listings, state.listings_of.get(user_id, spec.listings)))
            )
            if x not in state.hidden_items and x not in state.deleted_items
        ]
        status = q.get("status")
        if status:
            ids = [x for x in ids if data.item(spec, data.item_index(spec, x))["status"] == status]
        try:
            limit = int(q.get("limit", 50))
            offset = int(q.get("offset", 0))
        except ValueError:
            return err(400, "bad_request", "invalid paging parameters")
        paging = {"total": len(ids)}
        if q.get("search_type") == "scan":
            if limit > 100:
                return err(400, "bad_request", "limit must be lower or equal than 100 for scan")
            now = time.time()
            scroll = q.get("scroll_id")
            if scroll:
                with state.lock:
                    entry = state.scrolls.pop(scroll, None)
                    injected = state.faults.scroll_invalid > 0
                    if injected:
                        state.faults.scroll_invalid -= 1
                if injected or entry is None or entry[1] < now:
                    # The docs' error table: an expired or malformed scroll is a 400.
                    return err(400, "invalid.scroll.id", "Invalid scroll_id")
                pos = entry[0]
            else:
                pos = 0
            page = ids[pos : pos + limit]
            new_scroll = ""  # the end: empty results and an empty scroll_id
            if page:
                new_scroll = _scroll_id()
                state.scrolls[new_scroll] = (pos + len(page), now + state.scroll_ttl_s)
            return {
                "seller_id": str(user_id),
                "query": None,
                "paging": {**paging, "limit": limit},
                "results": page,
                "orders": [SEARCH_ORDERS[0]],
                "available_orders": SEARCH_ORDERS,
                "scroll_id": new_scroll,
            }
        if offset >= 1000 or offset + limit > 1000:
            return err(400, "bad_request", "offset must be lower than 1000; use search_type=scan")
        return {
            "seller_id": str(user_id),
            "query": None,
            "paging": {**paging, "offset": offset, "limit": limit},
            "results": ids[offset : offset + limit],
            "orders": [SEARCH_ORDERS[0]],
            "available_orders": SEARCH_ORDERS,
        }

    def public_item(i: int) -> dict:
        body = {k: v for k, v in data.item(spec, i).items() if not k.startswith("_")}
        ext = body["id"]
        # (no lock: callers may hold state.lock; the handlers run on one event loop)
        if state.stale_items.get(ext, 0) > 0:
            state.stale_items[ext] -= 1
            earlier = state.item_history.get(ext) or [{}]
            return {**body, **earlier[-1]}
        return {**body, **state.item_edits.get(ext, {})}

    def index_of(ext: str) -> int | None:
        return None if ext in state.deleted_items else data.item_index(spec, ext)

    @app.get("/users/me")
    async def users_me(request: Request):
        who = owner(request)
        if isinstance(who, JSONResponse):
            return who
        return {
            "id": who,
            "nickname": spec.nickname,
            "registration_date": "2019-03-11T10:02:27.000-04:00",
            "first_name": "Loja",
            "last_name": "Sandbox",
            "country_id": "BR",
            "email": f"{spec.nickname.lower()}@sandbox.invalid",
            "identification": {"type": "CNPJ", "number": "00000000000191"},
            "address": {
                "state": "BR-SP",
                "city": "São Paulo",
                "address": "Rua Teste 123",
                "zip_code": "05422000",
            },
            "phone": {
                "area_code": "11",
                "number": "99999-0000",
                "extension": "",
                "verified": False,
            },
            "alternative_phone": {"area_code": "", "number": "", "extension": ""},
            "user_type": "normal",
            "tags": ["normal", "messages_as_seller"],
            "logo": None,
            "points": 100,
            "site_id": "MLB",
            "permalink": f"http://perfil.mercadolivre.com.br/{spec.nickname}",
            "seller_experience": "ADVANCED",
            "seller_reputation": {
                "level_id": "5_green",
                "power_seller_status": None,
                "transactions": {
                    "period": "historic",
                    "total": 0,
                    "completed": 0,
                    "canceled": 0,
                    "ratings": {"positive": 0, "negative": 0, "neutral": 0},
                },
            },
            "buyer_reputation": {
                "canceled_transactions": 0,
                "transactions": {
                    "period": "historic",
                    "total": None,
                    "completed": None,
                    "canceled": {"total": None, "paid": None},
                    "unrated": {"total": None, "paid": None},
                    "not_yet_rated": {"total": None, "paid": None, "units": None},
                },
                "tags": [],
            },
            "status": {"site_status": "active"},
        }

    @app.get("/items/visits")
    async def item_visits(request: Request):
        """One id only; the total of [date_from, date_to] (the docs' error table)."""
        who = owner(request)
        if isinstance(who, JSONResponse):
            return who
        q = request.query_params
        wanted = [x for x in q.get("ids", "").split(",") if x]
        if len(wanted) != 1:
            return err(400, "validation_parameters", "maximum amount of items to query is 1")
        i = index_of(wanted[0])
        if i is None:
            return err(400, "bad_request", f"Invalid item ID format: {wanted[0]}")
        try:
            first = date.fromisoformat(q.get("date_from", ""))
            last = date.fromisoformat(q.get("date_to", ""))
        except ValueError:
            return err(400, "bad_request", "unknown date format")
        if (last - first).days > 150:
            return err(
                400, "bad_request", "invalid time window, should be smaller or equal to 150 days"
            )
        now = state.now()
        total = sum(
            data.visits_of(
                spec, i, [first + timedelta(days=k) for k in range((last - first).days + 1)], now
            )
        )
        return {
            "item_id": wanted[0],
            "date_from": f"{first.isoformat()}T00:00:00Z",
            "date_to": f"{last.isoformat()}T00:00:00Z",
            "total_visits": total,
            "visits_detail": [{"company": "mercadolibre", "quantity": total}],
        }

    @app.get("/visits/items")
    async def visits_items(request: Request):
        """Totals of the last two years, `{id: total}`; date parameters are ignored."""
        who = owner(request)
        if isinstance(who, JSONResponse):
            return who
        now = state.now()
        today = now.astimezone(BRT).date()
        out = {}
        for ext in [x for x in request.query_params.get("ids", "").split(",") if x][:50]:
            i = index_of(ext)
            if i is not None:
                out[ext] = sum(
                    data.visits_of(
                        spec,
                        i,
                        [today - timedelta(days=k) for k in range(spec.history_days + 2)],
                        now,
                    )
                )
        return out

    @app.get("/items/{item_id}")
    async def get_item(item_id: str, request: Request):
        who = owner(request)
        if isinstance(who, JSONResponse):
            return who
        i = index_of(item_id)
        if i is None:
            return err(404, "not_found", f"Item with id {item_id} not found")
        if item_id in state.forbidden_items:
            return _policy_403()
        return public_item(i)

    @app.get("/items")
    async def multiget(request: Request, ids: str = ""):
        who = owner(request)
        if isinstance(who, JSONResponse):
            return who
        wanted = [x for x in ids.split(",") if x]
        if not wanted or len(wanted) > 20:
            return err(400, "bad_request", "ids must hold between 1 and 20 item ids")
        attrs = [a for a in request.query_params.get("attributes", "").split(",") if a]
        out = []
        for ext in wanted:
            i = index_of(ext)
            if i is None:
                out.append(
                    {
                        "code": 404,
                        "body": {
                            "id": ext,
                            "message": f"Item with id {ext} not found",
                            "error": "not_found",
                            "status": 404,
                            "cause": [],
                        },
                    }
                )
                continue
            if ext in state.forbidden_items:
                out.append({"code": 403, "body": {"id": ext, **_policy_403_body()}})
                continue
            body = public_item(i)
            if attrs:
                body = {k: v for k, v in body.items() if k in attrs}
            out.append({"code": 200, "body": body})
        return out

    @app.get("/marketplace/items/{item_id}/clips")
    async def clips(item_id: str, request: Request):
        who = owner(request)
        if isinstance(who, JSONResponse):
            return who
        i = data.item_index(spec, item_id)
        if i is None:
            return JSONResponse(
                {
                    "message": f"Item not found: {item_id}",
                    "error_status": "not_found",
                    "status": 404,
                },
                status_code=404,
            )
        has = data.item(spec, i)["_has_clip"]
        return {
            "parent_item_id": item_id,
            "clips": [
                {
                    "clip_uuid": f"clip-{i}",
                    "metadata": [
                        {"site_id": "MLB", "item_id": item_id, "moderation_status": "PUBLISHED"}
                    ],
                }
            ]
            if has
            else [],
        }

    # -- orders --------------------------------------------------------------
    @app.get("/orders/search")
    async def orders_search(request: Request):
        who = owner(request)
        if isinstance(who, JSONResponse):
            return who
        q = request.query_params
        seller = q.get("seller")
        if not seller:
            return err(400, "bad_request", "seller or buyer is required")
        if int(seller) != who:
            return err(403, "forbidden", "caller.id.invalid")
        try:
            limit = int(q.get("limit", 50))
            offset = int(q.get("offset", 0))
        except ValueError:
            return err(400, "bad_request", "invalid paging parameters")
        if limit > 51:
            return err(400, "bad_request", "Limit must be a lower or equal than 51")

        def hour_floor(name: str, default: datetime | None) -> datetime | None | JSONResponse:
            raw = q.get(name)
            if not raw:
                return default
            try:
                dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                return err(400, "bad_request", f"invalid date in {name}")
            return dt.replace(minute=0, second=0, microsecond=0)  # the API keeps the hour only

        now = state.now()
        start = hour_floor("order.date_created.from", spec.history_start)
        end = hour_floor("order.date_created.to", now)
        upd_from = hour_floor("order.date_last_updated.from", None)
        upd_to = hour_floor("order.date_last_updated.to", now)
        for v in (start, end, upd_from, upd_to):
            if isinstance(v, JSONResponse):
                return v
        if upd_from is not None:  # unchanged orders were last updated 3 s after creation
            start = max(start, upd_from - timedelta(hours=1))
        found = [
            state.current_order(o)
            for o in state.orders_between(start, end + timedelta(microseconds=1), now)
        ]
        if upd_from is not None:
            # An order's last update is its creation (+3 s) unless it changed later.
            changed = [
                state.current_order(o) for o in state.orders_by_id(list(state.order_changes), now)
            ]
            recent = {o["id"]: o for o in found}
            recent.update({o["id"]: o for o in changed})
            stop = upd_to + timedelta(microseconds=1)
            found = [o for o in recent.values() if upd_from <= o["_updated"] < stop]
        wanted = q.get("order.status")
        if wanted:
            found = [o for o in found if o["status"] in wanted.split(",")]
        sort = q.get("sort", "date_asc")
        found.sort(key=lambda o: (o["date_closed"], o["id"]), reverse=sort == "date_desc")
        page = [
            {k: v for k, v in o.items() if not k.startswith("_")}
            for o in found[offset : offset + limit]
        ]
        sorts = {"date_asc": "Date ascending", "date_desc": "Date descending"}
        return {
            "query": None,
            "results": page,
            "sort": {"id": sort, "name": sorts.get(sort, sort)},
            "available_sorts": [{"id": k, "name": v} for k, v in sorts.items() if k != sort],
            "filters": [],
            "paging": {"total": len(found), "offset": offset, "limit": limit},
            "display": "complete",
        }

    @app.post("/_sandbox/change-orders")
    async def change_orders(request: Request):
        """Change orders older than `older_than_days` now (the "old orders change" mode):
        the newest `count` paid ones before that age get `status` (cancelled |
        partially_refunded), or the orders `ids`."""
        body = await request.json()
        status = body.get("status", "cancelled")
        now = state.now()
        before = now - timedelta(days=float(body.get("older_than_days", 40)))
        ids = [int(x) for x in body.get("ids") or []]
        if not ids:
            # The newest orders older than the cut-off (just outside a sync window).
            candidates = data.orders_between(spec, before - timedelta(days=7), before, now)
            ids = [
                o["id"]
                for o in reversed(candidates)
                if o["status"] == "paid" and o["id"] not in state.order_changes
            ][: int(body.get("count", 1))]
        with state.lock:
            for oid in ids:
                state.order_changes[oid] = (status, now)
        for oid in ids:
            state.notify("orders_v2", f"/orders/{oid}")
        return {"ids": ids, "status": status, "at": now.isoformat()}

    @app.post("/_sandbox/items")
    async def set_items(request: Request):
        """Items hidden from items/search (but fetchable), deleted (404) or forbidden (403)."""
        body = await request.json()
        state.hidden_items = set(body.get("hidden") or [])
        state.deleted_items = set(body.get("deleted") or [])
        state.forbidden_items = set(body.get("forbidden") or [])
        return {"ok": True}

    # -- visits --------------------------------------------------------------
    @app.get("/items/{item_id}/visits/time_window")
    async def visits(
        item_id: str, request: Request, last: int = 30, unit: str = "day", ending: str | None = None
    ):
        who = owner(request)
        if isinstance(who, JSONResponse):
            return who
        i = index_of(item_id)
        if i is None:
            return err(404, "not_found", "Item not found")
        if item_id in state.faults.visits_fail_ids:
            return err(500, "internal_server_error", "Internal Server Error")
        if item_id in state.faults.visits_refuse_ids:
            return err(403, "forbidden", "You are not allowed to see this item's visits")
        with state.lock:
            burst = state.faults.visits_fail_next.get(item_id, 0)
            if burst:
                state.faults.visits_fail_next[item_id] = burst - 1
        if burst:
            return err(500, "internal_server_error", "Internal Server Error")
        if last > 150 or last < 1:
            return err(
                400, "bad_request", "invalid time window, should be smaller or equal to 150 days"
            )
        now = state.now()
        if ending:
            try:
                end_day = date.fromisoformat(ending)
            except ValueError:
                return err(400, "bad_request", "invalid date format for ending date")
        else:
            end_day = now.astimezone(BRT).date()
        days = [end_day - timedelta(days=k) for k in range(last + 1)]  # N+1 days, inclusive
        results = []
        for d, n in zip(days, data.visits_of(spec, i, days, now), strict=True):
            if n:  # sparse: zero days are omitted
                results.append(
                    {
                        "date": f"{d.isoformat()}T00:00:00Z",
                        "total": n,
                        "visits_detail": [{"company": "mercadolibre", "quantity": n}],
                    }
                )
        random.Random(hash((item_id, last))).shuffle(results)  # and not in order
        return {
            "item_id": item_id,
            "date_from": f"{days[-1].isoformat()}T00:00:00Z",
            "date_to": f"{end_day.isoformat()}T00:00:00Z",
            "total_visits": sum(r["total"] for r in results),
            "last": last,
            "unit": "day",
            "results": results,
        }

    # -- sandbox controls ----------------------------------------------------
    @app.post("/_sandbox/faults")
    async def set_faults(request: Request):
        body = await request.json()
        state.faults = Faults(**body)
        return {"ok": True}

    @app.post("/_sandbox/token-ttl")
    async def set_ttl(request: Request):
        state.token_ttl_s = int((await request.json())["seconds"])
        return {"ok": True}

    @app.post("/_sandbox/expire-tokens")
    async def expire_tokens():
        with state.lock:
            for tok, (user, _) in list(state.access.items()):
                state.access[tok] = (user, 0.0)
        return {"ok": True}

    @app.post("/_sandbox/revoke")
    async def revoke(request: Request):
        """The seller revokes the app: its grant ends (access and refresh tokens refused from
        now on); authorizing the app again later issues a new grant."""
        body = await request.json()
        user = int(body.get("user_id", spec.user_id))
        with state.lock:
            state.revoked.add(user)
            state.end_grant(user)
        return {"ok": True}

    @app.post("/_sandbox/login-as")
    async def login_as(request: Request):
        """Another seller logs in at the next authorization (same catalogue, own id)."""
        state.login_as = int((await request.json())["user_id"])
        return {"ok": True}

    @app.post("/_sandbox/advance")
    async def advance(request: Request):
        state.offset_s += float((await request.json())["seconds"])
        return {"now": state.now().isoformat()}

    @app.get("/_sandbox/stats")
    async def stats():
        return dict(state.stats)

    @app.get("/_sandbox/request-times")
    async def request_times():
        """Epoch seconds of every API request and of every rate-limit 429."""
        with state.lock:
            return {"requests": list(state.request_times), "limited": list(state.limited_times)}

    @app.get("/_sandbox/request-log")
    async def request_log():
        """Every API request as `[epoch seconds, path, query]`, in arrival order."""
        with state.lock:
            return {"requests": [list(r) for r in state.request_log]}

    @app.post("/_sandbox/seller-listings")
    async def seller_listings(request: Request):
        """Sizes of sellers, `{user_id: listings}`: each lists the first N of the catalogue."""
        body = await request.json()
        state.listings_of.update({int(k): int(v) for k, v in body.items()})
        return {"ok": True}

    @app.get("/_sandbox/seller")
    async def seller():
        return {
            "user_id": spec.user_id,
            "nickname": spec.nickname,
            "listings": spec.listings,
            "client_id": state.client_id,
            "client_secret": state.client_secret,
            "now": state.now().isoformat(),
        }

    # -- orders by id, sales on demand, item edits, notifications -------------
    @app.get("/orders/{order_id}")
    async def get_order(order_id: str, request: Request):
        who = owner(request)
        if isinstance(who, JSONResponse):
            return who
        if not order_id.isdigit():
            return err(400, "bad_request", "invalid order id")
        if int(order_id) in state.faults.order_fail_ids:
            return err(500, "internal_server_error", "Internal Server Error")
        found = state.orders_by_id([int(order_id)], state.now())
        if not found:
            return err(404, "not_found", f"Order {order_id} not found")
        with state.lock:
            state.order_fetches[int(order_id)] = state.order_fetches.get(int(order_id), 0) + 1
        o = state.current_order(found[0])
        if o["seller"]["id"] != who:
            return err(403, "forbidden", "caller.id.invalid")
        return {k: v for k, v in o.items() if not k.startswith("_")}

    @app.get("/_sandbox/order-fetches")
    async def order_fetches():
        with state.lock:
            return {str(k): v for k, v in state.order_fetches.items()}

    @app.post("/_sandbox/sell")
    async def sell(request: Request):
        """A sale now (of `item`, else a popular listing; `items`: one sale of each): an
        order the API then returns, notified when the emitter runs."""
        body = await request.json() if await request.body() else {}
        now = state.now()
        hour = int(now.timestamp() // 3600)
        template = None
        while template is None:  # the newest generated order: its shape
            got = data.orders_in_hour(spec, hour)
            template = got[0] if got else None
            hour -= 1
        wanted = body.get("items") or [body.get("item")]
        quantity = int(body.get("quantity", 1))
        made = [_sale(template, ext, quantity, now) for ext in wanted]
        for o in made:
            state.notify("orders_v2", f"/orders/{o['id']}")
        if "items" in body:
            return {"ids": [o["id"] for o in made]}
        o = made[0]
        return {
            "id": o["id"],
            "item": o["order_items"][0]["item"]["id"],
            "total": o["total_amount"],
        }

    def _sale(template: dict, wanted: str | None, quantity: int, now: datetime) -> dict:
        with state.lock:
            oid = 2100000000000000 + len(state.extra_orders)
            local = now.astimezone(data.ORDER_TZ)
            line = dict(template["order_items"][0])
            if wanted and index_of(wanted) is not None:
                it = public_item(index_of(wanted))
                line["item"] = {**line["item"], "id": it["id"], "title": it["title"]}
                line["unit_price"] = line["full_unit_price"] = it["price"]
            line["quantity"] = quantity
            total = round(quantity * line["unit_price"], 2)
            order = {
                **template,
                "id": oid,
                "status": "paid",
                "date_created": data.order_time(local),
                "date_closed": data.order_time(local),
                "last_updated": data.order_time(local),
                "date_last_updated": data.utc_time(now),
                "total_amount": total,
                "paid_amount": total,
                "order_items": [line],
                "tags": ["paid", "not_delivered"],
                "_created": now,
                "_updated": now,
            }
            state.extra_orders[oid] = order
        return order

    @app.post("/_sandbox/edit-item")
    async def edit_item(request: Request):
        """Change an item (price, title, status, available_quantity): it is then served
        changed, with a new last_updated, and notified on topic `items`."""
        body = await request.json()
        ext = body.get("id", "")
        if index_of(ext) is None:
            return err(404, "not_found", f"Item with id {ext} not found")
        allowed = {"price", "title", "status", "available_quantity"}
        change = {k: v for k, v in body.items() if k in allowed}
        change["last_updated"] = data.utc_time(state.now())
        with state.lock:
            before = state.item_edits.get(ext, {})
            state.item_history.setdefault(ext, []).append(before)
            state.item_edits[ext] = {**before, **change}
        state.notify("items", f"/items/{ext}")
        return {"id": ext, **state.item_edits[ext]}

    @app.post("/_sandbox/stale-items")
    async def stale_items(request: Request):
        """`{ids, count}`: the next `count` fetches of each item answer the version before
        its last edit, with that version's `last_updated` (Mercado Livre's reads lag its
        writes now and then: a late answer may be older than one already received)."""
        body = await request.json()
        count = int(body.get("count", 1))
        with state.lock:
            for ext in body.get("ids") or []:
                state.stale_items[str(ext)] = count
        return {"stale": dict(state.stale_items)}

    @app.post("/_sandbox/notifications")
    async def configure_notifications(request: Request):
        """Start (or restart) the emitter: `{callback_url, retry_scale, duplicate_rate,
        out_of_order_rate, drop_rate, ...}`; `{callback_url: null}` stops it."""
        body = await request.json()
        if state.emitter is not None:
            await state.emitter.stop()
            state.emitter = None
        if not body.get("callback_url"):
            return {"running": False}
        allowed = set(EmitterConfig.__dataclass_fields__)
        emitter = Emitter(state, EmitterConfig(**{k: v for k, v in body.items() if k in allowed}))
        emitter.start()
        state.emitter = emitter
        return {"running": True}

    @app.get("/_sandbox/notifications")
    async def notification_stats(acks: bool = False):
        """The emitter's counts; `acks=true` adds how long each 200 took (ms)."""
        e = state.emitter
        if e is None:
            return {"running": False}
        out = {"running": True, **e.stats, "missed": len(e.missed), "inflight": len(e.inflight)}
        if acks:
            out["ackMs"] = list(e.ack_ms)
        return out

    @app.get("/missed_feeds")
    async def missed_feeds(request: Request):
        who = owner(request)
        if isinstance(who, JSONResponse):
            return who
        q = request.query_params
        if q.get("app_id") != state.client_id:
            return err(403, "forbidden", "app_id does not match the caller's application")
        try:
            offset, limit = int(q.get("offset", 0)), int(q.get("limit", 50))
        except ValueError:
            return err(400, "bad_request", "invalid paging parameters")
        # The application's missed notifications, whichever seller's token asks.
        return state.missed_feed.page(q.get("topic"), offset, min(limit, 1000), state.now())

    market.install(app)  # public search, trends and questions (sandbox/market.py)
    return app
