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

TOKEN_TTL_S = 21600
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
    revoked: set[int] = field(default_factory=set)
    scrolls: dict[str, tuple[int, float]] = field(default_factory=dict)
    stats: dict[str, int] = field(
        default_factory=lambda: {"requests": 0, "refreshes": 0, "429": 0, "500": 0}
    )
    _bucket: list[float] = field(default_factory=lambda: [0.0, 0.0])
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> datetime:
        if self.frozen_at is not None:
            return self.frozen_at + timedelta(seconds=self.offset_s)
        return datetime.now(UTC) + timedelta(seconds=self.offset_s)

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
            limited = False
            if f.requests_per_s:
                tokens, last = state._bucket
                now = time.monotonic()
                tokens = min(f.requests_per_s, tokens + (now - last) * f.requests_per_s)
                limited = tokens < 1
                state._bucket[:] = [tokens if limited else tokens - 1, now]
            roll = state.rng.random()
            with_retry_after = state.rng.random() < f.retry_after_share
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
        code = f"TG-{secrets.token_hex(10)}-{spec.user_id}"
        state.codes[code] = spec.user_id
        challenge = request.query_params.get("code_challenge")
        if challenge:  # PKCE (S256): the exchange must present the matching verifier
            state.challenges[code] = challenge
        st = request.query_params.get("state")
        sep = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{sep}code={code}" + (f"&state={st}" if st else ""))

    @app.post("/oauth/token")
    async def token(request: Request):
        form = await request.form()
        invalid = {
            "error_description": "Error validating grant. Your authorization code or "
            "refresh token may be expired or it was already used",
            "error": "invalid_grant",
            "status": 400,
            "cause": [],
        }
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
        ids = [data.item_id(spec, i) for i in range(spec.listings)]
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
                entry = state.scrolls.pop(scroll, None)
                if entry is None or entry[1] < now:
                    return err(404, "not_found", "scroll_id expired or unknown")
                pos = entry[0]
            else:
                pos = 0
            page = ids[pos : pos + limit]
            new_scroll = None
            if page:
                new_scroll = secrets.token_urlsafe(24)
                state.scrolls[new_scroll] = (pos + len(page), now + state.scroll_ttl_s)
            return {
                "seller_id": str(user_id),
                "results": page,
                "scroll_id": new_scroll,
                "paging": {**paging, "limit": limit},
            }
        if offset >= 1000 or offset + limit > 1000:
            return err(400, "bad_request", "offset must be lower than 1000; use search_type=scan")
        return {
            "seller_id": str(user_id),
            "query": None,
            "paging": {**paging, "offset": offset, "limit": limit},
            "results": ids[offset : offset + limit],
            "orders": [{"id": "stop_time_asc", "name": "Order by stop time ascending"}],
        }

    def public_item(i: int) -> dict:
        return {k: v for k, v in data.item(spec, i).items() if not k.startswith("_")}

    @app.get("/items/{item_id}")
    async def get_item(item_id: str, request: Request):
        who = owner(request)
        if isinstance(who, JSONResponse):
            return who
        i = data.item_index(spec, item_id)
        if i is None:
            return err(404, "not_found", f"Item with id {item_id} not found")
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
            i = data.item_index(spec, ext)
            if i is None:
                out.append(
                    {
                        "code": 404,
                        "body": {
                            "message": f"Item with id {ext} not found",
                            "error": "not_found",
                            "status": 404,
                            "cause": [],
                        },
                    }
                )
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

        def hour_floor(name: str, default: datetime) -> datetime | JSONResponse:
            raw = q.get(name)
            if not raw:
                return default
            try:
                dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                return err(400, "bad_request", f"invalid date in {name}")
            return dt.replace(minute=0, second=0, microsecond=0)  # the API keeps the hour only

        start = hour_floor("order.date_created.from", spec.history_start)
        end = hour_floor("order.date_created.to", state.now())
        for v in (start, end):
            if isinstance(v, JSONResponse):
                return v
        found = data.orders_between(spec, start, end + timedelta(microseconds=1), state.now())
        wanted = q.get("order.status")
        if wanted:
            found = [o for o in found if o["status"] in wanted.split(",")]
        sort = q.get("sort", "date_asc")
        found.sort(key=lambda o: (o["date_closed"], o["id"]), reverse=sort == "date_desc")
        page = [
            {k: v for k, v in o.items() if not k.startswith("_")}
            for o in found[offset : offset + limit]
        ]
        return {
            "results": page,
            "paging": {"total": len(found), "offset": offset, "limit": limit},
            "sort": {"id": sort},
            "display": "complete",
        }

    # -- visits --------------------------------------------------------------
    @app.get("/items/{item_id}/visits/time_window")
    async def visits(
        item_id: str, request: Request, last: int = 30, unit: str = "day", ending: str | None = None
    ):
        who = owner(request)
        if isinstance(who, JSONResponse):
            return who
        i = data.item_index(spec, item_id)
        if i is None:
            return err(404, "not_found", "Item not found")
        if item_id in state.faults.visits_fail_ids:
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
        for d in days:
            n = data.visits_on(spec, i, d, now)
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
        body = await request.json()
        state.revoked.add(int(body.get("user_id", spec.user_id)))
        return {"ok": True}

    @app.post("/_sandbox/advance")
    async def advance(request: Request):
        state.offset_s += float((await request.json())["seconds"])
        return {"now": state.now().isoformat()}

    @app.get("/_sandbox/stats")
    async def stats():
        return dict(state.stats)

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

    market.install(app)  # public search, trends and questions (sandbox/market.py)
    return app
