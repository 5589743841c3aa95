"""Queue throughput: SuperSeller's job engine vs PgQueuer and Procrastinate, one run.

Each system gets a fresh PostgreSQL database, enqueues N no-op jobs in batches,
then drains them; we print enqueue and processing jobs/s and our ratio to each
peer. SuperSeller also writes a job_logs row per run. Then the enqueue→start
latency of an idle SuperSeller worker (LISTEN/NOTIFY wake-up) as p50/p99.

    uv run --group bench python bench/queue_throughput.py [--jobs 20000]
    # ours against PgQueuer only, five alternating rounds:
    uv run --group bench python bench/queue_throughput.py --systems ss1,pgqueuer --rounds 5
    # PgQueuer also as its own drain benchmark runs it (5 dequeuers x batch 10, uvloop):
    uv run --group bench python bench/queue_throughput.py --systems ss1,pgqueuer,pgqueuer5 --jobs 50000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from superseller.db import migrate
from superseller.db.engine import make_engine
from superseller.db.schema import job_logs, jobs
from superseller.jobs import JobType, Registry
from superseller.jobs.queue import JobSpec, Queue
from superseller.jobs.worker import Worker, WorkerOptions

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def fresh_db(prefix: str) -> str:
    name = f"bench_{prefix}_{uuid.uuid4().hex[:8]}"
    eng = make_engine(ADMIN).execution_options(isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    eng.dispose()
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def drop_db(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    eng = make_engine(ADMIN).execution_options(isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    eng.dispose()


# BENCH_TENANT_CAP=N: jobs spread over 200 tenants and workers with JOB_TENANT_MAX_RUNNING=N
# (the fair claim); unset: jobs without a tenant and the plain claim.
TENANT_CAP = int(os.environ.get("BENCH_TENANT_CAP", "0"))


def _spec(i: int) -> JobSpec:
    return JobSpec("noop", tenant_id=f"t{i % 200}") if TENANT_CAP else JobSpec("noop")


async def noop(ctx) -> None:
    """The no-op job: async, like the peers' (no thread hop per job)."""
    return


def noop_registry() -> Registry:
    reg = Registry()
    reg.add(JobType("noop", noop))
    return reg


# -- SuperSeller --------------------------------------------------------------
def superseller_enqueue(url: str, n: int, batch: int) -> float:
    eng = make_engine(url)
    migrate.upgrade(eng)
    q = Queue(eng, noop_registry())
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        q.enqueue_many([_spec(i + k) for k in range(min(batch, n - i))])
    dt = time.perf_counter() - t0
    eng.dispose()
    return n / dt


def superseller_drain(url: str, n: int, processes: int, concurrency: int, batch: int) -> float:
    """Drain with `processes` worker processes (this one included when processes == 1)."""
    if processes == 1:
        eng = make_engine(url)
        opts = WorkerOptions(
            concurrency=concurrency,
            batch_size=batch,
            burst=True,
            listen=False,
            tenant_max_running=TENANT_CAP,
        )
        t0 = time.perf_counter()
        Worker(eng, noop_registry(), opts).run()
        dt = time.perf_counter() - t0
    else:
        cmd = [sys.executable, __file__, "--worker-process", url, str(concurrency), str(batch)]
        t0 = time.perf_counter()
        procs = [subprocess.Popen(cmd) for _ in range(processes)]
        for p in procs:
            p.wait()
        dt = time.perf_counter() - t0
        eng = make_engine(url)
    with eng.connect() as conn:
        done = conn.execute(
            select(func.count()).select_from(jobs).where(jobs.c.status == "completed")
        ).scalar()
        logged = conn.execute(select(func.count()).select_from(job_logs)).scalar()
    eng.dispose()
    assert done == n and logged == n, (done, logged)
    return n / dt


def worker_process(url: str, concurrency: int, batch: int) -> None:
    eng = make_engine(url)
    opts = WorkerOptions(
        concurrency=concurrency,
        batch_size=batch,
        burst=True,
        listen=False,
        tenant_max_running=TENANT_CAP,
    )
    Worker(eng, noop_registry(), opts).run()


