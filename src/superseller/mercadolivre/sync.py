"""Job type `sync_mercadolivre`: listings, orders and daily visits of a seller.

Payload `{tenantId, daysBack: 30}` (the seeds'), or `tenantId: "all"` to fan out
one job per connected tenant; `visits: "full"` refetches every listing's whole window
of visits instead of the days that can still change (visits.py). Idempotent and
incremental; holds the tenant lock
(shared with the rebuild); on success it queues the metrics rebuild for the days
it touched. A seller whose grant is gone fails at once with a clear message.
"""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from superseller.config import Settings
from superseller.db.schema import listings, marketplace_accounts, tenants
from superseller.jobs import JobCancelled, JobContext, JobType, PermanentJobError, Registry
from superseller.jobs.cron import zone
from superseller.jobs.errors import error_text
from superseller.jobs.queue import JobSpec, Queue
from superseller.mercadolivre.checkpoints import Checkpoints, ranges
from superseller.mercadolivre.client import MLClient, RateLimiter, gather_all
from superseller.mercadolivre.connect import oauth_app
from superseller.mercadolivre.errors import MLError, ReauthRequired
from superseller.mercadolivre.progress import ProgressNote
from superseller.mercadolivre.ratelimit import SharedRateLimiter
from superseller.mercadolivre.tokens import TokenCipher, TokenStore
from superseller.mercadolivre.upsert import (
    link_order_items,
    listing_rows,
    save_listings,
    save_orders,
    save_visits,
    stored_listing_ids,
    visit_rows,
)
from superseller.mercadolivre.visits import days_to_fetch, stored_spans
from superseller.metrics.jobs import tenant_lock
from superseller.metrics.rebuild import day_spans
from superseller.tenant_jobs import sync_key
from superseller.tenants import record_outcome

MAX_DAYS_BACK = 150  # the visits API's window
# Listings, orders and visit-day rows are saved in transactions of this many (visits: of
# whole listings, so a little more): on SQLite a write holds the one write lock, and 20,000
# orders at once held it ~7 s, stalling heartbeats, the API and the rebuild; one
# transaction per listing's visits made 10,000 commits a night for a big seller.
ROWS_PER_WRITE = 1000
# Orders updated since the last successful sync are fetched again, from this much before
# it (the API keeps only the hour of the filter; a sync takes well under an hour), and
# from no further back than Mercado Livre keeps orders.
UPDATED_OVERLAP = timedelta(hours=2)
MAX_UPDATED_DAYS = 365
SCORE_TYPE = "score_listings"  # registered by the scoring feature, when installed
# A seller's rebuild and score go before the syncs still queued: each seller's numbers are
# fresh right after its own sync, not after the whole fleet's (the nightly fan-out queues
# every seller's sync at once; first in, first out, every rebuild would wait behind them).
FOLLOW_UP_PRIORITY = 1


class NoAccount(Exception):
    """The tenant's Mercado Livre account was disconnected (it had synced before): a sync
    queued for it has nothing to do and ends as skipped, not as a failure. A tenant that
    was never connected fails its sync instead, saying so (someone asked for it by mistake)."""


class SyncPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenantId: str = Field(min_length=1, max_length=64)
    daysBack: int = Field(default=30, ge=1, le=MAX_DAYS_BACK)
    # "auto": each listing's visits from the days that can still change (visits.py);
    # "full": the whole window of every listing.
    visits: Literal["auto", "full"] = "auto"


def connected_tenants(engine) -> list[str]:
    """Connected tenants, smallest first (by the listings their last sync stored): the
    fan-out queues them in this order, so after a night the small sellers' numbers are
    fresh early instead of behind whichever big seller sorts before them."""
    size = (
        select(func.count())
        .where(listings.c.tenant_id == marketplace_accounts.c.tenant_id)
        .scalar_subquery()
    )
    with engine.connect() as conn:
        rows = conn.execute(
            select(marketplace_accounts.c.tenant_id, size.label("size"))
            .where(marketplace_accounts.c.status == "connected")
            .distinct()
            .order_by("size", marketplace_accounts.c.tenant_id)
        ).all()
    return [r.tenant_id for r in rows]


