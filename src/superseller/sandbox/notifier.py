"""The sandbox's notification emitter: Mercado Livre's webhooks, for the changes the
sandbox makes (orders created as its time passes, orders changed, items edited).

Given a callback URL it POSTs each notification as ML does (the generic body of the
reference, `user_id` sometimes a string), with ML's retry behaviour: a delivery that is
not answered 200 within the timeout is tried again, 8 attempts in all over about an
hour (`retry_scale` compresses that schedule, e.g. 0.001 for tests). A notification
never delivered is listed by `GET /missed_feeds` (`MissedFeed`), as Mercado Livre lists
them: per application (every seller's, each with its `user_id`), kept 2 days.

Fault modes: `duplicate_rate` (sent twice, same `_id`), `out_of_order_rate` (held back
and sent after later ones), `drop_rate` (never sent; only `/missed_feeds` has it).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from superseller.sandbox import data

# Seconds before each retry: 8 attempts spread over about an hour.
RETRY_DELAYS_S = (0, 60, 120, 300, 600, 900, 900, 600)
MISSED_KEPT = timedelta(days=2)  # how long /missed_feeds lists a notification


@dataclass
class MissedFeed:
    """One application's never-delivered notifications, for `GET /missed_feeds`: whichever
    seller they are about (a sandbox fleet shares one). Oldest first; a read from offset 0
    first forgets what is older than MISSED_KEPT, so the pages of one paged read stay put
    (only appends happen between them)."""

    notes: list[tuple[datetime, dict]] = field(default_factory=list)

    def add(self, note: dict, now: datetime) -> None:
        self.notes.append((now, note))

    def page(self, topic: str | None, offset: int, limit: int, now: datetime) -> dict:
        if offset == 0:
            cutoff = now - MISSED_KEPT
            self.notes = [(t, n) for t, n in self.notes if t >= cutoff]
        found = [n for _, n in self.notes if topic is None or n["topic"] == topic]
        return {
            "messages": found[offset : offset + limit],
            "paging": {"total": len(found), "offset": offset, "limit": limit},
        }


@dataclass
class EmitterConfig:
    callback_url: str
    retry_scale: float = 1.0
    timeout_s: float = 0.5  # ML wants the 200 within 500 ms
    duplicate_rate: float = 0.0
    out_of_order_rate: float = 0.0
    drop_rate: float = 0.0
    string_user_id_rate: float = 0.5  # the reference's examples send it both ways
    tick_s: float = 0.2
    concurrency: int = 8
    seed: int = 1


@dataclass
class Emitter:
    state: Any  # SandboxState
    config: EmitterConfig
    last_scan: datetime | None = None
    events: list[tuple[str, str]] = field(default_factory=list)  # (topic, resource) to send
    held: list[dict] = field(default_factory=list)  # out-of-order: sent after the next ones
    missed: list[dict] = field(default_factory=list)  # this emitter's (its count)
    stats: dict[str, int] = field(
        default_factory=lambda: {
            "created": 0,
            "posts": 0,
            "delivered": 0,
            "duplicates": 0,
            "out_of_order": 0,
            "dropped": 0,
            "failed_attempts": 0,
            "exhausted": 0,
        }
    )
    ack_ms: deque = field(default_factory=lambda: deque(maxlen=100_000))  # answered 200
    task: asyncio.Task | None = None
    inflight: set = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.config.seed)
        self.slots = asyncio.Semaphore(self.config.concurrency)
        self.http = httpx.AsyncClient(timeout=self.config.timeout_s)

    def start(self) -> None:
        self.last_scan = self.state.now()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        for t in list(self.inflight):
            t.cancel()
        await self.http.aclose()

    def add(self, topic: str, resource: str) -> None:
        self.events.append((topic, resource))

    def body(self, topic: str, resource: str) -> dict:
        now = self.state.now()
        user: Any = self.state.spec.user_id
        if self.rng.random() < self.config.string_user_id_rate:
            user = str(user)
        return {
            "_id": str(uuid.uuid4()),
            "resource": resource,
            "user_id": user,
            "topic": topic,
            "application_id": self.state.client_id,
            "attempts": 1,
            "sent": data.utc_time(now),
            "received": data.utc_time(now),
        }

    def scan(self) -> None:
        """Queue a notification per order the passing time created since the last scan
        (a sale made on demand is notified by `/_sandbox/sell` itself)."""
        now = self.state.now()
        if self.last_scan is None or now <= self.last_scan:
            return
        for o in data.orders_between(self.state.spec, self.last_scan, now, now):
            self.add("orders_v2", f"/orders/{o['id']}")
        self.last_scan = now

    async def _run(self) -> None:
        while True:
            self.scan()
            self.flush()
            await asyncio.sleep(self.config.tick_s)

    def flush(self) -> None:
        events, self.events = self.events, []
        for topic, resource in events:
            note = self.body(topic, resource)
            self.stats["created"] += 1
            r = self.rng.random()
            if r < self.config.drop_rate:
                self.stats["dropped"] += 1
                self._missed(note)
                continue
            if self.rng.random() < self.config.out_of_order_rate:
                self.stats["out_of_order"] += 1
                self.held.append(note)
                continue
            self._send(note)
            if self.rng.random() < self.config.duplicate_rate:
                self.stats["duplicates"] += 1
                self._send(dict(note))
            if self.held:  # what was held back goes after a later one
                held, self.held = self.held, []
                for h in held:
                    self._send(h)
        if self.held and not self.events:
            held, self.held = self.held, []
            for h in held:
                self._send(h)

    def _send(self, note: dict) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(note))
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)

    async def _deliver(self, note: dict) -> None:
        for attempt, delay in enumerate(RETRY_DELAYS_S, start=1):
            if delay:
                await asyncio.sleep(delay * self.config.retry_scale)
            body = {**note, "attempts": attempt, "sent": data.utc_time(self.state.now())}
            async with self.slots:
                self.stats["posts"] += 1
                began = time.perf_counter()
                try:
                    resp = await self.http.post(self.config.callback_url, json=body)
                    ok = resp.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    self.ack_ms.append((time.perf_counter() - began) * 1000)
            if ok:
                self.stats["delivered"] += 1
                return
            self.stats["failed_attempts"] += 1
        self.stats["exhausted"] += 1
        self._missed(note)

    def _missed(self, note: dict) -> None:
        self.missed.append(note)
        self.state.missed_feed.add(note, self.state.now())
