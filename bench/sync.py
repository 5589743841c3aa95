"""Sync benchmark: a 1,000-listing, ~10,000-order seller, 30 days back, from the sandbox
(its own process) with 50 ms latency and a 20 requests/s limit.

Prints requests made vs the minimum needed, wall time vs the rate-limit bound
(minimum requests / 20 per s; goal <= 1.15x), and the same data fetched by a
naive sequential client (one request at a time, no back-off but Retry-After).

The sync is the daily schedule's: the tenant's last successful sync was 24 h ago, so it
also fetches the orders *updated* since then (minus the 2 h overlap); those requests are
printed apart and are not in the minimum.

    uv run python bench/sync.py [--no-naive]
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from sandbox_proc import start_sandbox

from superseller.config import Settings
from superseller.db import migrate
from superseller.db.engine import make_engine
from superseller.jobs.admin import JobAdmin
from superseller.jobs.queue import Queue
from superseller.jobs.worker import Worker, WorkerOptions
from superseller.mercadolivre.connect import connect_sandbox
from superseller.tenants import create_tenant
from superseller.wiring import build_registry

LISTINGS, ORDERS_PER_DAY, DAYS, RATE, LATENCY_MS = 1000, 333, 30, 20.0, 50


def naive(url: str, token: str, user_id: int, start: datetime, end: datetime) -> int:
    """One request at a time, the obvious loops; returns requests made."""
    http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    n = 0

    def get(path, params):
        nonlocal n
        while True:
            n += 1
            r = http.get(path, params=params)
            if r.status_code == 429:
                time.sleep(float(r.headers.get("retry-after", 1)))
                continue
            r.raise_for_status()
            return r.json()

    ids, offset = [], 0
    while True:
        page = get(f"/users/{user_id}/items/search", {"offset": offset, "limit": 50})
        ids += page["results"]
        offset += 50
        if offset >= page["paging"]["total"]:
            break
    for i in range(0, len(ids), 20):
        get("/items", {"ids": ",".join(ids[i : i + 20])})
    offset = 0
    fmt = "%Y-%m-%dT%H:00:00.000-00:00"
    while True:
        page = get(
            "/orders/search",
            {
                "seller": user_id,
                "order.date_created.from": start.strftime(fmt),
                "order.date_created.to": (end + timedelta(hours=1)).strftime(fmt),
                "limit": 50,
                "offset": offset,
            },
        )
        offset += len(page["results"])
        if not page["results"] or offset >= page["paging"]["total"]:
            break
    for ext in ids:
        get(f"/items/{ext}/visits/time_window", {"last": DAYS, "unit": "day"})
    return n


def main() -> None:
    proc, url = start_sandbox(LISTINGS, DAYS + 2, ORDERS_PER_DAY)
    try:
        httpx.post(
            f"{url}/_sandbox/faults",
            json={"latency_ms": LATENCY_MS, "requests_per_s": RATE, "retry_after_s": 0.1},
        )
        with tempfile.TemporaryDirectory() as d:
            settings = Settings(
                data_dir=Path(d),
                database_url=f"sqlite:///{d}/b.db",
                ml_api_url=url,
                ml_auth_url=f"{url}/authorization",
                ml_client_id="sandbox-app",
                ml_client_secret="sandbox-secret",
                ml_redirect_uri="http://localhost/cb",
                ml_requests_per_s=RATE * 0.98,
                ml_concurrency=8,
            )
            eng = make_engine(settings.resolved_database_url())
            migrate.upgrade(eng)
            create_tenant(eng, "Bench", tenant_id="t1")
            connect_sandbox(eng, settings, "t1", datetime.now(UTC))
            from superseller.tenants import record_outcome

            # The daily schedule's sync: the last one succeeded 24 h ago.
            record_outcome(eng, "t1", "sync", datetime.now(UTC) - timedelta(hours=24))
            reg = build_registry(settings)
            jid = (
                Queue(eng, reg)
                .enqueue(
                    "sync_mercadolivre",
                    {"tenantId": "t1", "daysBack": DAYS},
                    tenant_id="t1",
                    queue="bench",
                )
                .id
            )
            before = httpx.get(f"{url}/_sandbox/stats").json()
            t = time.perf_counter()
            Worker(
                eng, reg, WorkerOptions(concurrency=1, queues=["bench"], burst=True, listen=False)
            ).run()
            ours = time.perf_counter() - t
            job = JobAdmin(eng).get(jid)
            assert job["status"] == "completed", job["last_error"]
            r = job["result"]
            after = httpx.get(f"{url}/_sandbox/stats").json()
            # Minimum: search pages of 50, multigets of 20, order pages of 50, one visits
            # call per listing.
            minimum = (
                math.ceil(LISTINGS / 50)
                + math.ceil(LISTINGS / 20)
                + math.ceil(r["orders"] / 50)
                + LISTINGS
            )
            bound = minimum / RATE
            from sqlalchemy import select

            from superseller.db.schema import marketplace_accounts
            from superseller.mercadolivre.tokens import TokenCipher

            with eng.connect() as conn:
                acct = conn.execute(select(marketplace_accounts)).one()
            token = TokenCipher(settings.encryption_key()).decrypt(acct.access_token_enc)
            now = datetime.now(UTC)
            naive_requests, naive_s = 0, float("nan")
            if "--no-naive" not in sys.argv:
                t = time.perf_counter()
                naive_requests = naive(
                    url, token, acct.ml_user_id, now - timedelta(days=DAYS + 1), now
                )
                naive_s = time.perf_counter() - t
        print(
            f"seller: {LISTINGS} listings, {r['orders']} orders in {DAYS} days; sandbox: "
            f"{LATENCY_MS} ms latency, {RATE:g} requests/s limit"
        )
        print(f"{'client':22s} {'requests':>9s} {'429s':>6s} {'wall s':>8s} {'vs bound':>9s}")
        print(f"{'minimum / bound':22s} {minimum:9d} {'':>6s} {bound:8.1f} {1:9.2f}")
        print(
            f"{'superseller':22s} {r['requests']:9d} {after['429'] - before['429']:6d} "
            f"{ours:8.1f} {ours / bound:9.2f}"
        )
        print(
            f"{'naive sequential':22s} {naive_requests:9d} {'':>6s} {naive_s:8.1f} "
            f"{naive_s / bound:9.2f}"
        )
        print(
            f"updated-orders window: {r['updatedOrders']} orders updated in the last 26 h, "
            f"{r['updatedOrdersRequests']} extra requests (inside superseller's count)"
        )
        print(
            f"requests vs minimum: {r['requests'] / minimum:.2f}x; "
            f"naive/superseller wall: {naive_s / ours:.2f}x (goal: ours <= 1.15x bound)"
        )
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
