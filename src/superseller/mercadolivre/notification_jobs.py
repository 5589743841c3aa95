"""Job types that act on Mercado Livre notifications.

- `ml_notifications` {tenantId}: everything a tenant's stored notifications ask for.
  Orders (`orders_v2`) are fetched once per resource however many notifications named
  them, upserted unless older than what is stored, their unknown items fetched as the
  sync does, and only their (listing, day) rows and days' totals rebuilt. Items are
  fetched together (multiget), upserted and re-scored. Other topics are marked ignored.
  A seller who must reconnect (`reauth_required`, found before or while fetching) ends
  the job as skipped, `{"skipped": "reauth_required", ...}`, its notifications marked
  `reauth_required`: the sync the reconnection queues covers them. A store with no
  connected account (disconnected, or gone) ends it as `{"skipped": "not_connected"}`,
  its notifications marked `not_connected`, as the sync ends in that case.
- `ml_missed_feeds`: reads the application's `/missed_feeds` once per topic (one paged
  read, one connected seller's token, whoever the notifications are about) and stores
  what was missed for the tenant of each notification's `user_id` (it then flows as
  above); also re-queues any tenant whose stored notifications wait unprocessed, and
  forgets processed ones after KEEP_DAYS. The nightly full sync stays the final safety net.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, select, update

from superseller.config import Settings
from superseller.db.schema import listings, marketplace_accounts, ml_notifications, tenants
from superseller.jobs import JobContext, JobType, Registry
from superseller.jobs.queue import Queue
from superseller.jobs.registry import NoPayload
from superseller.mercadolivre.client import MLClient, RateLimiter, gather_all
from superseller.mercadolivre.connect import oauth_app
from superseller.mercadolivre.errors import MLError, ReauthRequired
from superseller.mercadolivre.notifications import (
    HANDLED_TOPICS,
    PROCESS_TYPE,
    REAUTH,
    Malformed,
    count,
    parse,
    queue_processing,
    store,
)
from superseller.mercadolivre.ratelimit import SharedRateLimiter
from superseller.mercadolivre.tokens import TokenCipher, TokenStore
from superseller.mercadolivre.upsert import (
    drop_older,
    link_order_items,
    listing_rows,
    order_pairs,
    save_listings,
    save_orders,
    stored_listing_ids,
)
from superseller.metrics.freshness import RECOVERED_ATTEMPTS
from superseller.metrics.rebuild import rebuild_pairs
from superseller.scoring.jobs import score_tenant

RECONCILE_TYPE = "ml_missed_feeds"
SCORE_TYPE = "score_listings"  # registered by the scoring feature, when installed
BATCH = 500  # notifications taken per round
MISSED_PAGE = 50
READER_TRIES = 3  # connected sellers' tokens tried for /missed_feeds before giving up
KEEP_DAYS = 7  # processed notifications kept this long
# An order Mercado Livre cannot serve (a 5xx for it alone, while it serves others) must not
# hold the tenant's other notifications back: it is tried again by later jobs, and after
# this many failed fetches given up (outcome `failed`, left to the nightly full sync).
GIVE_UP_AFTER = 3
FETCH_FAILED = "fetch_failed:"  # outcome while it waits: `fetch_failed:<failed fetches>`

log = logging.getLogger(__name__)


class ProcessPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenantId: str = Field(min_length=1, max_length=64)


def _account(engine, tenant_id: str):
    with engine.connect() as conn:
        tenant = conn.execute(select(tenants).where(tenants.c.id == tenant_id)).first()
        acct = conn.execute(
            select(marketplace_accounts)
            .where(marketplace_accounts.c.tenant_id == tenant_id)
            .order_by(marketplace_accounts.c.id)
        ).first()
    return tenant, acct


def _client(ctx: JobContext, settings: Settings, acct) -> MLClient:
    store_ = TokenStore(
        ctx.engine,
        acct.id,
        oauth_app(settings),
        TokenCipher(settings.encryption_key()),
        ctx.clock,
    )
    limiter = (
        SharedRateLimiter(
            ctx.engine, settings.ml_requests_per_s, settings.ml_seller_requests_per_s
        ).for_seller(acct.ml_user_id)
        if settings.ml_requests_per_s > 0
        else RateLimiter(0)
    )
    return MLClient(
        settings.ml_api_url,
        store_,
        limiter=limiter,
        concurrency=settings.ml_concurrency,
        timeout_s=settings.ml_timeout_s,
        max_tries=settings.ml_max_tries,
        interrupt=ctx.raise_if_cancelled,  # a cancelled job stops at its next request
    )


def _resource_id(resource: str, prefix: str) -> str | None:
    """`/orders/123` -> `123` (query strings and trailing slashes dropped)."""
    path = resource.split("?", 1)[0].rstrip("/")
    if not path.startswith(prefix):
        return None
    rest = path[len(prefix) :]
    return rest if rest and "/" not in rest else None


NOT_CONNECTED = "not_connected"


class TenantNotifications:
    """One run of `ml_notifications` for one tenant."""

    def __init__(self, ctx: JobContext, settings: Settings, registry: Registry, tenant_id: str):
        self.ctx = ctx
        self.engine = ctx.engine
        self.settings = settings
        self.registry = registry
        self.tenant_id = tenant_id
        self.counts = {
            "notifications": 0,
            "orders": 0,
            "items": 0,
            "ignored": 0,
            "skipped": 0,
            "fetchFailed": 0,
            "failed": 0,
        }
        self.tried: set[int] = set()  # failed in this run: the next round leaves them

    async def run(self) -> dict[str, Any]:
        tenant, acct = _account(self.engine, self.tenant_id)
        if acct is not None and acct.status == REAUTH:
            return self._skip_reauth(0)
        if tenant is None or acct is None or acct.status != "connected":
            # Nothing can be fetched (the seller disconnected the store, or it is gone): mark
            # them so they do not wait forever, and end as the sync does in that case, as
            # skipped, not as a failure no retry can heal (a red job in the console).
            waiting = self._pending_ids()
            self._mark(waiting, NOT_CONNECTED)
            return {**self.counts, "skipped": NOT_CONNECTED, "notConnected": len(waiting)}
        client = _client(self.ctx, self.settings, acct)
        try:
            while notes := self._take():
                await self._round(client, acct, tenant.timezone, notes)
                self.ctx.raise_if_cancelled()
        except ReauthRequired:
            # The grant is gone (the token store marked the account): no retry can fetch.
            return self._skip_reauth(client.requests)
        finally:
            await client.close()
        return {**self.counts, "requests": client.requests}

    def _skip_reauth(self, requests: int) -> dict[str, Any]:
        """The seller must reconnect: what waits is marked `reauth_required` (processed,
        not fetched) and the job ends as skipped, not as a failure no retry can heal. The
        sync the reconnection queues fetches every listing and every order changed since
        the last good sync: it covers what these named (the webhook stores no more of
        them until then)."""
        waiting = self._pending_ids()
        self._mark(waiting, REAUTH)
        self.ctx.logger.info(
            "tenant %s must reconnect Mercado Livre: %d notifications left to the sync "
            "after the reconnection",
            self.tenant_id,
            len(waiting),
        )
        return {
            **self.counts,
            "skipped": REAUTH,  # what the console and the refresh read (the sync's shape)
            "reauthRequired": len(waiting),
            "requests": requests,
        }

    def _pending_ids(self) -> list[int]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(ml_notifications.c.id).where(
                        ml_notifications.c.tenant_id == self.tenant_id,
                        ml_notifications.c.processed_at.is_(None),
                    )
                ).scalars()
            )

    def _take(self) -> list:
        with self.engine.connect() as conn:
            return conn.execute(
                select(
                    ml_notifications.c.id,
                    ml_notifications.c.topic,
                    ml_notifications.c.resource,
                    ml_notifications.c.outcome,
                )
                .where(
                    ml_notifications.c.tenant_id == self.tenant_id,
                    ml_notifications.c.processed_at.is_(None),
                    ml_notifications.c.id.not_in(self.tried),
                )
                .order_by(ml_notifications.c.id)
                .limit(BATCH)
            ).all()

    def _mark(self, ids: list[int], outcome: str) -> None:
        if not ids:
            return
        with self.engine.begin() as conn:
            conn.execute(
                update(ml_notifications)
                .where(ml_notifications.c.id.in_(ids))
                .values(processed_at=self.ctx.clock.now(), outcome=outcome)
            )

    async def _round(self, client: MLClient, acct, tz: str, notes: list) -> None:
        order_ids: dict[str, list[int]] = {}
        item_ids: dict[str, list[int]] = {}
        ignored: list[int] = []
        for n in notes:
            oid = _resource_id(n.resource, "/orders/") if n.topic == "orders_v2" else None
            iid = _resource_id(n.resource, "/items/") if n.topic == "items" else None
            if oid and oid.isdigit():
                order_ids.setdefault(oid, []).append(n.id)
            elif iid:
                item_ids.setdefault(iid, []).append(n.id)
            else:
                ignored.append(n.id)
        self.counts["notifications"] += len(notes)
        self.counts["ignored"] += len(ignored)
        self._mark(ignored, "ignored")

        found, gone, failed = await self._fetch_orders(client, list(order_ids))
        if failed and len(failed) == len(order_ids):
            await self._ml_is_up(client, next(iter(failed.values())))
        if failed:
            by_id = {n.id: n for n in notes}
            self._failed([by_id[i] for oid in failed for i in order_ids[oid]], failed)
        # Items the orders sold that are not listings yet, with the notified items: one
        # multiget (batched by 20) for all of them.
        sold = {it["item"]["id"] for o in found for it in o.get("order_items") or []}
        wanted = set(item_ids) | (sold - self._stored_ids(sold))
        if wanted:
            bodies, _errors = await client.items(sorted(wanted))
            now = self.ctx.clock.now()
            rows = listing_rows(bodies, self.tenant_id, acct.id, tz, now)
            await asyncio.to_thread(self._write, save_listings, rows)
            self.counts["items"] += len(rows)
        if found:
            await asyncio.to_thread(self._save_orders, found, tz)
        if item_ids:
            await asyncio.to_thread(self._score, set(item_ids))
        done = [
            i
            for oid, ids in order_ids.items()
            if oid not in gone and oid not in failed
            for i in ids
        ]
        self._mark(done, "processed")
        self._mark([i for oid in gone for i in order_ids[oid]], "not_found")
        self._mark([i for ids in item_ids.values() for i in ids], "processed")

    async def _fetch_orders(
        self, client: MLClient, ids: list[str]
    ) -> tuple[list[dict], set, dict[str, MLError]]:
        """(orders found, ids gone for good, ids whose fetch failed: each on its own)."""
        gone: set[str] = set()
        failed: dict[str, MLError] = {}

        async def one(oid: str) -> dict | None:
            try:
                return await client.get(f"/orders/{oid}")
            except MLError as exc:
                if exc.status in (403, 404):  # not this seller's, or no longer there
                    gone.add(oid)
                elif isinstance(exc, ReauthRequired):
                    raise
                else:  # 5xx, 429 or network after the client's retries: this one failed
                    failed[oid] = exc
                return None

        answers = await gather_all(*(one(oid) for oid in ids))
        found = [o for o in answers if isinstance(o, dict) and o.get("date_created")]
        return found, gone, failed

    async def _ml_is_up(self, client: MLClient, error: MLError) -> None:
        """Every order of the round failed: if Mercado Livre answers at all, the orders are
        what fails (each counts a failed fetch); if not, it is down and the job fails and is
        retried as a whole (nothing counted)."""
        try:
            await client.get("/users/me")
        except MLError as exc:
            if isinstance(exc, ReauthRequired):
                raise
            raise error from None

    def _failed(self, notes: list, errors: dict[str, MLError]) -> None:
        """One more failed fetch for each of these notifications; the ones at GIVE_UP_AFTER
        are given up (outcome `failed`, processed), the others wait for a later job."""
        given_up, waiting = [], {}
        for n in notes:
            self.tried.add(n.id)
            before = n.outcome or ""
            tries = int(before[len(FETCH_FAILED) :] or 0) if before.startswith(FETCH_FAILED) else 0
            if tries + 1 >= GIVE_UP_AFTER:
                given_up.append(n)
            else:
                waiting.setdefault(tries + 1, []).append(n.id)
        for tries, ids in waiting.items():
            with self.engine.begin() as conn:
                conn.execute(
                    update(ml_notifications)
                    .where(ml_notifications.c.id.in_(ids))
                    .values(outcome=f"{FETCH_FAILED}{tries}")
                )
        self.counts["fetchFailed"] += len(notes) - len(given_up)
        self.counts["failed"] += len(given_up)
        self._mark([n.id for n in given_up], "failed")
        for n in given_up:
            count("fetch_failed", n.topic)
            oid = _resource_id(n.resource, "/orders/")
            err = errors.get(oid or "")
            log.warning(
                "tenant %s: %s given up after %d failed fetches (%s); the nightly sync has it",
                self.tenant_id,
                n.resource,
                GIVE_UP_AFTER,
                err.code if err else "error",
            )

    def _save_orders(self, found: list[dict], tz: str) -> None:
        now = self.ctx.clock.now()
        ext = [str(o["id"]) for o in found]
        with self.engine.begin() as conn:
            before, _ = order_pairs(conn, self.tenant_id, ext)
            fresh = drop_older(conn, self.tenant_id, found)
            self.counts["skipped"] += len(found) - len(fresh)
            save_orders(conn, self.tenant_id, tz, fresh, now)
            link_order_items(conn, self.tenant_id)
            after, days = order_pairs(conn, self.tenant_id, ext)
        self.counts["orders"] += len(fresh)
        rebuild_pairs(self.engine, self.tenant_id, before | after, days, self.ctx.clock)

    def _score(self, external_ids: set[str]) -> None:
        """Re-score the notified items only (a listing's score reads its own facts and the
        tenant's medians, which an item edit does not move): scoring all of a big
        tenant's listings per burst of item notifications hogged the in-process worker's
        CPU and, on SQLite, the write lock the webhook needs. Syncs still score them all."""
        if SCORE_TYPE not in self.registry:
            return
        with self.engine.connect() as conn:
            ids = list(
                conn.execute(
                    select(listings.c.id).where(
                        listings.c.tenant_id == self.tenant_id,
                        listings.c.external_id.in_(sorted(external_ids)),
                    )
                ).scalars()
            )
        if ids:
            score_tenant(self.engine, self.tenant_id, self.ctx.clock.now(), ids)

    def _stored_ids(self, wanted: set[str]) -> set[str]:
        return stored_listing_ids(self.engine, self.tenant_id, wanted)

    def _write(self, fn, *args):
        with self.engine.begin() as conn:
            return fn(conn, *args)


class MissedFeedReader:
    """`/missed_feeds` is Mercado Livre's list of an *application's* undelivered
    notifications (every seller's, each naming its `user_id`), read with any token of a
    seller who authorized the app. One client reads it (one paged read per topic); when
    a token cannot read it (revoked, refused) the next connected seller's is used."""

    def __init__(self, ctx: JobContext, settings: Settings, accounts: list):
        self.ctx = ctx
        self.settings = settings
        self.accounts = list(accounts[:READER_TRIES])
        self.client: MLClient | None = None
        self.requests = 0

    async def close(self) -> None:
        if self.client is not None:
            self.requests += self.client.requests
            await self.client.close()
            self.client = None

    async def page(self, topic: str, offset: int) -> dict:
        params = {
            "app_id": self.settings.ml_client_id,
            "topic": topic,
            "offset": offset,
            "limit": MISSED_PAGE,
        }
        while True:
            if self.client is None:
                if not self.accounts:
                    raise MLError(401, "no_token", "no connected seller's token reads it")
                self.client = _client(self.ctx, self.settings, self.accounts.pop(0))
            try:
                return await self.client.get("/missed_feeds", params) or {}
            except MLError as exc:
                if not (isinstance(exc, ReauthRequired) or exc.status in (401, 403)):
                    raise
                await self.close()  # this seller's token cannot: another's may


async def reconcile(ctx: JobContext, settings: Settings, registry: Registry) -> dict[str, Any]:
    """Store what `/missed_feeds` lists for the application's connected sellers (read
    once per topic, whoever it is about), and re-queue tenants whose notifications wait
    unprocessed."""
    with ctx.engine.connect() as conn:
        accounts = conn.execute(
            select(
                marketplace_accounts.c.id,
                marketplace_accounts.c.tenant_id,
                marketplace_accounts.c.ml_user_id,
            )
            .where(marketplace_accounts.c.status == "connected")
            .order_by(marketplace_accounts.c.id)
        ).all()
    tenant_of: dict[int, str] = {}
    for acct in accounts:
        tenant_of.setdefault(acct.ml_user_id, acct.tenant_id)
    found = stored = foreign = 0
    errors: list[dict] = []
    reader = MissedFeedReader(ctx, settings, accounts)
    try:
        for topic in HANDLED_TOPICS if accounts else ():
            offset = 0
            while True:
                try:
                    page = await reader.page(topic, offset)
                except MLError as exc:
                    errors.append({"topic": topic, "offset": offset, "error": exc.code})
                    break
                messages = page.get("messages") or page.get("results") or []
                notes = []
                for m in messages:
                    try:
                        note = parse(m)
                    except Malformed:
                        continue
                    tid = tenant_of.get(note.user_id)
                    if tid is None:  # a seller not connected (any more): nothing to fetch
                        foreign += 1
                    else:
                        # not delivered to the webhook: "tempo real" must not count it
                        notes.append((replace(note, attempts=RECOVERED_ATTEMPTS), tid))
                found += len(notes)
                stored += _store_new(ctx, registry, notes)
                if len(messages) < MISSED_PAGE:
                    break
                offset += len(messages)
    finally:
        await reader.close()
    requeued = requeue_waiting(ctx, registry)
    pruned = prune(ctx)
    ctx.add_records(stored)
    return {
        "missed": found,
        "stored": stored,
        "notConnected": foreign,
        "requests": reader.requests,
        "requeued": requeued,
        "pruned": pruned,
        "errors": errors[:20],
    }


def _store_new(ctx: JobContext, registry: Registry, notes: list) -> int:
    """Store the notifications not stored yet. /missed_feeds lists one for 2 days, so most
    of a page was read before: a plain read leaves them out, and a page with nothing new
    takes no write lock."""
    if not notes:
        return 0
    with ctx.engine.connect() as conn:
        known = set(
            conn.execute(
                select(ml_notifications.c.notification_id).where(
                    ml_notifications.c.notification_id.in_([n.id for n, _ in notes])
                )
            ).scalars()
        )
    return store(ctx.engine, registry, ctx.clock, [p for p in notes if p[0].id not in known])


def prune(ctx: JobContext) -> int:
    """Forget processed notifications after KEEP_DAYS (but each tenant's last): Mercado
    Livre retries for an hour and lists missed ones for 2 days, so an `_id` older than
    that never comes back."""
    cutoff = ctx.clock.now() - timedelta(days=KEEP_DAYS)
    with ctx.engine.begin() as conn:
        done = conn.execute(
            delete(ml_notifications).where(
                ml_notifications.c.processed_at.is_not(None),
                ml_notifications.c.received_at < cutoff,
                # each tenant's last one stays: "tempo real parado desde ..." reads it
                ml_notifications.c.id.not_in(
                    select(func.max(ml_notifications.c.id)).group_by(ml_notifications.c.tenant_id)
                ),
            )
        )
    return max(done.rowcount, 0)


def requeue_waiting(ctx: JobContext, registry: Registry) -> list[str]:
    with ctx.engine.connect() as conn:
        waiting = list(
            conn.execute(
                select(ml_notifications.c.tenant_id)
                .where(ml_notifications.c.processed_at.is_(None))
                .distinct()
            ).scalars()
        )
    queue = Queue(ctx.engine, registry, ctx.clock)
    with ctx.engine.begin() as conn:
        for tid in waiting:
            queue_processing(conn, queue, tid, ctx.clock.now())
    return sorted(waiting)


def register(registry: Registry, settings: Settings) -> None:
    async def process(ctx: JobContext) -> dict[str, Any]:
        p: ProcessPayload = ctx.payload
        return await TenantNotifications(ctx, settings, registry, p.tenantId).run()

    async def missed(ctx: JobContext) -> dict[str, Any]:
        return await reconcile(ctx, settings, registry)

    registry.add(
        JobType(
            name=PROCESS_TYPE,
            handler=process,
            payload_model=ProcessPayload,
            timeout_s=600,
            max_attempts=5,
            description="Fetch and apply what a tenant's Mercado Livre notifications name.",
        )
    )
    registry.add(
        JobType(
            name=RECONCILE_TYPE,
            handler=missed,
            payload_model=NoPayload,
            timeout_s=1800,
            lock_key=lambda p, t: RECONCILE_TYPE,
            description="Store notifications Mercado Livre lists as missed; re-queue waiting ones.",
        )
    )
