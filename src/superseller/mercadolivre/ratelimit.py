"""The Mercado Livre request rate, app-wide: token buckets kept in the database.

Mercado Livre counts requests per *app*, so the rate (`ML_REQUESTS_PER_S`) must hold
however many worker processes and hosts run. Each limit is one row of `ml_rate_buckets`
("app", and "seller:<user id>" when `ML_SELLER_REQUESTS_PER_S` is set):

- **refill by elapsed time**: a taker reads the row under a row lock (PostgreSQL
  `SELECT ... FOR UPDATE`; SQLite transactions begin IMMEDIATE, one writer at a time),
  adds `rate x elapsed` tokens up to a small burst, takes what it may and writes the row
  back with a version check (compare-and-swap: a lost race is simply tried again);
- **small batches**: a process takes up to `batch` tokens per round trip and spends them
  locally within `LEASE_S` (unused ones lapse, so a batch never becomes a late burst);
- **headroom**: the buckets refill at `SPEND` (97%) of the setting. Mercado Livre's own
  bucket refills at the quota; a client spending exactly the quota keeps it at whatever
  level it reached, so every bit of jitter between taking a token and the request's
  arrival (a process descheduled, a busy network) drains it for good, and over a long
  night the first 429 is a matter of time (one in 72,626 requests in bench/fleet.py on a
  quiet machine at 1.00). At 97% Mercado Livre's bucket refills by 3% of the rate every
  second, so jitter is forgiven; the makespan pays 3%;
- **back-pressure (AIMD)**: a quota 429 halves the row's `rate` (not below `FLOOR` of
  the setting, at most once per `DECREASE_EVERY_S`) and empties the bucket, for every
  process; the rate then grows back by `RECOVER_PER_S` of the setting per second.

Times are epoch seconds of the taking host's clock: keep hosts on NTP (a skew of a few
milliseconds only shifts when a token is due; a negative elapsed time counts as zero).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from superseller.db.schema import ml_rate_buckets as buckets

BURST_S = 0.1  # a bucket holds at most this many seconds' worth of tokens
LEASE_S = 0.1  # tokens taken in a batch are spent within this, or lapse
DECREASE = 0.5  # a 429 multiplies the shared rate by this...
FLOOR = 0.1  # ...down to this share of the setting
DECREASE_EVERY_S = 1.0  # a burst of 429s seen by many processes halves the rate once
RECOVER_PER_S = 0.05  # share of the setting added back per second (half to full: 10 s)
MAX_ELAPSED_S = 60.0
SPEND = 0.97  # share of a setting the buckets refill at (headroom: see above)


@dataclass(frozen=True)
class Take:
    got: int
    wait_s: float  # when nothing was got: how long until the next token is due
    rate: float


def _batch(rate: float) -> int:
    return max(1, min(10, math.ceil(rate / 10)))


def take(engine: Engine, name: str, ceiling: float, want: int, now: float | None = None) -> Take:
    """Take up to `want` tokens from bucket `name` (made on first use). One transaction."""
    for _ in range(20):
        t = time.time() if now is None else now
        with engine.begin() as conn:
            row = conn.execute(
                select(
                    buckets.c.rate,
                    buckets.c.tokens,
                    buckets.c.refilled_at,
                    buckets.c.version,
                )
                .where(buckets.c.name == name)
                .with_for_update()
            ).first()
            if row is None:
                got = min(want, max(1, int(ceiling * BURST_S)))
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(buckets).values(
                                name=name,
                                rate=ceiling,
                                tokens=max(1.0, ceiling * BURST_S) - got,
                                refilled_at=t,
                                decreased_at=0.0,
                                version=0,
                            )
                        )
                except IntegrityError:  # another process made it first
                    continue
                return Take(got, 0.0, ceiling)
            rate, tokens, refilled_at, version = row
            elapsed = min(max(0.0, t - refilled_at), MAX_ELAPSED_S)
            rate = min(ceiling, rate + ceiling * RECOVER_PER_S * elapsed)
            rate = max(rate, ceiling * FLOOR)
            capacity = max(1.0, rate * BURST_S, float(want))  # room for one batch
            tokens = min(capacity, tokens + rate * elapsed)
            got = min(want, int(tokens)) if tokens >= 1 else 0
            done = conn.execute(
                update(buckets)
                .where(buckets.c.name == name, buckets.c.version == version)
                .values(
                    rate=rate,
                    tokens=tokens - got,
                    refilled_at=max(t, refilled_at),
                    version=version + 1,
                )
            ).rowcount
            if not done:
                continue
        return Take(got, 0.0 if got else (1.0 - tokens) / rate, rate)
    return Take(0, 0.05, ceiling)  # heavy contention: wait a little and ask again


def slow_down(engine: Engine, name: str, ceiling: float, now: float | None = None) -> float:
    """A quota 429: the shared rate drops (multiplicative decrease) and the bucket empties,
    for every process. Returns the new rate."""
    t = time.time() if now is None else now
    with engine.begin() as conn:
        row = conn.execute(
            select(buckets.c.rate, buckets.c.decreased_at, buckets.c.tokens)
            .where(buckets.c.name == name)
            .with_for_update()
        ).first()
        if row is None:
            return ceiling
        rate, decreased_at, tokens = row
        if t - decreased_at < DECREASE_EVERY_S:
            return rate
        rate = max(ceiling * FLOOR, rate * DECREASE)
        conn.execute(
            update(buckets)
            .where(buckets.c.name == name)
            .values(
                rate=rate,
                tokens=min(tokens, 0.0),
                refilled_at=t,
                decreased_at=t,
                version=buckets.c.version + 1,
            )
        )
        return rate


class SharedBucket:
    """One database bucket as seen by one process (one event loop)."""

    def __init__(self, engine: Engine, name: str, rate: float):
        self.engine = engine
        self.name = name
        self.ceiling = rate
        self.batch = _batch(rate)
        self._local = 0
        self._lease_ends = 0.0
        self._lock = asyncio.Lock()
        self.round_trips = 0

    async def acquire(self) -> None:
        async with self._lock:  # FIFO: waiters queue here, one asks the database
            while True:
                if self._local > 0 and time.monotonic() < self._lease_ends:
                    self._local -= 1
                    return
                self._local = 0
                got = await asyncio.to_thread(
                    take, self.engine, self.name, self.ceiling, self.batch
                )
                self.round_trips += 1
                if got.got:
                    self._local = got.got
                    self._lease_ends = time.monotonic() + LEASE_S
                    continue
                await asyncio.sleep(min(max(got.wait_s, 0.001), 1.0))

    async def slow_down(self) -> None:
        self._local = 0
        await asyncio.to_thread(slow_down, self.engine, self.name, self.ceiling)


class SharedRateLimiter:
    """The `RateLimiter` interface over database buckets: a seller's bucket (optional),
    then the app's. `for_seller` gives a seller's view sharing this process's app bucket."""

    def __init__(self, engine: Engine, app_rate: float, seller_rate: float = 0.0):
        self.engine = engine
        self.app = SharedBucket(engine, "app", app_rate * SPEND)
        self.seller_rate = seller_rate * SPEND
        self.seller: SharedBucket | None = None

    def for_seller(self, user_id: int) -> SharedRateLimiter:
        if not self.seller_rate:
            return self
        view = SharedRateLimiter.__new__(SharedRateLimiter)
        view.engine = self.engine
        view.app = self.app
        view.seller_rate = self.seller_rate
        view.seller = SharedBucket(self.engine, f"seller:{user_id}", self.seller_rate)
        return view

    async def acquire(self) -> None:
        if self.seller is not None:
            await self.seller.acquire()
        await self.app.acquire()

    async def slow_down(self) -> None:
        """Mercado Livre said 429: every process slows down."""
        await self.app.slow_down()
        if self.seller is not None:
            await self.seller.slow_down()
