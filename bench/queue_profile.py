"""Where a drain's wall time goes: one worker process draining N no-op jobs, instrumented.

Same set-up as `queue_throughput.py --systems ss1` (fresh database, N jobs enqueued, one
worker, batch 100, concurrency 200, a job_logs row per run), then per drain:

- wall time and jobs/s;
- CPU per job: this process's event-loop thread, its other threads (the database
  threads: JSON, psycopg), the database's backends serving it, and PostgreSQL's own
  background processes (WAL writer, ...), from /proc;
- the event loop's idle share (time blocked in the selector);
- the round trips: how many, jobs per claim and per finish, and the share of the drain
  with 0, 1, 2, ... of them in flight; inside one, the time to get a connection (pool
  checkout with its pre-ping), the pipelined statements, the commit;
- the machine's busy cores during the drain, and how many of them the drain had;
- with `--waits`, the backends' wait events sampled every ~2 ms (perturbs the drain).

`--statements-only`: the database's side alone (claim + finish, one batch at a time, no
handler). `--pgqueuer`: PgQueuer's drain under the same accounting. `--diag-sql`: a
statement run on the fresh database first (a diagnostic, e.g. dropping an index).

    uv run --group bench python bench/queue_profile.py --jobs 20000 --rounds 2
    uv run --group bench python bench/queue_profile.py --jobs 20000 --pgqueuer
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from queue_throughput import drop_db, fresh_db, noop_registry, superseller_enqueue  # noqa: E402
from sqlalchemy import event  # noqa: E402

from superseller.db.engine import make_engine  # noqa: E402
from superseller.jobs import store as store_mod  # noqa: E402
from superseller.jobs.worker import Worker, WorkerOptions  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def _cpu(path: str) -> float:
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _machine_cpu() -> tuple[float, float]:
    """(busy, idle) seconds of every core, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return (sum(v) - idle) / TICK, idle / TICK


def _threads_cpu() -> dict[int, float]:
    return {int(t): _cpu(f"/proc/self/task/{t}/stat") for t in os.listdir("/proc/self/task")}


def _postgres_cpu() -> dict[int, tuple[str, float]]:
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if cmd.startswith("postgres"):
            out[int(pid)] = (cmd, _cpu(f"/proc/{pid}/stat"))
    return out


class Probe:
    def __init__(self):
        self.events: list[tuple[float, int]] = []  # (time, +1/-1) round trips in flight
        self.checkout: list[float] = []
        self.pipeline: list[float] = []
        self.commit: list[float] = []
        self.total: list[float] = []
        self.claimed: list[int] = []
        self.finished: list[int] = []
        self.idle = 0.0
        self.local = threading.local()

    def install(self, engine):
        probe = self
        orig_exchange = Worker._exchange
        orig_fac = store_mod.JobStore.finish_and_claim
        orig_main = Worker._main

        async def _exchange(self, batch, limit):
            probe.events.append((time.perf_counter(), 1))
            probe.finished.append(len(batch))
            try:
                return await orig_exchange(self, batch, limit)
            finally:
                probe.events.append((time.perf_counter(), -1))

        def finish_and_claim(self, worker_id, outcomes, limit, queues=None, exclude=None):
            t0 = time.perf_counter()
            probe.local.t0 = t0
            probe.local.before_commit = None
            probe.local.pipe = None
            res = orig_fac(self, worker_id, outcomes, limit, queues, exclude)
            t1 = time.perf_counter()
            probe.total.append(t1 - t0)
            if probe.local.pipe:
                start, end = probe.local.pipe
                probe.checkout.append(start - t0)
                probe.pipeline.append(end - start)
                if probe.local.before_commit:
                    probe.commit.append(t1 - probe.local.before_commit)
            if limit:
                probe.claimed.append(len(res[1]))
            return res

        backend_cls = type(store_mod.backend_for(engine))
        orig_pipe = backend_cls.finish_and_claim

        def pipe(self, *a, **kw):
            start = time.perf_counter()
            try:
                return orig_pipe(self, *a, **kw)
            finally:
                probe.local.pipe = (start, time.perf_counter())

        @event.listens_for(engine, "commit")
        def _before_commit(conn):
            probe.local.before_commit = time.perf_counter()

        async def _main(self):
            import asyncio

            loop = asyncio.get_running_loop()
            sel = loop._selector
            orig_select = sel.select

            def select(timeout=None):
                t = time.perf_counter()
                try:
                    return orig_select(timeout)
                finally:
                    probe.idle += time.perf_counter() - t

            sel.select = select
            probe.loop_tid = threading.get_native_id()
            return await orig_main(self)

        Worker._exchange = _exchange
        store_mod.JobStore.finish_and_claim = finish_and_claim
        backend_cls.finish_and_claim = pipe
        Worker._main = _main
        self._restore = (orig_exchange, orig_fac, orig_main, backend_cls, orig_pipe)

    def uninstall(self):
        orig_exchange, orig_fac, orig_main, backend_cls, orig_pipe = self._restore
        Worker._exchange = orig_exchange
        store_mod.JobStore.finish_and_claim = orig_fac
        Worker._main = orig_main
        backend_cls.finish_and_claim = orig_pipe

    def in_flight_shares(self, t0: float, t1: float) -> dict[int, float]:
        shares: dict[int, float] = defaultdict(float)
        level, last = 0, t0
        for t, d in sorted(self.events):
            shares[level] += t - last
            level, last = level + d, t
        shares[level] += t1 - last
        total = t1 - t0
        return {k: v / total for k, v in sorted(shares.items())}