def superseller_latency(url: str, samples: int) -> tuple[float, float]:
    eng = make_engine(url)
    migrate.upgrade(eng)
    reg = noop_registry()
    worker = Worker(eng, reg, WorkerOptions(concurrency=4, poll_s=5.0))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    time.sleep(1.0)  # let the listener connect and the worker go idle
    q = Queue(eng, reg)
    ids = []
    for _ in range(samples):
        ids.append(q.enqueue("noop").id)
        time.sleep(0.01)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with eng.connect() as conn:
            left = conn.execute(
                select(func.count()).select_from(jobs).where(jobs.c.status != "completed")
            ).scalar()
        if not left:
            break
        time.sleep(0.1)
    worker.stop()
    thread.join(10)
    with eng.connect() as conn:
        rows = conn.execute(
            select(jobs.c.created_at, job_logs.c.started_at).join(
                job_logs, job_logs.c.job_id == jobs.c.id
            )
        ).all()
    eng.dispose()
    lat = sorted((s - c).total_seconds() * 1000 for c, s in rows)
    return statistics.median(lat), lat[int(len(lat) * 0.99) - 1]


# -- PgQueuer -----------------------------------------------------------------
async def pgqueuer_run(url: str, n: int, batch: int, dequeuers: int = 1) -> tuple[float, float]:
    """PgQueuer on asyncpg (its fastest driver; psycopg gave it a third of this here):
    `dequeuers` queue managers, each on its own connection, draining together."""
    import asyncpg
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.qm import QueueManager
    from pgqueuer.queries import Queries
    from pgqueuer.types import QueueExecutionMode

    conn = await asyncpg.connect(url)
    queries = Queries(AsyncpgDriver(conn))
    await queries.install()
    t0 = time.perf_counter()
    for i in range(0, n, 1000):
        k = min(1000, n - i)
        await queries.enqueue(["noop"] * k, [None] * k, [0] * k)
    enq = n / (time.perf_counter() - t0)

    managers = []
    for _ in range(dequeuers):
        qm = QueueManager(Queries(AsyncpgDriver(await asyncpg.connect(url))))

        @qm.entrypoint("noop")
        async def pgq_noop(job) -> None:
            return None

        managers.append(qm)
    t0 = time.perf_counter()
    await asyncio.gather(
        *(qm.run(batch_size=batch, mode=QueueExecutionMode.drain) for qm in managers)
    )
    proc = n / (time.perf_counter() - t0)
    return enq, proc


def pgqueuer_own_settings(url: str, n: int) -> tuple[float, float]:
    """PgQueuer as its own drain benchmark runs it (tools/benchmark.py --strategy drain):
    five dequeue tasks of batch 10, on uvloop."""
    import uvloop

    return uvloop.run(pgqueuer_run(url, n, batch=10, dequeuers=5))


# -- Procrastinate ------------------------------------------------------------
async def procrastinate_run(url: str, n: int, concurrency: int) -> tuple[float, float]:
    import logging

    import procrastinate

    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(name="noop")
    async def pro_noop() -> None:
        return None

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        t0 = time.perf_counter()
        for i in range(0, n, 1000):
            await pro_noop.batch_defer_async(*[{} for _ in range(min(1000, n - i))])
        enq = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        await app.run_worker_async(
            concurrency=concurrency, wait=False, install_signal_handlers=False
        )
        proc = n / (time.perf_counter() - t0)
    return enq, proc


SYSTEMS = ("ss1", "ss2", "pgqueuer", "pgqueuer5", "procrastinate", "latency")
LABELS = {
    "ss1": "superseller (1 process)",
    "ss2": "superseller (2 processes)",
    "pgqueuer": "pgqueuer",
    "pgqueuer5": "pgqueuer (5 x batch 10, uvloop)",
    "procrastinate": "procrastinate",
}


def run_system(system: str, n: int, batch: int, procrastinate_jobs: int) -> tuple[float, float]:
    """(enqueue/s, process/s) of one system on a fresh database."""
    prefix = {
        "ss1": "ss",
        "ss2": "ss",
        "pgqueuer": "pgq",
        "pgqueuer5": "pgq",
        "procrastinate": "pro",
    }[system]
    url = fresh_db(prefix)
    try:
        if system in ("ss1", "ss2"):
            enq = superseller_enqueue(url, n, 1000)
            procs = 1 if system == "ss1" else 2
            return enq, superseller_drain(url, n, procs, 2 * batch, batch)
        if system == "pgqueuer":
            return asyncio.run(pgqueuer_run(url, n, batch))
        if system == "pgqueuer5":
            return pgqueuer_own_settings(url, n)
        return asyncio.run(procrastinate_run(url, procrastinate_jobs, concurrency=10))
    finally:
        drop_db(url)


