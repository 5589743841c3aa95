"""The driver: runs the real engine on the simulated clock through N local days.

The worker, the scheduler and the API (the Mercado Livre webhook and /metrics) are real
processes (`simulation.proc`) on the shared `SimClock`; the sandbox sellers are served over
real HTTP by the hub, and every other seller's sandbox notifies its orders and item edits
to the API's webhook, as Mercado Livre would (the others rely on the syncs alone). Time runs at 1x
while anything is due or running (heartbeats, rescue and back-off keep their meaning)
and jumps to the next moment something is due when the engine is idle: the next
pending job, the next schedule tick (while a scheduler runs), the next fault, order
change or morning check. At every 06:00 the oracle checks every tenant.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from cryptography.fernet import Fernet
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.engine import make_url

from superseller.db import migrate
from superseller.db.engine import SQLITE_BUSY_TIMEOUT_MS, is_postgres
from superseller.db.schema import job_logs, job_schedules, jobs, sync_checkpoints
from superseller.jobs.backend import backend_for
from superseller.jobs.default_schedules import ensure_defaults
from superseller.mercadolivre.connect import connect_sandbox, enqueue_backfill
from superseller.metrics.freshness import PARTIAL, REAUTH_REQUIRED, tenant_freshness
from superseller.sandbox.app import Faults
from superseller.sandbox.data import SellerSpec
from superseller.sandbox.server import free_port
from superseller.simulation import faults as fault_plan
from superseller.simulation import guard
from superseller.simulation.clock import SimClock
from superseller.simulation.faults import SAO_PAULO, Fault
from superseller.simulation.hub import Hub, SimSandboxState, start_hub
from superseller.simulation.oracle import Verdict, check_tenant, snapshot
from superseller.simulation.proc import engine_settings
from superseller.tenants import create_tenant
from superseller.wiring import build_registry

# Schedules the promise does not depend on and that need services the simulation does
# not run (a language model, market sources): left off, and said so in the report.
OFF_SCHEDULES = ("daily-harvest", "weekly-embeddings", "daily-questions", "weekly-stats")
FIRST_DAY = date(2026, 3, 2)  # a Monday; the simulation starts at 07:00 local
START_HOUR = 7
CHECK_HOUR = 6
# Faults with an end the driver acts on (the others end by themselves).
ENDING = ("scheduler_kill", "scheduler_night", "ml_429", "ml_5xx", "slow_disk", fault_plan.BROKEN)
# The alert a revoked seller must raise (/metrics, read over HTTP like Prometheus would).
REAUTH_ALERT = "superseller_tenant_reauth_required"
IDLE_POLL_S = 0.03
# A SQLite outage holds the write lock this long (wall): past the product's own busy
# timeout, so that writers fail with "database is locked", and within 90 s an outage.
SQLITE_OUTAGE_S = SQLITE_BUSY_TIMEOUT_MS / 1000 + 15
PG_OUTAGE_MAX_S = 60.0
# The worker SIGKILL waits at most this long (wall) for the large seller's sync to
# checkpoint a part (see `_worker_kill`).
KILL_WAIT_S = 240.0
KILL_SHOW_S = 30.0  # for the large seller's sync to be enqueued at all
KILL_ANY_S = 30.0
KILL_POLL_S = 0.05
BUSY_POLL_MIN_S = 0.01
BUSY_POLL_MAX_S = 0.25
log = logging.getLogger("superseller.simulation")


def busy_poll(busy_for_s: float) -> float:
    """How long the driver waits before looking again while the engine works: 10 ms at
    first (a 15-minute tick's job is over in a fraction of a second, and time runs at 1x
    until the driver sees it over), then a twentieth of how long it has been busy, at
    most 0.25 s. A night's sync of a large seller then costs a few polls a second of the
    database and of this process (which also serves the sandbox sellers), not 100 queries
    a second, and is noticed over at most 5% late."""
    return min(BUSY_POLL_MAX_S, max(BUSY_POLL_MIN_S, busy_for_s / 20))


# The driver's one look at the engine: jobs running, the next pending job, the next tick.
_ENGINE_STATE = select(
    select(func.count())
    .select_from(jobs)
    .where(jobs.c.status == "running")
    .scalar_subquery()
    .label("running"),
    select(func.min(jobs.c.run_at))
    .where(jobs.c.status == "pending")
    .scalar_subquery()
    .label("next_job"),
    select(func.min(job_schedules.c.next_run_at))
    .where(job_schedules.c.enabled)
    .scalar_subquery()
    .label("next_tick"),
)


@dataclass
class SimOptions:
    days: int = 30
    seed: int = 1
    database_url: str | None = None  # None: a SQLite file in a temporary directory
    tenants: int = 20
    large_listings: int = 10_000
    small_listings: tuple[int, int] = (20, 300)
    faults: str = "all"
    concurrency: int = 4
    notifications: bool = True  # every other seller (00, 02, ...) notifies the webhook
    workdir: Path | None = None
    progress: object = None  # callable(str) for a line per morning


@dataclass
class Morning:
    day: date
    fresh: int = 0
    flagged: int = 0  # needing reconnection, and saying so
    late: dict[str, str] = field(default_factory=dict)  # tenant -> cause
    jobs_run: int = 0
    retries: int = 0
    faults: list[str] = field(default_factory=list)
    wall_s: float = 0.0  # wall time since the previous check (or the run's start)
    # What the night's faults did (since the previous check), not only that they started:
    ml_429: int = 0  # 429s the sandbox answered
    ml_5xx: int = 0  # 5xx the sandbox answered
    rescued: int = 0  # jobs given back by a rescue (job_logs status "lost")
    resumed_parts: int = 0  # checkpointed parts a resumed sync skipped (result resumedParts)
    outage_s: float = 0.0  # wall seconds the database was away
    outage_logged: int = 0  # "database unreachable" lines the product's processes logged
    kills: list[str] = field(default_factory=list)  # what each worker SIGKILL hit

    def effects(self) -> str:
        """The faults' effects, appended to the day line after its fixed prefix."""
        parts = [
            f"429s {self.ml_429}",
            f"5xx {self.ml_5xx}",
            f"rescued {self.rescued}",
            f"resumed parts {self.resumed_parts}",
            f"outage {self.outage_s:.0f} s wall ({self.outage_logged} unreachable logged)",
        ]
        parts += [f"kill: {k}" for k in self.kills]
        return "; ".join(parts)