def _ms(xs: list[float]) -> str:
    if not xs:
        return "-"
    xs = sorted(xs)
    return f"p50 {xs[len(xs) // 2] * 1000:.2f} / mean {sum(xs) / len(xs) * 1000:.2f} ms"


class WaitSampler(threading.Thread):
    """Samples pg_stat_activity's wait_event of the drain's backends every ~2 ms."""

    def __init__(self, url: str, dbname: str):
        super().__init__(daemon=True)
        self.url, self.dbname = url, dbname
        self.counts: dict[str, int] = defaultdict(int)
        self.halt = threading.Event()
        self.cpu = 0.0

    def run(self):
        import psycopg

        t = time.thread_time()
        with psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as c:
            q = (
                "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
            while not self.halt.is_set():
                for state, wtype, wev in c.execute(q, (self.dbname,)).fetchall():
                    if state == "active":
                        key = f"{wtype}:{wev}" if wtype else "CPU"
                    else:
                        key = f"{state}" + (f" ({wev})" if wev and wev != "ClientRead" else "")
                    self.counts[key] += 1
                time.sleep(0.002)
        self.cpu = time.thread_time() - t

    def stop(self):
        self.halt.set()
        self.join()

    def summary(self) -> str:
        total = sum(self.counts.values()) or 1
        top = sorted(self.counts.items(), key=lambda kv: -kv[1])[:8]
        return ", ".join(f"{k} {v / total:.0%}" for k, v in top)


def profile_drain(
    n: int, batch: int, diag_sql: str = "", waits: bool = False, concurrency: int = 0
) -> None:
    url = fresh_db("ssprof")
    try:
        superseller_enqueue(url, n, 1000)
        engine = make_engine(url)
        dbname = url.rsplit("/", 1)[1]
        probe = Probe()
        probe.install(engine)
        opts = WorkerOptions(
            concurrency=concurrency or 2 * batch,
            batch_size=batch,
            burst=True,
            listen=False,
        )
        worker = Worker(engine, noop_registry(), opts)
        if diag_sql:
            with engine.begin() as conn:
                conn.exec_driver_sql(diag_sql.format(db=dbname))
            engine.dispose()
        sampler = WaitSampler(url, dbname) if waits else None
        with engine.connect() as conn:
            lsn0 = conn.exec_driver_sql("SELECT pg_current_wal_lsn()").scalar()
        pg0 = _postgres_cpu()
        th0 = _threads_cpu()
        cpu0 = time.process_time()
        m0 = _machine_cpu()
        if sampler:
            sampler.start()
        t0 = time.perf_counter()
        try:
            worker.run()
        finally:
            probe.uninstall()
        t1 = time.perf_counter()
        if sampler:
            sampler.stop()
        cpu1 = time.process_time()
        m1 = _machine_cpu()
        th1 = _threads_cpu()
        pg1 = _postgres_cpu()
        with engine.connect() as conn:
            wal = conn.exec_driver_sql(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %(l)s)", {"l": lsn0}
            ).scalar()
        wall = t1 - t0
        loop_tid = probe.loop_tid
        loop_cpu = th1.get(loop_tid, 0) - th0.get(loop_tid, 0)
        other_cpu = (cpu1 - cpu0) - loop_cpu - (sampler.cpu if sampler else 0.0)
        ours = bg = 0.0
        for pid, (cmd, cpu) in pg1.items():
            delta = cpu - pg0.get(pid, (cmd, 0.0))[1]
            if f" {dbname} " in cmd + " ":
                ours += delta
            elif any(w in cmd for w in ("walwriter", "checkpointer", "background writer")):
                bg += delta
        us = 1e6 / n
        print(f"drain: {n} jobs in {wall:.3f} s = {n / wall:,.0f} jobs/s")
        print(
            f"  cpu/job: loop {loop_cpu * us:.1f} us, other threads {other_cpu * us:.1f} us, "
            f"postgres backends {ours * us:.1f} us, postgres background {bg * us:.1f} us"
        )
        print(f"  loop idle {probe.idle / wall:.0%} of the drain; WAL {wal / n:.0f} bytes/job")
        busy, idle = m1[0] - m0[0], m1[1] - m0[1]
        mine = (cpu1 - cpu0) + ours
        print(
            f"  machine: {busy / wall:.2f} cores busy of {(busy + idle) / wall:.2f}, "
            f"this drain (worker + its backends) {mine / wall:.2f}, "
            f"others {(busy - mine) / wall:.2f}"
        )
        if sampler:
            print("  backends' wait events (sampled): " + sampler.summary())
        shares = probe.in_flight_shares(t0, t1)
        print("  round trips in flight: " + ", ".join(f"{k}: {v:.0%}" for k, v in shares.items()))
        claims = [c for c in probe.claimed]
        print(
            f"  round trips {len(probe.total)}, claimed/trip "
            f"{sum(claims) / max(1, len(claims)):.1f}, outcomes/trip "
            f"{sum(probe.finished) / max(1, len(probe.finished)):.1f}"
        )
        print(f"  trip total     {_ms(probe.total)}")
        print(f"  checkout+ping  {_ms(probe.checkout)}")
        print(f"  pipeline       {_ms(probe.pipeline)}")
        print(f"  commit+return  {_ms(probe.commit)}")
        engine.dispose()
    finally:
        drop_db(url)