def summarize(rounds: list[dict[str, tuple[float, float]]]) -> None:
    """Over all rounds: each round's processing ratio of ours (1 process) to PgQueuer's
    faster set-up in that round, and the median (the machine's noise is per run). Both
    set-ups enqueue with the same code: enqueue is compared to their mean (the faster of
    two samples of one thing would favour the peer by noise alone)."""
    ours, peers = LABELS["ss1"], (LABELS["pgqueuer"], LABELS["pgqueuer5"])
    enq, proc = [], []
    for results in rounds:
        present = [p for p in peers if p in results]
        if ours not in results or not present:
            return
        enq.append(results[ours][0] / statistics.mean(results[p][0] for p in present))
        proc.append(results[ours][1] / max(results[p][1] for p in present))
    print(
        f"{ours} / pgqueuer (enqueue: mean of its set-ups; process: the faster), "
        f"{len(rounds)} round(s): "
        f"enqueue {', '.join(f'{x:.2f}' for x in enq)} (median {statistics.median(enq):.2f}x); "
        f"process {', '.join(f'{x:.2f}' for x in proc)} (median {statistics.median(proc):.2f}x)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description="Enqueue and processing jobs/s of SuperSeller's queue and its peers, "
        "every peer in the same run."
    )
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--procrastinate-jobs", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--latency-samples", type=int, default=300)
    ap.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma-separated subset of {','.join(SYSTEMS)} (default: all), run in this order",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the systems this many times, alternating, and print each round's ratios "
        "(the machine's noise: compare ratios within a round)",
    )
    ap.add_argument("--worker-process", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker_process:
        url, conc, batch = args.worker_process
        worker_process(url, int(conc), int(batch))
        return
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems:
        ap.error(f"--systems: unknown {', '.join(unknown) or '(none given)'}")

    n, batch = args.jobs, args.batch
    rounds: list[dict[str, tuple[float, float]]] = []
    p50 = p99 = None
    for r in range(args.rounds):
        results: dict[str, tuple[float, float]] = {}
        for system in systems:
            if system == "latency":
                continue
            label = LABELS[system]
            results[label] = run_system(system, n, batch, args.procrastinate_jobs)
            enq, proc = results[label]
            prefix = f"[round {r + 1}] " if args.rounds > 1 else ""
            print(f"{prefix}{label:28s} enqueue {enq:9.0f}/s  process {proc:8.0f}/s", flush=True)
        rounds.append(results)

    if "latency" in systems:
        url = fresh_db("lat")
        try:
            p50, p99 = superseller_latency(url, args.latency_samples)
        finally:
            drop_db(url)

    print()
    print(
        f"jobs: {n} (procrastinate: {args.procrastinate_jobs}), batch {batch}, "
        "no-op handler; superseller writes a job_logs row per run"
    )
    for r, results in enumerate(rounds):
        if args.rounds > 1:
            print(f"round {r + 1}")
        print(f"{'system':28s} {'enqueue/s':>10s} {'process/s':>10s}")
        for label, (enq, proc) in results.items():
            print(f"{label:28s} {enq:10.0f} {proc:10.0f}")
        print()
        for ours in (LABELS["ss1"], LABELS["ss2"]):
            for peer in (LABELS["pgqueuer"], LABELS["pgqueuer5"], LABELS["procrastinate"]):
                if ours in results and peer in results:
                    e = results[ours][0] / results[peer][0]
                    p = results[ours][1] / results[peer][1]
                    print(f"{ours} / {peer}: enqueue {e:.2f}x, process {p:.2f}x")
        print()
    summarize(rounds)
    if p50 is not None:
        print(
            f"superseller enqueue->start latency (idle worker, LISTEN/NOTIFY): "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        )


if __name__ == "__main__":
    main()
