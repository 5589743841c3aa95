"""The Mercado Livre API client (httpx, async).

Retries 429 and 5xx (and network errors) with exponential back-off and jitter,
honouring `Retry-After`; refreshes the token once on a 401; keeps to a global
request rate and a per-seller concurrency. Paging follows the reference:
items by offset while the total is <= 1000 and by scan beyond, details by
multiget of 20, orders by date windows with `limit` 50, visits by time window.
A request that fails with a network error or a 5xx and is retried is logged, at most one
line per `RETRY_NOTICE_S` per process (`RetryNotice`; the token endpoint's retries, in
tokens.py, go through the same notice).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from superseller.mercadolivre import telemetry
from superseller.mercadolivre.errors import MLError, parse_error
from superseller.mercadolivre.slots import SlotGate
from superseller.mercadolivre.tokens import TokenStore, backoff_delay

log = logging.getLogger("superseller.mercadolivre.client")

OFFSET_LIMIT = 1000
MULTIGET = 20
ORDERS_PAGE = 50
RETRY_NOTICE_S = 30.0  # at most one "failing, retrying" warning per this many seconds


class RetryNotice:
    """A warning when a request to Mercado Livre fails with a network error or a 5xx and
    will be retried. Silent, an outage looked like a frozen job (1,660 retries in 8.8
    minutes, counted only in /metrics); one line per failure would flood the log in a
    storm. So: the first failure is logged at once, then at most one line per `every_s`
    per process, saying how many failed since the previous line. Only the method, the
    path (never the query) and the error's kind are logged: no token, no parameters, no
    form (the token endpoint's carries the client secret, the code, the refresh token)."""

    def __init__(self, every_s: float = RETRY_NOTICE_S, now: Callable[[], float] = time.monotonic):
        self.every_s = every_s
        self.now = now
        self._lock = threading.Lock()  # shared by every client and event loop of the process
        self._failed = 0
        self._last: float | None = None

    def failed(self, path: str, err: MLError, method: str = "GET") -> None:
        with self._lock:
            self._failed += 1
            now = self.now()
            if self._last is not None and now - self._last < self.every_s:
                return
            count, last = self._failed, self._last
            self._failed, self._last = 0, now
        path = path.split("?", 1)[0]
        what = (
            f"network error ({err.message})"
            if err.status == 0
            else f"HTTP {err.status} {err.code[:60]}"
        )
        if last is None:
            log.warning(
                "Mercado Livre request failed, retrying: %s %s: %s (further failures are "
                "counted, one line per %.0f s at most)",
                method,
                path,
                what,
                self.every_s,
            )
        else:
            log.warning(
                "Mercado Livre requests still failing: %d failed and were retried "
                "(network errors or 5xx) in the last %.0f s; latest: %s %s: %s",
                count,
                now - last,
                method,
                path,
                what,
            )


RETRY_NOTICE = RetryNotice()


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS settings (certifi's CAs, or SSL_CERT_FILE/SSL_CERT_DIR), built
    once per process. httpx builds a new one for every client, loading the CA bundle:
    15 ms of CPU on an idle core, 50-100 ms of wall on a loaded one, which the jobs that
    make a client per run (notification processing, /missed_feeds reconciliation) paid
    every time, more than their requests (simulation profile, docs/performance.md)."""
    return httpx.create_ssl_context()


def _hour(d: datetime) -> str:
    return d.astimezone(UTC).strftime("%Y-%m-%dT%H:00:00.000-00:00")


class ScanInterrupted(MLError):
    """A scan whose scroll was lost mid-way (400 `invalid.scroll.id`, or 404)."""

    def __init__(self, status: int, code: str, message: str, ids: list[str] | None = None):
        super().__init__(status, code, message)
        self.ids = ids or []


def entry_id(entry: dict) -> str | None:
    """The item id a multiget entry is about: the body's `id` (success and error bodies
    both carry it), else the id quoted in the error message."""
    body = entry.get("body") if isinstance(entry.get("body"), dict) else {}
    if body.get("id"):
        return str(body["id"])
    match = _ITEM_ID.search(str(body.get("message") or ""))
    return match.group(0) if match else None


_ITEM_ID = re.compile(r"\b[A-Z]{3}\d+\b")


async def gather_all(*aws: Any) -> list[Any]:
    """`asyncio.gather`, except that the first failure (a cancelled job's, a request out of
    tries) cancels the others, and waits for them, before it is raised: a stopped run
    sends no further request. A write already handed to a thread may still finish after it
    (each is one whole transaction, so nothing half-written is left)."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class RateLimiter:
    """Space requests evenly at `rate` per second within one process (shared by every
    client using it). The app-wide limiter, kept in the database, is
    `ratelimit.SharedRateLimiter`; both offer `acquire()` and `slow_down()`."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)

    async def slow_down(self) -> None:
        """A 429 from Mercado Livre: nothing to share within one process (the retry's
        back-off already waits)."""


class MLClient:
    def __init__(
        self,
        base_url: str,
        tokens: TokenStore,
        *,
        limiter: RateLimiter | None = None,
        concurrency: int = 4,
        timeout_s: float = 20.0,
        max_tries: int = 8,
        backoff_base_s: float = 0.25,
        backoff_cap_s: float = 20.0,
        on_request: Callable[[], None] | None = None,
        interrupt: Callable[[], None] | None = None,
        on_wait: Callable[[bool], Awaitable[None]] | None = None,
    ):
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, verify=tls_context())
        self.tokens = tokens
        self.limiter = limiter or RateLimiter(0)
        self.slots = SlotGate(concurrency)
        self.max_tries = max_tries
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.on_request = on_request
        # Called when a request has its slot, before it is sent: raises to stop the run
        # (a cancelled job's sync stops at its next request, whatever loop it is in).
        self.interrupt = interrupt
        # Awaited with True when a request fails (a 429, a 5xx, a network error) and is to
        # be retried while no other was, and with False when the last such request is over
        # (answered or out of tries): a sync says "aguardando o Mercado Livre" meanwhile.
        self.on_wait = on_wait
        self.waiting = 0  # requests being retried right now
        self.requests = 0
        self.retries = 0
        self._token: tuple[str, int] | None = None
        self._token_lock = asyncio.Lock()

    async def close(self) -> None:
        await self.http.aclose()

    async def _access(self, stale_version: int | None = None) -> tuple[str, int]:
        async with self._token_lock:
            if self._token is None or (
                stale_version is not None and self._token[1] == stale_version
            ):
                if stale_version is None:
                    self._token = await asyncio.to_thread(self.tokens.current)
                else:
                    self._token = await asyncio.to_thread(self.tokens.refresh, stale_version)
            return self._token

    async def get(self, path: str, params: dict | None = None, *, again: bool = False) -> Any:
        """GET `path`. A retry (and a call marked `again`, a second go at an earlier
        failure) takes the next free slot before the first tries waiting (slots.py)."""
        refreshed = False
        retrying = False  # this request failed and is being retried (counted in `waiting`)
        try:
            for attempt in range(1, self.max_tries + 1):
                token, version = await self._access()
                try:
                    # The slot first, then the token: a token taken while waiting for a slot
                    # would be spent whenever the slot came, and many such waiters sent their
                    # requests in one bunch, above the rate the limiter granted them at.
                    async with self.slots.slot(retry=again or attempt > 1):
                        if self.interrupt:
                            self.interrupt()
                        await self.limiter.acquire()
                        resp = await self.http.get(
                            path, params=params, headers={"Authorization": f"Bearer {token}"}
                        )
                except httpx.TransportError as exc:
                    err = MLError(0, "network_error", type(exc).__name__)
                    telemetry.REQUESTS.labels("network").inc()
                else:
                    self.requests += 1
                    telemetry.REQUESTS.labels(str(resp.status_code)).inc()
                    if resp.status_code == 429:
                        telemetry.RATE_LIMITED.inc()
                        await self.limiter.slow_down()  # every process backs off, not just this one
                    if self.on_request:
                        self.on_request()
                    if resp.status_code in (200, 206):  # 206: partial content is still success
                        return resp.json()
                    err = parse_error(resp)
                    if resp.status_code == 401 and not refreshed:
                        refreshed = True
                        await self._access(stale_version=version)
                        continue
                if (err.retryable or err.status == 0) and attempt < self.max_tries:
                    self.retries += 1
                    telemetry.RETRIES.inc()
                    if err.status == 0 or err.status >= 500:  # a 429 is Mercado Livre pacing us
                        RETRY_NOTICE.failed(path, err)
                    if not retrying:
                        retrying = True
                        self.waiting += 1
                        if self.on_wait and self.waiting == 1:
                            await self.on_wait(True)
                    await asyncio.sleep(
                        backoff_delay(err, attempt, self.backoff_base_s, self.backoff_cap_s)
                    )
                    continue
                raise err
            raise AssertionError("unreachable")
        finally:
            if retrying:
                self.waiting -= 1
                # Not when cancelled: the run is ending (a failure is, and is waited for).
                task = asyncio.current_task()
                if self.on_wait and not self.waiting and not (task and task.cancelling()):
                    await self.on_wait(False)

    # -- listings ------------------------------------------------------------
    async def item_ids(self, user_id: int) -> list[str]:
        first = await self.get(f"/users/{user_id}/items/search", {"offset": 0, "limit": 50})
        total = first["paging"]["total"]
        if total <= OFFSET_LIMIT:
            ids = list(first["results"])
            pages = [
                self.get(f"/users/{user_id}/items/search", {"offset": off, "limit": 50})
                for off in range(50, total, 50)
            ]
            for page in await gather_all(*pages):
                ids.extend(page["results"])
            return list(dict.fromkeys(ids))
        try:
            return await self._scan(user_id)
        except ScanInterrupted as first:  # an expired or invalid scroll: once more, from the top
            telemetry.RETRIES.inc()
            try:
                again = await self._scan(user_id)
            except ScanInterrupted as second:
                raise ScanInterrupted(
                    second.status,
                    second.code,
                    f"listing scan interrupted twice ({first.code}, then {second.code}); "
                    "will retry on the next sync",
                ) from None
            return list(dict.fromkeys(first.ids + again))

    async def _scan(self, user_id: int) -> list[str]:
        """Scan mode: sequential by nature, passing the latest scroll_id each time. The end is
        an empty `results` or an empty/absent `scroll_id`; a 400 `invalid.scroll.id` or a 404
        on a continuation means the scroll was lost mid-way."""
        ids: list[str] = []
        scroll = None
        while True:
            params = {"search_type": "scan", "limit": 100}
            if scroll:
                params["scroll_id"] = scroll
            try:
                page = await self.get(f"/users/{user_id}/items/search", params)
            except MLError as exc:
                if scroll and (exc.status == 404 or exc.code == "invalid.scroll.id"):
                    raise ScanInterrupted(exc.status, exc.code, exc.message, ids) from None
                raise
            if not page.get("results"):
                break
            ids.extend(page["results"])
            scroll = page.get("scroll_id")
            if not scroll:
                break
        return list(dict.fromkeys(ids))

    async def items(self, ids: list[str]) -> tuple[list[dict], list[dict]]:
        """Details by multiget; returns (bodies, per-item errors)."""
        chunks = [ids[i : i + MULTIGET] for i in range(0, len(ids), MULTIGET)]
        answers = await gather_all(*(self.get("/items", {"ids": ",".join(c)}) for c in chunks))
        bodies, errors = [], []
        for chunk, answer in zip(chunks, answers, strict=True):
            answered = set()
            for entry in answer:
                body = entry.get("body") if isinstance(entry.get("body"), dict) else {}
                ext = entry_id(entry)
                answered.add(ext)
                if entry.get("code") == 200 and body.get("id"):
                    bodies.append(body)
                else:
                    errors.append(
                        {
                            "id": ext,
                            "code": entry.get("code"),
                            "error": body.get("error") or body.get("code") or "unknown",
                        }
                    )
            # An id the answer does not mention at all is an error too, never a shift.
            errors.extend(
                {"id": ext, "code": None, "error": "missing_from_answer"}
                for ext in chunk
                if ext not in answered
            )
        return bodies, errors

    # -- orders --------------------------------------------------------------
    async def orders(
        self, user_id: int, start: datetime, end: datetime, window: timedelta = timedelta(days=3)
    ) -> list[dict]:
        """Orders created in [start, end], by date windows (keeps offsets small)."""
        windows = []
        w = start
        while w <= end:
            windows.append((w, min(end, w + window)))
            w += window
        results = await gather_all(*(self._orders_window(user_id, a, b) for a, b in windows))
        seen: dict[Any, dict] = {}
        for batch in results:
            for o in batch:
                seen[o["id"]] = o
        return list(seen.values())

    async def updated_orders(self, user_id: int, since: datetime, end: datetime) -> list[dict]:
        """Orders *updated* in [since, end] (`order.date_last_updated`), whenever created:
        the cancellations and refunds of older orders."""
        return await self._orders_window(user_id, since, end, "date_last_updated")

    async def _orders_window(
        self, user_id: int, start: datetime, end: datetime, field: str = "date_created"
    ) -> list[dict]:
        # The API keeps only the hour of these filters: round the end up, or the
        # orders of the current, partial hour would be left for the next sync.
        params = {
            "seller": user_id,
            f"order.{field}.from": _hour(start),
            f"order.{field}.to": _hour(end + timedelta(hours=1)),
            "sort": "date_asc",
            "limit": ORDERS_PAGE,
        }
        out: list[dict] = []
        offset = 0
        while True:
            page = await self.get("/orders/search", {**params, "offset": offset})
            results = page.get("results") or []
            out.extend(results)
            offset += len(results)
            if not results or offset >= page["paging"]["total"]:
                return out

    # -- visits --------------------------------------------------------------
    async def visits(self, item_id: str, last: int) -> dict[str, int]:
        """Visits per day label for the last `last` days (+ today). Sparse answers mean 0."""
        return (await self.visit_days(item_id, last))[0]

    async def visit_days(
        self, item_id: str, last: int, *, again: bool = False
    ) -> tuple[dict[str, int], tuple[date, date] | None]:
        """`visits()`, and the first and last day the answer covers (its `date_from` and
        `date_to` labels; None when it does not say): only inside them is a missing day a 0.
        Mercado Livre's day is its own (BRT), which may not be the seller's."""
        page = await self.get(
            f"/items/{item_id}/visits/time_window", {"last": last, "unit": "day"}, again=again
        )
        if isinstance(page, list):  # one integrator saw it wrapped in an array
            page = page[0] if page else {}
        counts = {r["date"][:10]: int(r.get("total", 0)) for r in page.get("results") or []}
        try:
            span = (
                date.fromisoformat(str(page["date_from"])[:10]),
                date.fromisoformat(str(page["date_to"])[:10]),
            )
        except (KeyError, TypeError, ValueError):
            span = None
        return counts, span if span and span[0] <= span[1] else None