def profile_statements(n: int, batch: int, diag_sql: str = "") -> None:
    """The database's side alone: one connection, one batch at a time, claim + finish of
    every job (as the worker sends them, without running any handler). Server CPU per job
    of that one backend, and this thread's CPU per job (building and reading the batches)."""
    from superseller.jobs.clock import SystemClock
    from superseller.jobs.store import JobStore, Outcome

    url = fresh_db("ssstmt")
    try:
        superseller_enqueue(url, n, 1000)
        engine = make_engine(url)
        dbname = url.rsplit("/", 1)[1]
        if diag_sql:
            with engine.begin() as conn:
                conn.exec_driver_sql(diag_sql.format(db=dbname))
        engine.dispose()
        engine = make_engine(url)
        store = JobStore(engine, SystemClock())
        clock = SystemClock()
        with engine.connect() as conn:
            lsn0 = conn.exec_driver_sql("SELECT pg_current_wal_lsn()").scalar()
        store.claim("w", 1)  # warm the pool's connection (its backend is the one measured)
        pg0 = _postgres_cpu()
        c0 = time.thread_time()
        t0 = time.perf_counter()
        pending: list = []
        done = 0
        while True:
            applied, claimed = store.finish_and_claim("w", pending, batch)
            done += len(applied)
            if not claimed and not pending:
                break
            now = clock.now()
            pending = [
                Outcome(
                    job=j,
                    status="completed",
                    log_status="success",
                    log_type=j.type,
                    completed_at=now,
                    duration_ms=0,
                )
                for j in claimed
            ]
        t1 = time.perf_counter()
        c1 = time.thread_time()
        pg1 = _postgres_cpu()
        with engine.connect() as conn:
            wal = conn.exec_driver_sql(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %(l)s)", {"l": lsn0}
            ).scalar()
        ours = sum(
            cpu - pg0.get(pid, (cmd, 0.0))[1]
            for pid, (cmd, cpu) in pg1.items()
            if f" {dbname} " in cmd + " "
        )
        us = 1e6 / n
        print(
            f"statements: {done} jobs in {t1 - t0:.3f} s ({done / (t1 - t0):,.0f}/s, one at a "
            f"time), backend {ours * us:.1f} us/job, client thread {(c1 - c0) * us:.1f} us/job, "
            f"WAL {wal / n:.0f} B/job"
        )
        engine.dispose()
    finally:
        drop_db(url)