class SellerSync:
    """One sync of one tenant's Mercado Livre account."""

    def __init__(
        self,
        ctx: JobContext,
        settings: Settings,
        limiter: RateLimiter | SharedRateLimiter,
        tenant_id: str,
        days_back: int,
        visits: str = "auto",
    ):
        self.ctx = ctx
        self.engine = ctx.engine
        self.settings = settings
        self.limiter = limiter
        self.tenant_id = tenant_id
        self.days_back = days_back
        self.full_visits = visits == "full"
        self._at: tuple = ("listing", None, None)  # the last progress told: phase, done, total
        self._noted_waiting = False  # the progress note says "waiting on Mercado Livre"
        self._note_lock = asyncio.Lock()  # notes written in the order they were decided

    def _account(self):
        with self.engine.connect() as conn:
            tenant = conn.execute(select(tenants).where(tenants.c.id == self.tenant_id)).first()
            if tenant is None:
                raise PermanentJobError(f"tenant {self.tenant_id!r} not found")
            acct = conn.execute(
                select(marketplace_accounts)
                .where(marketplace_accounts.c.tenant_id == self.tenant_id)
                .order_by(marketplace_accounts.c.id)
            ).first()
        if acct is None:
            if tenant.last_sync_ok_at is None:  # never connected: asking for a sync is a mistake
                raise PermanentJobError(f"tenant {self.tenant_id} has no Mercado Livre account")
            raise NoAccount(self.tenant_id)
        if acct.status == "reauth_required":
            raise PermanentJobError(
                f"Mercado Livre connection of tenant {self.tenant_id} needs re-authorization: "
                f"{acct.status_reason or 'the seller must connect again'}"
            )
        return tenant, acct

    async def run(self) -> dict[str, Any]:
        began = time.perf_counter()
        tenant, acct = self._account()
        tz = tenant.timezone
        store = TokenStore(
            self.engine,
            acct.id,
            oauth_app(self.settings),
            TokenCipher(self.settings.encryption_key()),
            self.ctx.clock,
        )
        client = MLClient(
            self.settings.ml_api_url,
            store,
            limiter=(
                self.limiter.for_seller(acct.ml_user_id)
                if isinstance(self.limiter, SharedRateLimiter)
                else self.limiter
            ),
            concurrency=self.settings.ml_concurrency,
            timeout_s=self.settings.ml_timeout_s,
            max_tries=self.settings.ml_max_tries,
            # A cancel (seen by the worker's heartbeat) stops the run at its next request,
            # in whichever step: what is written and checkpointed stays.
            interrupt=self.ctx.raise_if_cancelled,
            on_wait=self._waiting,
        )
        try:
            result = await self._sync(client, acct, tz, tenant.last_sync_ok_at)
        finally:
            await client.close()
        await asyncio.to_thread(self.marks.clear)  # done: nothing left to resume
        result.update(
            requests=client.requests,
            retries=client.retries,
            refreshes=store.refreshes,
            durationMs=int((time.perf_counter() - began) * 1000),
        )
        return result

    async def _sync(self, client: MLClient, acct, tz: str, last_ok) -> dict[str, Any]:
        marks = await asyncio.to_thread(Checkpoints, self.engine, self.ctx.job_id, self.ctx.clock)
        self.marks = marks
        self.note = ProgressNote(self.engine, self.ctx.job_id, self.ctx.clock)
        await self._progress("listing")
        run = marks.get("run")
        if run is None:  # the run's "now", kept so that a resumed run syncs the same window
            run = {"now": self.ctx.clock.now().isoformat()}
            await asyncio.to_thread(marks.mark, "run", run)
        now = datetime.fromisoformat(run["now"])
        today = now.astimezone(zone(tz)).date()
        first_day = today - timedelta(days=self.days_back)

        got = marks.get("ids")
        if got is None:
            # A scan cannot resume (its scroll expires): the ids are recorded once complete.
            got = {"ids": await client.item_ids(acct.ml_user_id)}
            await asyncio.to_thread(marks.mark, "ids", got)
        ids: list[str] = got["ids"]
        self.ctx.raise_if_cancelled()
        fetched = [0]
        await self._progress("items", 0, len(ids))

        async def details(lo: int, hi: int) -> list[dict]:
            part = f"items:{lo}"
            if (done := marks.get(part)) is None:
                bodies, errors = await client.items(ids[lo:hi])
                await self._save_listings(bodies, acct, tz, now)
                done = {"errors": errors}
                await asyncio.to_thread(marks.mark, part, done)
            fetched[0] += hi - lo
            await self._progress("items", fetched[0], len(ids))
            return done["errors"]

        item_errors = [
            e
            for errs in await gather_all(*(details(a, b) for a, b in ranges(len(ids))))
            for e in errs
        ]
        self.ctx.raise_if_cancelled()

        start = (now - timedelta(days=self.days_back + 1)).replace(
            minute=0, second=0, microsecond=0
        )
        orders = marks.get("orders")
        await self._progress("orders")
        if orders is None:
            orders = await self._orders(client, acct, tz, now, start, last_ok, set(ids))
            await asyncio.to_thread(marks.mark, "orders", orders)
        days = {date.fromisoformat(d) for d in orders.pop("days")}

        with self.engine.connect() as conn:
            stored = dict(
                conn.execute(
                    select(listings.c.external_id, listings.c.id).where(
                        listings.c.tenant_id == self.tenant_id
                    )
                ).all()
            )
        known = [(ext, stored[ext]) for ext in ids if ext in stored]
        # Each listing's window: the days that can still change, or the whole window
        # (visits.py). Read again by a resumed run: what the first attempt stored counts.
        spans = (
            {}
            if self.full_visits or last_ok is None
            else await asyncio.to_thread(stored_spans, self.engine, self.tenant_id, first_day)
        )
        seen = [0]
        await self._progress("visits", 0, len(known))

        async def visits(lo: int, hi: int) -> dict[str, Any]:
            part = f"visits:{lo}"
            if (done := marks.get(part)) is not None:
                seen[0] += hi - lo
                return done
            done = {"days": 0, "full": 0, "errors": []}
            # Rows wait here and are written ROWS_PER_WRITE at a time (whole listings), not
            # one transaction per listing; the part is marked once all of them are stored.
            pending: list[dict] = []
            pending_items = [0]

            async def flush() -> None:
                rows, items = pending[:], pending_items[0]
                pending.clear()
                pending_items[0] = 0
                if rows:
                    await asyncio.to_thread(self._write, save_visits, rows)
                    self.ctx.add_records(items)

            again: list[tuple[str, int]] = []

            async def one(ext: str, lid: int, first: bool = True) -> None:
                last = days_to_fetch(spans.get(lid), first_day, today, self.days_back)
                try:
                    counts, covered = await client.visit_days(ext, last, again=not first)
                except MLError as exc:
                    if isinstance(exc, ReauthRequired) or exc.status == 401:
                        # Not this listing's answer but the account's: the grant is gone
                        # (the client's refresh failed) or even a fresh token is refused.
                        # The sync stops as the listings and orders steps do (a revoked
                        # grant: reconnect required), never "completed" with every
                        # listing's visits filed as refused.
                        raise
                    if first and (exc.retryable or exc.status == 0):
                        again.append((ext, lid))  # once more, after the others
                        return
                    # Keep whatever was stored: a failed call never erases known visits.
                    # `retry`: Mercado Livre did not answer (429, 5xx, the network) and a
                    # later sync can get them; a refusal (403, 404) is the listing's answer.
                    retry = exc.retryable or exc.status == 0
                    done["errors"].append({"id": ext, "error": exc.code, "retry": retry})
                    return
                # A day is written (a missing one as 0) only inside both the window asked
                # for and the days the answer says it covers.
                lo_day, hi_day = today - timedelta(days=last), today
                if covered is not None:
                    lo_day, hi_day = max(lo_day, covered[0]), min(hi_day, covered[1])
                vrows = visit_rows(self.tenant_id, lid, counts, lo_day, hi_day, now)
                pending.extend(vrows)
                pending_items[0] += 1
                done["days"] += len(vrows)
                done["full"] += last == self.days_back
                seen[0] += 1
                if len(pending) >= ROWS_PER_WRITE:
                    await flush()
                await self._progress("visits", seen[0], len(known))

            await gather_all(*(one(ext, lid) for ext, lid in known[lo:hi]))
            # A listing whose call ran out of tries in a 429 storm or a 5xx burst (one in
            # ~15,000 at 30% 429s) is asked again once the others are done: left as it was,
            # its yesterday kept the partial count of the last sync until the next night.
            # Like a retry, it goes before the later ranges' first tries (slots.py).
            for ext, lid in again:
                await one(ext, lid, first=False)
            await flush()
            await asyncio.to_thread(marks.mark, part, done)
            return done

        parts = await gather_all(*(visits(a, b) for a, b in ranges(len(known))))
        visit_errors = [e for p in parts for e in p["errors"]]
        # The window's days are rebuilt as one range; days before it that an updated order
        # touched (an old order cancelled today) are marked and rebuilt on their own.
        window_first = start.astimezone(zone(tz)).date()
        main_from = min([first_day, *(d for d in days if d >= window_first)])
        outside = sorted(d for d in days if d < main_from)
        return {
            "listings": len(ids),
            **orders,
            "visitDays": sum(p["days"] for p in parts),
            # Listings whose visits were fetched for the whole window (the others: only
            # the days that can still change).
            "visitsFullWindow": sum(p.get("full", 0) for p in parts),
            "itemErrors": item_errors[:20],
            "visitErrors": visit_errors[:20],
            # Listings whose visits are missing because Mercado Livre did not answer (both
            # passes ran out of tries): freshness says "partial" until a later sync fetches
            # them (metrics/freshness.py). A listing it refuses is no gap a retry fills.
            "visitsMissing": sum(1 for e in visit_errors if e.get("retry")),
            "daysTouched": {"from": main_from.isoformat(), "to": today.isoformat()},
            "extraDays": [[a.isoformat(), b.isoformat()] for a, b in day_spans(outside)],
            "resumedParts": marks.resumed,
        }

    async def _orders(
        self, client: MLClient, acct, tz: str, now, start, last_ok, known_ids: set[str]
    ) -> dict[str, Any]:
        """Orders created in the window and updated since the last sync, saved; the items
        they sold that are not synced listings, fetched. One part of the run."""
        found = await client.orders(acct.ml_user_id, start, now)
        updated_requests = 0
        # Orders change after they are created (cancelled, refunded): also every order
        # *updated* since the last successful sync, whenever it was created.
        updated: list[dict] = []
        if last_ok is not None:
            since = max(last_ok - UPDATED_OVERLAP, now - timedelta(days=MAX_UPDATED_DAYS))
            before = client.requests
            updated = await client.updated_orders(acct.ml_user_id, since, now)
            updated_requests = client.requests - before
        by_id = {o["id"]: o for o in found}
        by_id.update({o["id"]: o for o in updated})
        found = [o for o in by_id.values() if o.get("date_created")]

        # Items sold that are not synced listings: fetch them (multiget, batched) so the
        # sale counts on its listing; those that cannot be fetched (deleted, 403) still
        # count in the tenant totals, under "other listings".
        sold = {it["item"]["id"] for o in found for it in o.get("order_items") or []}
        candidates = sold - known_ids
        missing = sorted(candidates - await asyncio.to_thread(self._stored_ids, candidates))
        unknown_errors: list[dict] = []
        if missing:
            extra, unknown_errors = await client.items(missing)
            await self._save_listings(extra, acct, tz, now)
        if unknown_errors:
            lost = {e["id"] for e in unknown_errors}
            sales = sum(
                1
                for o in found
                if any(it["item"]["id"] in lost for it in o.get("order_items") or [])
            )
            self.ctx.logger.warning(
                "%d orders of %d items that cannot be fetched (deleted or forbidden) count "
                "under 'other listings'",
                sales,
                len(lost),
            )

        days: set = set()
        for i in range(0, len(found), ROWS_PER_WRITE):
            chunk = found[i : i + ROWS_PER_WRITE]
            _, touched = await asyncio.to_thread(
                self._write, save_orders, self.tenant_id, tz, chunk, now
            )
            days |= touched
            self.ctx.add_records(len(chunk))
            self.ctx.raise_if_cancelled()
        await asyncio.to_thread(self._write, link_order_items, self.tenant_id)
        return {
            "orders": len(found),
            "updatedOrders": len(updated),
            "updatedOrdersRequests": updated_requests,
            "unknownItemsFetched": len(missing) - len(unknown_errors),
            "otherListingsItems": len(unknown_errors),
            "days": sorted(d.isoformat() for d in days),
        }

    async def _save_listings(self, bodies: list[dict], acct, tz: str, now) -> None:
        rows = listing_rows(bodies, self.tenant_id, acct.id, tz, now)
        for i in range(0, len(rows), ROWS_PER_WRITE):
            await asyncio.to_thread(self._write, save_listings, rows[i : i + ROWS_PER_WRITE])
        self.ctx.add_records(len(rows))

    async def _progress(self, phase: str, done: int | None = None, total: int | None = None):
        """Note where the sync is, for the seller (progress.py): at most once a second,
        and always at a phase's start and end."""
        self._at = (phase, done, total)
        if self.note.claim(phase, force=done is not None and done in (0, total)):
            await self._note(phase, done, total, self._noted_waiting)

    async def _waiting(self, waiting: bool) -> None:
        """The client is retrying a request (True: the first of a while) or none any more
        (False): the note says so at once, both ways, so it is never behind the truth (the
        count stands still meanwhile; the client calls only when this changes)."""
        if waiting == self._noted_waiting:
            return
        phase, done, total = self._at
        self.note.claim(phase, force=True)
        self._noted_waiting = waiting
        await self._note(phase, done, total, waiting)

    async def _note(self, phase: str, done: int | None, total: int | None, waiting: bool):
        extra = {"waiting": True} if waiting else {}
        async with self._note_lock:
            await asyncio.to_thread(self.note.write, phase, done, total, **extra)

    def _stored_ids(self, wanted: set[str]) -> set[str]:
        return stored_listing_ids(self.engine, self.tenant_id, wanted)

    def _write(self, fn, *args):
        with self.engine.begin() as conn:
            return fn(conn, *args)