@dataclass
class SimResult:
    seed: int
    backend: str
    schedule: list[Fault]
    mornings: list[Morning]
    wall_s: float
    tenants: int
    notified: list[str] = field(default_factory=list)
    emitted: dict[str, int] = field(default_factory=dict)  # the emitters' counts, summed
    stored_notifications: int = 0  # rows in ml_notifications at the end
    off_schedules: tuple[str, ...] = OFF_SCHEDULES
    kept_dir: Path | None = None  # a temporary work directory kept for its logs

    @property
    def misses(self) -> int:
        return sum(len(m.late) for m in self.mornings)


@dataclass
class Tenant:
    id: str
    state: SimSandboxState
    notified: bool = False


class Simulation:
    def __init__(self, opts: SimOptions):
        self.opts = opts
        self.rng = random.Random(opts.seed)
        self.dir = Path(opts.workdir or tempfile.mkdtemp(prefix="superseller-sim-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.url = opts.database_url or f"sqlite:///{self.dir / 'sim.db'}"
        self.clock = SimClock(self.dir / "clock")
        self.start = datetime(
            FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, START_HOUR, tzinfo=SAO_PAULO
        )
        self.clock.set(self.start, rate=1.0)
        self.procs: dict[str, subprocess.Popen] = {}
        self.tenants: list[Tenant] = []
        self.events: list[tuple[datetime, int, str, object]] = []  # (when, order, kind, arg)
        self.fault_log: list[tuple[datetime, str]] = []
        self.revoked: set[str] = set()
        self.outage_lock: sqlite3.Connection | None = None
        self.slow_disk: threading.Event | None = None  # set: the slow disk's thread stops
        self.alert_before: dict[str, float | None] = {}
        self.outage_db: str | None = None  # a PostgreSQL database refusing connections
        # Fault effects gathered since the last check (see `_effects`).
        self.outage_s = 0.0
        self.kills: list[str] = []
        self.ml_seen = (0, 0)  # the sandbox's 429 and 500 counts at the last check
        self.log_offsets: dict[str, int] = {}

    # -- set-up -----------------------------------------------------------------
    def setup(self) -> None:
        handler = logging.FileHandler(self.dir / "driver.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.DEBUG)
        self.hub = start_hub(Hub())
        cfg = {
            "data_dir": str(self.dir),
            "database_url": self.url,
            "ml_url": self.hub.url,
            "backfill_days": 35,
            "token_key": Fernet.generate_key().decode(),
            "heartbeat_s": 0.5,
            "rescue_after_s": 5.0,
            "concurrency": self.opts.concurrency,
            "clock_file": str(self.clock.path),
            "api_port": free_port(),
        }
        self.api_url = f"http://127.0.0.1:{cfg['api_port']}"
        self.config = self.dir / "engine.json"
        guard.write_private(self.config, json.dumps({**cfg, "driver_pid": os.getpid()}))
        self.settings = engine_settings(cfg)
        self.engine = guard.sim_engine(self.url)
        self.pg = is_postgres(self.engine)
        self.backend = backend_for(self.engine)
        registry = build_registry(self.settings)
        migrate.upgrade(self.engine)
        ensure_defaults(self.engine, registry, clock=self.clock)
        with self.engine.begin() as conn:
            conn.execute(
                update(job_schedules)
                .where(job_schedules.c.name.in_(OFF_SCHEDULES))
                .values(enabled=False, disabled_reason="off in the simulation")
            )
        lo, hi = self.opts.small_listings
        for n in range(self.opts.tenants):
            listings = self.opts.large_listings if n == 0 else self.rng.randint(lo, hi)
            spec = SellerSpec(
                seed=self.opts.seed * 1000 + n,
                user_id=500_000_000 + n,
                nickname=f"SIM_{n:02d}",
                listings=listings,
                history_days=45,
                orders_per_day=max(1.0, listings / 20) if n else 60.0,
                start=self.start.astimezone(UTC),
            )
            tid = f"sim-{self.opts.seed}-{n:02d}"
            state = self.hub.hub.add(spec, self.clock)
            create_tenant(self.engine, f"Loja simulada {n:02d}", tenant_id=tid)
            self.hub.hub.connecting = spec.user_id
            connect_sandbox(self.engine, self.settings, tid, self.clock.now())
            enqueue_backfill(self.engine, registry, self.settings, tid, clock=self.clock)
            self.tenants.append(Tenant(tid, state, self.opts.notifications and n % 2 == 0))
        ids = [t.id for t in self.tenants]
        kinds = fault_plan.parse_kinds(self.opts.faults)
        if self.pg:  # a slow disk is emulated with SQLite's write lock (see _slow_disk)
            kinds = [k for k in kinds if k != "slow_disk"]
        self.schedule = fault_plan.draw(self.opts.seed, FIRST_DAY, self.opts.days, kinds, ids)
        for f in self.schedule:
            self._at(f.start, f"start:{f.kind}", f)
            if f.end > f.start and f.kind in ENDING:
                self._at(f.end, f"end:{f.kind}", f)
        for k in range(self.opts.days + 1):
            day = FIRST_DAY + timedelta(days=k)
            if k:
                self._at(
                    datetime.combine(day, datetime.min.time(), SAO_PAULO).replace(hour=CHECK_HOUR),
                    "check",
                    day,
                )
            for hour in sorted(self.rng.sample(range(9, 22), 3)):
                when = datetime(day.year, day.month, day.day, hour, 30, tzinfo=SAO_PAULO)
                self._at(when, "cancel", self.rng.choice(self.tenants))
        # Item edits (price, title): drawn from their own generator, so that the faults and
        # cancellations of a seed stay what they were before edits existed.
        edits = random.Random(self.opts.seed * 7919 + 1)
        for k in range(self.opts.days + 1):
            day = FIRST_DAY + timedelta(days=k)
            when = datetime(
                day.year, day.month, day.day, edits.randint(9, 21), 45, tzinfo=SAO_PAULO
            )
            self._at(when, "edit", (edits.choice(self.tenants), edits.random(), edits.random()))
        self.end = datetime.combine(
            FIRST_DAY + timedelta(days=self.opts.days), datetime.min.time(), SAO_PAULO
        ).replace(hour=CHECK_HOUR, minute=1)
        self._announce_schedule()
        self._spawn("worker")
        self._spawn("scheduler")
        self._spawn("api")
        self._wait_api()
        self.alert_before = {t.id: self._alerts().get(t.id) for t in self.tenants}
        for t in self.tenants:
            if t.notified:
                self._sandbox(
                    t,
                    "/_sandbox/notifications",
                    {
                        "callback_url": f"{self.api_url}/api/v1/mercadolivre/notifications",
                        "retry_scale": 0.01,  # ML's hour of retries in ~35 s of wall time
                        "seed": self.opts.seed,
                    },
                )

    def _announce_schedule(self) -> None:
        """The fault schedule before the first day runs: the operator knows what is coming."""
        if self.opts.progress:
            self.opts.progress(
                f"fault schedule (seed {self.opts.seed}): "
                + ("; ".join(f.describe() for f in self.schedule) or "none")
            )

    def _check_children(self) -> None:
        """Every process the driver did not stop itself is still running: a dead worker,
        scheduler or API ends the run with its exit code and its log of errors (the run
        would otherwise wait for the engine forever)."""
        for role, proc in self.procs.items():
            code = proc.poll()
            if code is not None:
                raise guard.SimError(
                    f"the simulation's {role} died (exit code {code}); "
                    f"see {self.dir / (role + '.err')}"
                )

    def _wait_api(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.api_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.procs["api"].poll() is not None:
                raise RuntimeError(f"the simulation's API did not start (see {self.dir}/api.log)")
            time.sleep(0.1)

    def _sandbox(self, t: Tenant, path: str, body: dict) -> dict:
        """The driver's call to one seller's sandbox (through the hub, by user id)."""
        r = httpx.post(
            f"{self.hub.url}{path}",
            json=body,
            headers={"X-Sandbox-User": str(t.state.spec.user_id)},
            timeout=30,
        )
        r.raise_for_status()
        return r.json()

    def _alerts(self) -> dict[str, float]:
        """The reconnect alert per tenant, as Prometheus would scrape it from the API
        ({} when the scrape fails: every check then says the alert did not rise)."""
        try:
            r = httpx.get(f"{self.api_url}/metrics", timeout=30)
        except httpx.HTTPError:
            return {}
        if r.status_code != 200:
            return {}
        return {
            s.labels["tenant"]: s.value
            for family in text_string_to_metric_families(r.text)
            for s in family.samples
            if s.name == REAUTH_ALERT
        }

    def _at(self, when: datetime, kind: str, arg) -> None:
        self.events.append((when.astimezone(UTC), len(self.events), kind, arg))

    def _spawn(self, role: str) -> None:
        self.procs[role] = subprocess.Popen(
            [sys.executable, "-m", "superseller.simulation.proc", role, str(self.config)],
            env=guard.child_env(),  # the database in the config only
            preexec_fn=guard.die_with_parent(),  # noqa: PLW1509 - ctypes prctl, no locks
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / f"{role}.err", "ab"),  # noqa: SIM115 - the child owns it
        )

    def _kill(self, role: str) -> None:
        proc = self.procs.pop(role, None)
        if proc is not None:
            proc.send_signal(signal.SIGKILL)  # abrupt: no shutdown, jobs left running
            proc.wait()

    # -- the engine's state -----------------------------------------------------------
    def _engine_state(self) -> tuple[int, datetime | None, datetime | None]:
        # A plain read (deferred on SQLite): polled every 10-250 ms while the engine works,
        # it must not take the write lock the worker and the webhook need.
        with self.backend.reader(self.engine) as conn:
            running, next_job, next_tick = conn.execute(_ENGINE_STATE).one()
        return running, next_job, next_tick

    def _wake_workers(self, due: datetime) -> None:
        """Jobs waiting for a later time (a retry, a notification's short delay) became due
        by a jump: wake the workers as an enqueue does (NOTIFY on PostgreSQL), instead of
        leaving them to their polling interval at 1x. SQLite workers poll anyway."""
        if not self.pg:
            return
        with self.engine.begin() as conn:
            queues = conn.execute(
                select(jobs.c.queue)
                .where(jobs.c.status == "pending", jobs.c.run_at <= due)
                .distinct()
            ).scalars()
            self.backend.notify(conn, sorted(queues))

    def _next_engine_time(self) -> tuple[datetime, bool, datetime | None]:
        """(now, busy now, when the engine next has something due), all from one `now`
        read before the database: a job enqueued meanwhile is never behind it."""
        now = self.clock.now()
        running, next_job, next_tick = self._engine_state()
        if "scheduler" not in self.procs:
            next_tick = None  # nobody would act on it
        due = [t for t in (next_job, next_tick) if t is not None]
        nxt = min(due) if due else None
        self._last_state = (running, next_job, next_tick)
        return now, running > 0 or (nxt is not None and nxt <= now), nxt

    # -- the loop ---------------------------------------------------------------
    def run(self) -> SimResult:
        wall = self.last_check_wall = time.monotonic()
        self.events.sort()
        self.mornings: list[Morning] = []
        pending = list(self.events)
        busy_since: float | None = None
        while pending:
            self._check_children()
            when, _, kind, arg = pending[0]
            now, busy, nxt = self._next_engine_time()
            next_job = self._last_state[1]
            if now >= when:
                pending.pop(0)
                self._handle(kind, arg, when)
                continue
            if busy:  # the engine works; time runs at 1x
                busy_since = busy_since or time.monotonic()
                time.sleep(busy_poll(time.monotonic() - busy_since))
                continue
            busy_since = None
            target = min(when, nxt) if nxt is not None and nxt > now else when
            log.debug(
                "idle at %s: jump to %s (engine next %s %s, event %s %s)",
                now,
                target,
                nxt,
                self._last_state,
                kind,
                when,
            )
            self.clock.set(max(target, self.clock.now()))  # never backwards
            if next_job is not None and next_job <= target:
                self._wake_workers(target)
            # No pause: the scheduler wakes on the jump (SimClock.wait), the workers on an
            # enqueue's NOTIFY (or their poll); the next look sees the due tick or job as
            # busy and waits for it, or handles the event the jump reached.
        self.stop()
        return SimResult(
            self.opts.seed,
            "postgresql" if self.pg else "sqlite",
            self.schedule,
            self.mornings,
            time.monotonic() - wall,
            len(self.tenants),
            [t.id for t in self.tenants if t.notified],
            self.emitted,
            self.stored_notifications,
        )

    def stop(self) -> None:
        self.emitted: dict[str, int] = {}
        for t in self.tenants:
            e = t.state.emitter
            if e is not None:
                for k, v in {**e.stats, "missed": len(e.missed)}.items():
                    self.emitted[k] = self.emitted.get(k, 0) + v
        self._stop_slow_disk()
        with self.engine.connect() as conn:
            self.stored_notifications = conn.execute(
                text("SELECT COUNT(*) FROM ml_notifications")
            ).scalar()
        for role in list(self.procs):
            proc = self.procs.pop(role)
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._release_outage()
        self.hub.stop()
        self.engine.dispose()

    # -- events -----------------------------------------------------------------
    def _handle(self, kind: str, arg, when: datetime) -> None:
        if kind == "check":
            self._check(arg)
        elif kind == "cancel":
            self._cancel(arg)
        elif kind == "edit":
            self._edit(*arg)
        elif kind.startswith("start:"):
            self.fault_log.append((when, arg.describe()))
            self._start_fault(arg)
        elif kind.startswith("end:"):
            self._end_fault(arg)

    def _cancel(self, tenant: Tenant) -> None:
        """A buyer cancels a paid order made 2 to 20 days ago (the sandbox's "old orders
        change" mode: it then carries the new status and update date)."""
        from superseller.sandbox import data

        state = tenant.state
        now = self.clock.now()
        lo, hi = now - timedelta(days=20), now - timedelta(days=2)
        candidates = [
            o["id"]
            for o in data.orders_between(state.spec, lo, hi, now)
            if o["status"] == "paid" and o["id"] not in state.order_changes
        ]
        if candidates:
            oid = self.rng.choice(candidates)
            with state.lock:
                state.order_changes[oid] = ("cancelled", now)
            self._notify(tenant, "orders_v2", f"/orders/{oid}")  # as ML notifies a change

    def _notify(self, tenant: Tenant, topic: str, resource: str) -> None:
        """A notification from the seller's emitter (if it has one), on the hub's loop."""
        if tenant.state.emitter is not None and self.hub.hub.loop is not None:
            self.hub.hub.loop.call_soon_threadsafe(tenant.state.notify, topic, resource)

    def _edit(self, tenant: Tenant, pick: float, change: float) -> None:
        """The seller edits a listing's price and title (the sandbox notifies `items`)."""
        from superseller.sandbox import data

        spec = tenant.state.spec
        ext = data.item_id(spec, int(pick * spec.listings))
        price = round(50 + change * 450, 2)
        self._sandbox(
            tenant,
            "/_sandbox/edit-item",
            {"id": ext, "price": price, "title": f"Anúncio editado {price:.2f}"},
        )

    def _start_fault(self, f: Fault) -> None:
        k = f.kind
        if k == "db_outage":
            self._outage(f)
        elif k == "worker_kill":
            self.kills.append(self._worker_kill())
        elif k in ("scheduler_kill", "scheduler_night", fault_plan.BROKEN):
            self._kill("scheduler")
        elif k == "ml_429":
            self._ml_faults(Faults(rate_429=0.3, retry_after_s=0.05))
        elif k == "ml_5xx":
            self._ml_faults(Faults(rate_500=0.15))
        elif k == "token_revoke":
            t = next(t for t in self.tenants if t.id == f.tenant)
            with t.state.lock:
                t.state.revoked.add(t.state.spec.user_id)
            self.revoked.add(t.id)
        elif k == "clock_jump":
            self.clock.set(f.end.astimezone(UTC))
        elif k == "slow_disk":
            self._start_slow_disk()

    def _end_fault(self, f: Fault) -> None:
        if f.kind in ("scheduler_kill", "scheduler_night", fault_plan.BROKEN):
            self._spawn("scheduler")
        elif f.kind in ("ml_429", "ml_5xx"):
            self._ml_faults(Faults())
        elif f.kind == "slow_disk":
            self._stop_slow_disk()

    def _ml_faults(self, faults: Faults) -> None:
        for t in self.tenants:
            t.state.faults = faults

    def _worker_kill(self) -> str:
        """SIGKILL the worker in the middle of the large seller's sync, once that sync has
        recorded a checkpointed part beyond its start (`Checkpoints.mark`: a range of item
        details, the orders, a range of visits), so that the rescued job's retry must skip
        finished parts (its result's `resumedParts`). If that sync does not show up within
        KILL_SHOW_S (the large seller revoked), ends without a checkpoint, or none is
        recorded within KILL_WAIT_S of wall time, the worker is killed as soon as any job
        runs (at most KILL_ANY_S more), as before. A supervisor then brings it back; its
        jobs wait for rescue. Returns what the kill hit, for the morning's line."""
        large = self.tenants[0].id
        began = time.monotonic()
        seen, parts = False, 0
        while time.monotonic() - began < KILL_WAIT_S:
            live, parts = self._large_sync(large)
            seen = seen or live > 0
            if parts or (not live and (seen or time.monotonic() - began > KILL_SHOW_S)):
                break
            time.sleep(KILL_POLL_S)
        running = self._engine_state()[0]
        if not parts:
            deadline = time.monotonic() + KILL_ANY_S
            while running == 0 and time.monotonic() < deadline:
                time.sleep(IDLE_POLL_S)
                running = self._engine_state()[0]
        self._kill("worker")
        self._spawn("worker")
        what = (
            f"{large}'s sync after {parts} checkpointed part(s), {running} job(s) running"
            if parts
            else f"{running} job(s) running, no checkpointed sync of {large}"
        )
        log.info("worker SIGKILLed: %s", what)
        return what

    def _large_sync(self, tenant_id: str) -> tuple[int, int]:
        """(the tenant's syncs pending or running, checkpointed parts of its running sync
        beyond the start: not "run", "ids" or "progress")."""
        sync = (jobs.c.tenant_id == tenant_id) & (jobs.c.type == "sync_mercadolivre")
        live = (
            select(func.count())
            .select_from(jobs)
            .where(sync, jobs.c.status.in_(("pending", "running")))
            .scalar_subquery()
        )
        parts = (
            select(func.count())
            .select_from(sync_checkpoints.join(jobs, jobs.c.id == sync_checkpoints.c.job_id))
            .where(
                sync,
                jobs.c.status == "running",
                sync_checkpoints.c.part.not_in(("run", "ids", "progress")),
            )
            .scalar_subquery()
        )
        with self.backend.reader(self.engine) as conn:
            live_n, parts_n = conn.execute(select(live, parts)).one()
        return live_n, parts_n

    def _outage(self, f: Fault) -> None:
        """The database away while simulated time runs through the fault's span.

        SQLite: an embedded database fails its writers: the driver holds the write lock
        (BEGIN EXCLUSIVE) for SQLITE_OUTAGE_S of wall time, longer than the product's own
        busy timeout (db/engine.py, the deployed 60 s, not lowered here), so a write
        begun in the first seconds fails with "database is locked" and every other one
        waits for most of a minute: heartbeats, claims, job results, webhook rows. Readers
        go on: in WAL mode a reader never waits for the writer, and the only ways to stop
        them (locking_mode=EXCLUSIVE, which changes how the WAL index is shared, or
        taking the files away) risk the database itself, which no real outage of an
        embedded database does either.

        PostgreSQL: connections refused (ALLOW_CONNECTIONS false) and the open ones
        terminated, for a wall time that grows with the span (a minute of span per wall
        second, 5 to 60 s), long enough for the processes' capped back-off and
        reconnection to run several rounds."""
        span = (f.end - f.start).total_seconds()
        wall = SQLITE_OUTAGE_S if not self.pg else min(PG_OUTAGE_MAX_S, max(5.0, span / 60))
        if self.pg:
            name = make_url(self.url).database
            admin = self._pg_admin()
            self.outage_db = name  # given back however the run ends (see `abort`)
            with admin.connect() as conn:
                conn.exec_driver_sql(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :d AND pid <> pg_backend_pid()"
                    ),
                    {"d": name},
                )
            # Simulated time races through the span only once the database is away (the
            # admin round trips above would otherwise overshoot it).
            self.clock.set(self.clock.now(), rate=span / wall)
            began = time.monotonic()
            time.sleep(wall)
            with admin.connect() as conn:
                conn.exec_driver_sql(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
            self.outage_db = None
            admin.dispose()
            self.engine.dispose()  # the driver's own connections died too
        else:
            path = make_url(self.url).database
            lock = sqlite3.connect(path, timeout=60, isolation_level=None)
            try:
                lock.execute("BEGIN EXCLUSIVE")  # may wait up to 60 s behind a writer
            except BaseException:
                lock.close()
                raise
            self.outage_lock = lock  # released however the run ends (see `abort`)
            self.clock.set(self.clock.now(), rate=span / wall)
            began = time.monotonic()
            time.sleep(wall)
            self._release_outage()
        self.outage_s = getattr(self, "outage_s", 0.0) + time.monotonic() - began
        # Never backwards: the products' processes read this clock.
        self.clock.set(max(f.end.astimezone(UTC), self.clock.now()), rate=1.0)

    def _start_slow_disk(self) -> None:
        """A slow disk on SQLite, emulated: a commit that takes seconds holds the database's
        one write lock for those seconds, so a thread takes the write lock (BEGIN IMMEDIATE)
        for 0.2-3 s of wall time at random, lets go for 0.1-2 s, and again, until the
        fault ends. Every writer (jobs, heartbeats, the webhook) waits behind it as behind
        a slow fsync; reads go on (WAL). The product's own commits are not slowed."""
        path = make_url(self.url).database
        stop = self.slow_disk = threading.Event()
        rng = random.Random(self.opts.seed * 31 + len(self.fault_log))

        def hold() -> None:
            conn = sqlite3.connect(path, timeout=60, isolation_level=None)
            try:
                while not stop.is_set():
                    conn.execute("BEGIN IMMEDIATE")
                    stop.wait(rng.uniform(0.2, 3.0))
                    conn.execute("COMMIT")
                    stop.wait(rng.uniform(0.1, 2.0))
            finally:
                conn.close()

        self.slow_disk_thread = threading.Thread(target=hold, daemon=True, name="slow-disk")
        self.slow_disk_thread.start()

    def _stop_slow_disk(self) -> None:
        if self.slow_disk is not None:
            self.slow_disk.set()
            self.slow_disk_thread.join(timeout=70)
            self.slow_disk = None

    def _release_outage(self) -> None:
        if self.outage_lock is not None:
            self.outage_lock.execute("ROLLBACK")
            self.outage_lock.close()
            self.outage_lock = None

    def _effects(self, m: Morning, since: datetime, until: datetime) -> None:
        """What the faults did since the previous check: the sandbox's 429 and 5xx answers,
        jobs rescued and sync parts resumed (from the product's rows), the outage's wall
        seconds and the "database unreachable" lines the product's processes logged."""
        n429 = sum(t.state.stats.get("429", 0) for t in self.tenants)
        n500 = sum(t.state.stats.get("500", 0) for t in self.tenants)
        m.ml_429, m.ml_5xx = n429 - self.ml_seen[0], n500 - self.ml_seen[1]
        self.ml_seen = (n429, n500)
        with self.engine.connect() as conn:
            m.rescued = conn.execute(
                select(func.count())
                .select_from(job_logs)
                .where(
                    job_logs.c.status == "lost",
                    job_logs.c.completed_at >= since,
                    job_logs.c.completed_at < until,
                )
            ).scalar_one()
            results = conn.execute(
                select(jobs.c.result).where(
                    jobs.c.type == "sync_mercadolivre",
                    jobs.c.finished_at >= since,
                    jobs.c.finished_at < until,
                )
            ).scalars()
            m.resumed_parts = sum(
                int(r.get("resumedParts") or 0) for r in results if isinstance(r, dict)
            )
        m.outage_s, self.outage_s = self.outage_s, 0.0
        m.kills, self.kills = self.kills, []
        m.outage_logged = 0
        for role in ("worker", "scheduler", "api"):
            path = self.dir / f"{role}.log"
            if not path.exists():
                continue
            with path.open("rb") as fh:
                fh.seek(self.log_offsets.get(role, 0))
                chunk = fh.read()
                self.log_offsets[role] = fh.tell()
            m.outage_logged += chunk.count(b"database unreachable")
        log.info("effects %s: %s", m.day, m.effects())

    def abort(self) -> None:
        """Stop the children and give the database back (the driver keeps running)."""
        for role in list(self.procs):
            self._kill(role)
        self._stop_slow_disk()
        self._release_outage()
        if self.outage_db is not None:
            try:
                guard.restore_connections(self.url)
                self.outage_db = None
            except Exception:  # noqa: BLE001 - said in the run's last line instead
                log.exception("could not give %s its connections back", self.outage_db)

    def failure(self, exc: BaseException) -> guard.SimError:
        """The one line an ended run leaves the operator, naming where its logs are."""
        where = f"logs in {self.dir}"
        if self.outage_db is not None:  # the restore failed: the operator's one line
            where += (
                "; the database still refuses connections, restore it with: "
                + guard.RESTORE_SQL.format(name=self.outage_db)
            )
        if isinstance(exc, KeyboardInterrupt):
            db = "the database restored" if self.outage_db is None else "the database NOT restored"
            return guard.SimError(f"interrupted: processes stopped, {db}; {where}", 130)
        if isinstance(exc, guard.SimError):
            return guard.SimError(f"{exc}; {where}", exc.code)
        first = (str(exc).strip().splitlines() or [""])[0]
        return guard.SimError(f"the simulation failed: {type(exc).__name__}: {first}; {where}")

    def _pg_admin(self) -> Engine:
        return guard.pg_admin_engine(self.url)

    # -- the morning check ------------------------------------------------------------
    def _check(self, day: date) -> None:
        # The figures first: their snapshot is pinned at the check instant, before the
        # seconds the counts and the fault effects below take while the engine runs on.
        verdicts = self._verdicts()
        now = self.clock.now()
        m = Morning(day)
        since = datetime.combine(day - timedelta(days=1), datetime.min.time(), SAO_PAULO).replace(
            hour=CHECK_HOUR
        )
        m.faults = [d for when, d in self.fault_log if when >= since.astimezone(UTC)]
        m.jobs_run, m.retries = self._job_counts(since.astimezone(UTC), now)
        self._effects(m, since.astimezone(UTC), now)
        alerts = self._alerts() if self.revoked else {}
        for t in self.tenants:
            if t.id in self.revoked:
                status = tenant_freshness(self.engine, t.id, now)["status"]
                before, alert = self.alert_before.get(t.id), alerts.get(t.id)
                if status != REAUTH_REQUIRED:
                    m.late[t.id] = f"revoked, but freshness says {status!r}, not reauth_required"
                elif not (before == 0 and alert == 1):
                    m.late[t.id] = (
                        f"revoked and reauth_required, but the alert {REAUTH_ALERT} did not "
                        f"rise (before the revocation {before}, now {alert})"
                    )
                else:
                    m.flagged += 1
                continue
            verdict = verdicts[t.id]
            if not verdict.ok:
                m.late[t.id] = self._cause(t.id, verdict.cause, m.faults)
            elif tenant_freshness(self.engine, t.id, now)["status"] == PARTIAL:
                # Never fresh while the product itself says visits are missing; with the
                # figures right, saying so is a false alarm, a miss as well.
                m.late[t.id] = self._cause(t.id, "the figures match", m.faults)
            else:
                m.fresh += 1
        m.wall_s = time.monotonic() - self.last_check_wall
        self.last_check_wall = time.monotonic()
        self.mornings.append(m)
        log.info("morning %s: %d fresh, %d flagged, %s late", day, m.fresh, m.flagged, m.late)
        if self.opts.progress:
            self.opts.progress(
                f"{day}: {m.fresh} fresh, {m.flagged} flagged, {len(m.late)} late, "
                f"{m.jobs_run} jobs, faults: {', '.join(m.faults) or '-'}, {m.wall_s:.0f} s wall"
                f"; effects: {m.effects()}"
            )
            for tid, cause in m.late.items():
                self.opts.progress(f"  late {tid}: {cause}")

    def _verdicts(self) -> dict[str, Verdict]:
        """Every connected tenant checked against ONE snapshot of the database pinned at
        the check instant, with the truth computed at a `now` read after pinning it: what
        the engine (still running) writes during the check never counts, and nothing the
        product read from the sandbox can be later than the truth's instant."""
        with snapshot(self.engine) as conn:
            now = self.clock.now()
            return {
                t.id: check_tenant(conn, t.id, t.state, now)
                for t in self.tenants
                if t.id not in self.revoked
            }

    def _job_counts(self, since: datetime, until: datetime) -> tuple[int, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(jobs.c.attempts).where(
                    jobs.c.finished_at >= since, jobs.c.finished_at < until
                )
            ).scalars()
            attempts = list(rows)
        return len(attempts), sum(max(0, a - 1) for a in attempts)

    def _cause(self, tenant_id: str, what: str, faults: list[str]) -> str:
        with self.engine.connect() as conn:
            last = conn.execute(
                select(jobs.c.type, jobs.c.status, jobs.c.last_error)
                .where(jobs.c.tenant_id == tenant_id, jobs.c.last_error.is_not(None))
                .order_by(jobs.c.id.desc())
                .limit(1)
            ).first()
        f = tenant_freshness(self.engine, tenant_id, self.clock.now())
        said = ", ".join(r["code"] for r in f["reasons"]) or "no reason"
        parts = [what, f"the product says {f['status']} ({said})"]
        if f["status"] == "ok":
            parts[-1] += ": late and SILENT"
        if faults:
            parts.append("night's faults: " + "; ".join(faults))
        if last:
            parts.append(
                f"last error ({last.type}, {last.status}): {(last.last_error or '')[:120]}"
            )
        if not faults and not last:
            parts.append("no fault and no error: unexplained")
        return " | ".join(parts)


def simulate(opts: SimOptions) -> SimResult:
    """Run a simulation; `guard.SimError` (with the exit code) for anything but a result:
    a database or work directory it must not use, a process that died, an interruption.
    However it ends, the children are stopped and the database accepts connections again;
    a temporary work directory is removed after a run where every morning was fresh, kept
    (and named) after a missed morning or a failure."""
    if opts.database_url is not None:
        opts.database_url = guard.database_url(opts.database_url)
    if opts.workdir is not None:
        guard.claim_workdir(Path(opts.workdir))
    if opts.database_url is not None:
        guard.refuse_used(opts.database_url)  # before anything is written
    sim = Simulation(opts)
    try:
        sim.setup()
        result = sim.run()
    except BaseException as exc:
        sim.abort()
        raise sim.failure(exc) from exc
    if opts.workdir is None and not result.misses:
        shutil.rmtree(sim.dir, ignore_errors=True)
    elif opts.workdir is None:
        result.kept_dir = sim.dir  # a missed morning: its logs say why
    return result