def profile_pgqueuer(n: int, batch: int) -> None:
    """PgQueuer's drain (as queue_throughput.py runs it) under the same accounting: jobs/s,
    CPU per job of this process and of its backends, the machine's busy cores."""
    import asyncio

    import asyncpg
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.qm import QueueManager
    from pgqueuer.queries import Queries
    from pgqueuer.types import QueueExecutionMode

    url = fresh_db("pgqprof")
    dbname = url.rsplit("/", 1)[1]

    async def run() -> dict:
        conn = await asyncpg.connect(url)
        queries = Queries(AsyncpgDriver(conn))
        await queries.install()
        for i in range(0, n, 1000):
            k = min(1000, n - i)
            await queries.enqueue(["noop"] * k, [None] * k, [0] * k)
        qm = QueueManager(queries)

        @qm.entrypoint("noop")
        async def pgq_noop(job) -> None:
            return None

        marks = {"pg0": _postgres_cpu(), "c0": time.process_time(), "m0": _machine_cpu()}
        marks["t0"] = time.perf_counter()
        await qm.run(batch_size=batch, mode=QueueExecutionMode.drain)
        marks["t1"] = time.perf_counter()
        marks.update(pg1=_postgres_cpu(), c1=time.process_time(), m1=_machine_cpu())
        return marks

    try:
        m = asyncio.run(run())
        wall = m["t1"] - m["t0"]
        ours = sum(
            cpu - m["pg0"].get(pid, (cmd, 0.0))[1]
            for pid, (cmd, cpu) in m["pg1"].items()
            if f" {dbname} " in cmd + " "
        )
        busy = m["m1"][0] - m["m0"][0]
        mine = (m["c1"] - m["c0"]) + ours
        us = 1e6 / n
        print(
            f"pgqueuer drain: {n / wall:,.0f} jobs/s; its process {(m['c1'] - m['c0']) * us:.1f}"
            f" us/job, its backends {ours * us:.1f} us/job; machine {busy / wall:.2f} cores "
            f"busy, this drain {mine / wall:.2f}"
        )
    finally:
        drop_db(url)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument(
        "--concurrency", type=int, default=0, help="worker slots (default: 2 x batch, as the bench)"
    )
    ap.add_argument(
        "--diag-sql",
        default="",
        help="a statement run on the fresh database before the drain (diagnostics only, "
        "e.g. ALTER DATABASE ... SET synchronous_commit = off); {db} is its name",
    )
    ap.add_argument(
        "--statements-only",
        action="store_true",
        help="the database's side alone: claim + finish one batch at a time, no worker",
    )
    ap.add_argument(
        "--waits", action="store_true", help="sample the backends' wait events (perturbs)"
    )
    ap.add_argument("--switch-interval", type=float, default=0.0, help="sys.setswitchinterval")
    ap.add_argument("--pgqueuer", action="store_true", help="profile PgQueuer's run instead")
    args = ap.parse_args()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    for _ in range(args.rounds):
        if args.pgqueuer:
            profile_pgqueuer(args.jobs, args.batch)
        elif args.statements_only:
            profile_statements(args.jobs, args.batch, args.diag_sql)
        else:
            profile_drain(args.jobs, args.batch, args.diag_sql, args.waits, args.concurrency)


if __name__ == "__main__":
    main()
