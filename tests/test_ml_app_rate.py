"""The Mercado Livre request rate is app-wide: every worker process shares one limit kept
in the database, and a 429 slows every process down (ratelimit.py)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import httpx
from sqlalchemy import select

from superseller.db.schema import jobs, ml_rate_buckets
from superseller.jobs.queue import JobSpec, Queue
from superseller.mercadolivre import ratelimit
from superseller.mercadolivre.ratelimit import SharedRateLimiter
from superseller.wiring import build_registry
from tests.support.ml import connected_tenant, sandbox, sandbox_env, settings_for
from tests.support.procs import ROOT, start_cli, stop
from tests.support.waiting import wait_until

APP_RATE = 20.0  # the sandbox's app quota, and ML_REQUESTS_PER_S
TENANTS = 50
WORKERS = 4


def _worker(db_url: str, sb, data_dir: Path) -> subprocess.Popen:
    env = sandbox_env(
        sb.url,
        PYTHONPATH=ROOT / "src",
        DATA_DIR=data_dir,
        ML_REQUESTS_PER_S=APP_RATE,
        ML_CONCURRENCY=8,
        JOB_POLL_S=0.1,
        JOB_SQLITE_POLL_S=0.1,
    )
    return start_cli(
        db_url,
        "worker",
        "--concurrency",
        "4",
        env=env,
        cwd=data_dir,
        stdout=subprocess.DEVNULL,
    )


def _max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_four_worker_processes_keep_one_app_wide_rate_without_429s(db_url, engine, tmp_path):
    with sandbox(listings=3, history_days=2, orders_per_day=2) as sb:
        settings = settings_for(sb, tmp_path)
        for i in range(TENANTS):
            httpx.post(f"{sb.url}/_sandbox/login-as", json={"user_id": 5000 + i})
            connected_tenant(engine, settings, f"t{i:02d}")
        httpx.post(f"{sb.url}/_sandbox/faults", json={"requests_per_s": APP_RATE})
        queue = Queue(engine, build_registry(settings))
        made = queue.enqueue_many(
            [
                JobSpec(
                    "sync_mercadolivre",
                    {"tenantId": f"t{i:02d}", "daysBack": 1},
                    tenant_id=f"t{i:02d}",
                    max_attempts=1,
                )
                for i in range(TENANTS)
            ]
        )
        ids = [m.id for m in made]
        began = time.time()
        procs = [_worker(db_url, sb, tmp_path) for _ in range(WORKERS)]
        try:

            def finished():
                with engine.connect() as conn:
                    states = conn.execute(select(jobs.c.status).where(jobs.c.id.in_(ids))).scalars()
                    return all(s in ("completed", "failed", "cancelled") for s in states)

            wait_until(finished, timeout=90, interval=0.5, message="every sync to end")
        finally:
            errors = [(p, stop(p)) for p in procs]
        with engine.connect() as conn:
            states = conn.execute(select(jobs.c.status).where(jobs.c.id.in_(ids))).scalars()
            assert set(states) == {"completed"}, [p.stderr.read()[-2000:] for p, _ in errors]
        seen = httpx.get(f"{sb.url}/_sandbox/request-times").json()

    sent = [t for t in seen["requests"] if t >= began]
    limited = [t for t in seen["limited"] if t >= began]
    assert len(sent) >= TENANTS * 5  # the syncs really talked to Mercado Livre
    worst = _max_in_window(sent, 5.0)
    assert worst <= 21 * 5, f"{worst} requests in one 5 s window, {len(limited)} 429s"
    assert limited == [], f"{len(limited)} quota 429s"


def test_a_429_slows_every_process_sharing_the_bucket_and_the_rate_recovers(engine):
    """Two limiters (two processes' views) of one bucket: a 429 seen by one halves the rate
    both get, once for a burst of 429s, and the rate grows back with time."""
    t0 = 1_000_000.0
    assert ratelimit.take(engine, "app", 20.0, 2, now=t0).got == 2
    assert ratelimit.slow_down(engine, "app", 20.0, now=t0 + 0.1) == 10.0
    assert ratelimit.slow_down(engine, "app", 20.0, now=t0 + 0.2) == 10.0  # same burst
    # The bucket was emptied: nobody gets a token at once; the next is due at the new rate.
    nothing = ratelimit.take(engine, "app", 20.0, 2, now=t0 + 0.1)
    assert nothing.got == 0 and nothing.wait_s > 0.05
    # Refilled at the lowered rate, recovering additively: 10 s later back at the setting.
    assert ratelimit.take(engine, "app", 20.0, 2, now=t0 + 2.1).rate < 20.0
    assert ratelimit.take(engine, "app", 20.0, 2, now=t0 + 12.1).rate == 20.0
    with engine.connect() as conn:
        assert conn.execute(select(ml_rate_buckets.c.name)).scalars().all() == ["app"]


def _granted_in_one_second(make_limiters) -> int:
    """How many `acquire()`s the limiters `make_limiters()` gives (made in the event loop)
    grant together in one second, each spending as fast as it is let."""

    async def run() -> int:
        limiters = make_limiters()
        got = 0
        deadline = time.monotonic() + 1.0

        async def spend(lim):
            nonlocal got
            while True:
                await lim.acquire()
                if time.monotonic() >= deadline:
                    return
                got += 1

        await asyncio.gather(*(spend(lim) for lim in limiters))
        return got

    return asyncio.run(run())


def test_two_limiters_share_one_budget(engine):
    """The limit is the database row's, not each limiter's: two of them together get no
    more than the rate."""

    def two():
        return SharedRateLimiter(engine, 10.0), SharedRateLimiter(engine, 10.0)

    # 1 s at 10/s, plus the initial burst (BURST_S of tokens): never the 2 x 10 of two
    # process-local limiters.
    assert _granted_in_one_second(two) <= 10 + 2 + 1


def test_an_optional_per_seller_rate_is_shared_too(engine):
    """ML_SELLER_REQUESTS_PER_S: each seller's requests also come out of its own shared bucket;
    two processes' views of one seller get that seller's rate together, not each."""

    def views():
        first, second = (SharedRateLimiter(engine, 1000.0, seller_rate=5.0) for _ in range(2))
        return [first.for_seller(42), second.for_seller(42)]

    assert _granted_in_one_second(views) <= 5 + 1 + 1
    with engine.connect() as conn:
        names = conn.execute(select(ml_rate_buckets.c.name)).scalars().all()
    assert sorted(names) == ["app", "seller:42"]


def _ml_bucket_429s(arrivals: list[float], quota: float, start_tokens: float) -> int:
    """Mercado Livre's side, as the sandbox models it: a bucket of one second's worth of
    requests refilled at the quota; a request finding it empty is a quota 429."""
    tokens, last, refused = start_tokens, arrivals[0], 0
    for t in arrivals:
        tokens = min(quota, tokens + (t - last) * quota)
        last = t
        if tokens < 1:
            refused += 1
        else:
            tokens -= 1
    return refused


def test_a_fleet_spending_all_it_may_leaves_mercado_livre_s_bucket_room(engine):
    """A night at full speed: every token the shared limiter grants is spent at once, and
    reaches Mercado Livre 0-150 ms later (a busy process, the network). ML's bucket begins
    nearly drained, as a night spent exactly at the quota leaves it; the limiter keeps
    under the quota, so the bucket fills back up and no request is refused, while the
    requests still go out at more than 95% of the quota."""
    import random

    quota = 100.0
    lim = SharedRateLimiter(engine, quota)
    rng = random.Random(7)
    t0 = t = 2_000_000.0
    arrivals: list[float] = []
    while t < t0 + 30:  # a process asks for a batch, spends it, asks again
        got = ratelimit.take(engine, "app", lim.app.ceiling, lim.app.batch, now=t)
        arrivals += [t + rng.uniform(0, 0.15) for _ in range(got.got)]
        t += max(got.wait_s, lim.app.batch / quota)
    arrivals.sort()
    assert len(arrivals) >= 0.95 * quota * 30
    assert _ml_bucket_429s(arrivals, quota, start_tokens=3.0) == 0


def test_a_request_takes_its_token_only_when_it_can_be_sent():
    """Thirty requests queued behind four slots (Mercado Livre slow to answer): only the four
    being sent hold tokens. A token taken while waiting for a slot would be spent whenever
    the slot came, and the waiters would then go out in one bunch, above the rate."""
    from superseller.mercadolivre.client import MLClient

    class Counting:
        granted = 0

        async def acquire(self):
            Counting.granted += 1

        async def slow_down(self):
            pass

    class Tokens:
        def current(self):
            return "APP_USR-test", 1

    async def run() -> tuple[int, int]:
        gate, arrived = asyncio.Event(), [0]

        async def slow_ml(request: httpx.Request) -> httpx.Response:
            arrived[0] += 1
            await gate.wait()
            return httpx.Response(200, json={"id": 1})

        client = MLClient("http://ml.invalid", Tokens(), limiter=Counting(), concurrency=4)
        client.http = httpx.AsyncClient(
            base_url="http://ml.invalid", transport=httpx.MockTransport(slow_ml)
        )
        tasks = [asyncio.create_task(client.get("/users/me")) for _ in range(30)]
        deadline = time.monotonic() + 10
        while arrived[0] < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for _ in range(50):  # every waiter gets its chance to run
            await asyncio.sleep(0)
        held = Counting.granted
        gate.set()
        await asyncio.gather(*tasks)
        await client.close()
        return held, Counting.granted

    held, total = asyncio.run(run())
    assert held == 4
    assert total == 30