def register(registry: Registry, settings: Settings) -> None:
    limiter_box: dict[tuple[int, int], RateLimiter | SharedRateLimiter] = {}

    def limiter(engine) -> RateLimiter | SharedRateLimiter:
        # One per event loop (the worker's) and database: the app-wide request rate, kept
        # in the database so that every process and host shares it (ML_REQUESTS_PER_S=0:
        # no limit at all).
        key = (id(asyncio.get_running_loop()), id(engine))
        if key not in limiter_box:
            limiter_box.clear()
            limiter_box[key] = (
                SharedRateLimiter(
                    engine, settings.ml_requests_per_s, settings.ml_seller_requests_per_s
                )
                if settings.ml_requests_per_s > 0
                else RateLimiter(0)
            )
        return limiter_box[key]

    async def sync(ctx: JobContext) -> dict[str, Any]:
        p: SyncPayload = ctx.payload
        queue = Queue(ctx.engine, registry, ctx.clock)
        if p.tenantId == "all":
            made = queue.enqueue_many(
                [
                    JobSpec(
                        "sync_mercadolivre",
                        {"tenantId": tid, "daysBack": p.daysBack}
                        | ({"visits": "full"} if p.visits == "full" else {}),
                        tenant_id=tid,
                        scheduled_for=ctx.scheduled_for,
                        unique_key=sync_key(tid),
                    )
                    for tid in connected_tenants(ctx.engine)
                ]
            )
            return {"fannedOut": len(made), "jobIds": [m.id for m in made]}
        try:
            result = await SellerSync(
                ctx, settings, limiter(ctx.engine), p.tenantId, p.daysBack, p.visits
            ).run()
        except NoAccount:
            # Disconnected after this sync was queued (or a schedule names the tenant):
            # nothing to fetch, nothing to rebuild, no failed job every night.
            ctx.logger.info("tenant %s has no Mercado Livre account: sync skipped", p.tenantId)
            return {"skipped": "not_connected"}
        except ReauthRequired as exc:
            _record(ctx, p.tenantId, f"reconnect needed: {exc.message}")
            raise PermanentJobError(
                f"Mercado Livre connection of tenant {p.tenantId} needs re-authorization "
                f"({exc.code}); the seller must connect again"
            ) from None
        except JobCancelled:
            # Asked to stop (a cancel, the worker shutting down, the job taken over by
            # another worker): not a failure of the seller's sync, nothing to record.
            raise
        except PermanentJobError as exc:
            _record(ctx, p.tenantId, str(exc))
            raise
        except Exception as exc:
            _record(ctx, p.tenantId, error_text(exc))  # shown to the seller: no SQL
            raise
        _record(ctx, p.tenantId, missing_visits=result["visitsMissing"])
        span = result["daysTouched"]
        spans = [(span["from"], span["to"]), *[tuple(x) for x in result["extraDays"]]]
        rebuilds = queue.enqueue_many(
            [
                JobSpec(
                    "metrics_aggregation",
                    {"tenantId": p.tenantId, "from": a, "to": b},
                    tenant_id=p.tenantId,
                    scheduled_for=ctx.scheduled_for,
                    unique_key=f"rebuild:{p.tenantId}:{a}:{b}",
                    priority=FOLLOW_UP_PRIORITY,
                )
                for a, b in spans
            ]
        )
        result["rebuildJobId"] = rebuilds[0].id
        result["rebuildJobIds"] = [r.id for r in rebuilds]
        if SCORE_TYPE in registry:  # behind the rebuild, under the same tenant lock
            result["scoreJobId"] = queue.enqueue_many(
                [
                    JobSpec(
                        SCORE_TYPE,
                        {"tenantId": p.tenantId},
                        tenant_id=p.tenantId,
                        scheduled_for=ctx.scheduled_for,
                        unique_key=f"score:{p.tenantId}",
                        priority=FOLLOW_UP_PRIORITY,
                    )
                ]
            )[0].id
        return result

    registry.add(
        JobType(
            name="sync_mercadolivre",
            handler=sync,
            payload_model=SyncPayload,
            aliases=("mercadolivre_sync",),  # its former job_logs name
            timeout_s=3600,
            lock_key=lambda p, t: None if p.tenantId == "all" else tenant_lock(p.tenantId),
            description="Sync listings, orders and visits from Mercado Livre.",
        )
    )


def chain_progress(get_job, sync: dict, score_registered: bool = True) -> tuple[int, int]:
    """(steps done, steps in all) of a sync and the jobs it queues: the sync, its
    rebuild(s), its score. Before the sync ends its rebuilds are counted as one."""
    result = sync.get("result") or {}
    follow = list(result.get("rebuildJobIds") or [])
    if not follow and result.get("rebuildJobId"):
        follow = [result["rebuildJobId"]]
    if result.get("scoreJobId"):
        follow.append(result["scoreJobId"])
    expected = max(len(follow), 1 + int(score_registered))
    done = int(sync["status"] == "completed")
    done += sum(1 for jid in follow if get_job(jid)["status"] == "completed")
    return done, 1 + expected


def _record(
    ctx: JobContext, tenant_id: str, error: str | None = None, missing_visits: int = 0
) -> None:
    record_outcome(ctx.engine, tenant_id, "sync", ctx.clock.now(), error, missing_visits)
