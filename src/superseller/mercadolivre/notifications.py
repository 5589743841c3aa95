"""Receiving Mercado Livre notifications: lenient parsing, the checks, the durable write.

A notification of our application for a connected seller is stored (unique on ML's
`_id`: a retry or duplicate is a no-op) and its processing job queued, in one
transaction; anything else is answered (ML must not disable our topics) and counted,
never stored. A seller of ours whose grant was lost (`reauth_required`) is answered
`reauth_required`, counted and not stored: nothing can be fetched with that grant, and
the sync the reconnection queues fetches every listing and every order changed since the
last good sync, so it covers whatever these notifications named. Processing lives in `notification_jobs`.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import Engine, bindparam, select

from superseller.db.engine import write_transaction
from superseller.db.schema import jobs, marketplace_accounts, ml_notifications
from superseller.db.upsert import insert_on_conflict
from superseller.jobs.clock import Clock
from superseller.jobs.queue import JobSpec, Queue
from superseller.jobs.reads import UNFINISHED_STATES
from superseller.jobs.registry import Registry
from superseller.mercadolivre.upsert import parse_time

PROCESS_TYPE = "ml_notifications"
# On SQLite the webhook waits at most this long for the write lock (a long rebuild may
# hold it), then answers 503 and Mercado Livre sends the notification again: inside ML's
# 500 ms either way.
WEBHOOK_WAIT_S = 0.4
# Topics whose resource we fetch; every other topic is stored and marked ignored.
HANDLED_TOPICS = ("orders_v2", "items")
# Topics Mercado Livre documents: the counter's `topic` label is one of these or "other"
# (the label never takes a sender's free text).
KNOWN_TOPICS = frozenset(
    {
        *HANDLED_TOPICS,
        "orders",
        "questions",
        "messages",
        "post_purchase",
        "vis_leads",
        "shipments",
        "payments",
        "invoices",
        "price_suggestion",
        "catalog_item_competition_status",
        "stock-location",
        "public_offers",
        "public_candidates",
        "fbm_stock_operations",
        "flex-handshakes",
        "items_prices",
    }
)

RECEIVED = Counter(
    "superseller_ml_notifications",
    "Mercado Livre notifications received, by outcome (stored, duplicate, foreign_app, "
    "unknown_user, reauth_required: a seller of ours who must reconnect, malformed, forbidden_ip, disconnected: the sender hung up mid-body; fetch_failed: given up after its resource "
    "could not be fetched, left to the nightly sync) and topic.",
    ["outcome", "topic"],
)


def count(outcome: str, topic: str = "") -> None:
    RECEIVED.labels(outcome, topic if topic in KNOWN_TOPICS or not topic else "other").inc()


@dataclass(frozen=True)
class Notification:
    id: str
    resource: str
    user_id: int
    topic: str
    application_id: str
    attempts: int | None
    sent: datetime | None


class Malformed(ValueError):
    """A JSON body that is not a notification we can act on."""


def _text(value: Any, limit: int) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        text = str(value).replace("\x00", "").strip()  # PostgreSQL's text cannot hold NUL
        return text[:limit] if text else None
    return None


def _int(value: Any, low: int = 0, high: int = 2**63 - 1) -> int | None:
    """An integer within [low, high] (what the column stores), from an int or a string."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        n = int(str(value).strip()[:30])
    except ValueError:
        return None
    return n if low <= n <= high else None


def parse(body: Any) -> Notification:
    """The notification in a decoded JSON body: `user_id` int or string, `_id` or `id`,
    unknown and misspelled fields ignored. Raises Malformed when a needed field is missing."""
    if not isinstance(body, dict):
        raise Malformed("the body is not a JSON object")
    nid = _text(body.get("_id") or body.get("id"), 64)
    resource = _text(body.get("resource"), 200)
    topic = _text(body.get("topic"), 60)
    user_id = _int(body.get("user_id"))
    missing = [
        name
        for name, v in (
            ("_id", nid),
            ("resource", resource),
            ("topic", topic),
            ("user_id", user_id),
        )
        if v is None
    ]
    if missing:
        raise Malformed("missing or invalid: " + ", ".join(missing))
    try:
        sent = parse_time(_text(body.get("sent"), 40))
    except ValueError:
        sent = None
    return Notification(
        id=nid,
        resource=resource,
        user_id=user_id,
        topic=topic,
        application_id=_text(body.get("application_id"), 40) or "",
        attempts=_int(body.get("attempts"), 0, 2**31 - 1),
        sent=sent,
    )


# The webhook remembers a user's tenant this long (per engine): a burst of notifications
# reads it once. A user not connected is never remembered (a seller who just connected
# or reconnected is answered at once); one who disconnects or loses the grant may still
# be stored for these seconds, and processing then marks those `not_connected` or
# `reauth_required`.
TENANT_TTL_S = 5.0
_tenants: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
REAUTH = "reauth_required"  # the account's status, the webhook's answer and the outcome


class _MustReconnect:
    """What `cached_tenants_of` says for a seller of ours who must reconnect: not a
    string, so that no tenant id (`reauth_required` is a valid one) can be taken for it."""

    def __repr__(self) -> str:
        return "MUST_RECONNECT"


MUST_RECONNECT = _MustReconnect()


_TENANTS_OF = (
    select(
        marketplace_accounts.c.ml_user_id,
        marketplace_accounts.c.tenant_id,
        marketplace_accounts.c.status,
    )
    .where(
        marketplace_accounts.c.ml_user_id.in_(bindparam("users", expanding=True)),
        marketplace_accounts.c.status.in_(("connected", REAUTH)),
    )
    .order_by(marketplace_accounts.c.id.desc())  # the first account of a user wins
)


def cached_tenants_of(
    engine: Engine, ml_user_ids: set[int]
) -> dict[int, str | _MustReconnect | None]:
    """The tenant whose connected account is each Mercado Livre user; MUST_RECONNECT when the
    user is a seller of ours who must reconnect; None for a user we do not know.
    Remembered for TENANT_TTL_S when connected. Those not remembered are read in one
    query (a plain read: on SQLite it never waits for the write lock)."""
    known = _tenants.setdefault(engine, {})
    now = time.monotonic()
    found: dict[int, str | _MustReconnect | None] = {}
    for uid in ml_user_ids:
        hit = known.get(uid)
        if hit is not None and hit[1] > now:
            found[uid] = hit[0]
    missing = sorted(ml_user_ids - found.keys())
    if not missing:
        return found
    with engine.connect().execution_options(sqlite_deferred=True) as conn:
        read: dict[int, str | _MustReconnect] = {}
        for u, t, status in conn.execute(_TENANTS_OF, {"users": missing}):
            if status == "connected":
                read[u] = t  # the first connected account wins (rows come last-first)
            elif read.get(u, MUST_RECONNECT) is MUST_RECONNECT:
                read[u] = MUST_RECONNECT
    if len(known) + len(read) > 10_000:  # bounded: a flood of user ids cannot grow it forever
        known.clear()
    for uid in missing:
        found[uid] = read.get(uid)
        if found[uid] is None or found[uid] is MUST_RECONNECT:
            known.pop(uid, None)
        else:
            known[uid] = (found[uid], now + TENANT_TTL_S)
    return found


def process_key(tenant_id: str) -> str:
    """One processing job per tenant at a time: what arrives while one waits joins it."""
    return f"mlnotify:{tenant_id}"


def process_spec(tenant_id: str, run_at: datetime | None = None) -> JobSpec:
    return JobSpec(
        PROCESS_TYPE,
        {"tenantId": tenant_id},
        tenant_id=tenant_id,
        run_at=run_at,
        unique_key=process_key(tenant_id),
        lock_key=process_key(tenant_id),
    )


def store(
    engine: Engine,
    registry: Registry,
    clock: Clock,
    notes: list[tuple[Notification, str]],
    delay_s: float = 0.0,
    wait_s: float | None = None,
) -> int:
    """Write (notification, tenant) pairs and queue their tenants' processing, in one
    transaction. Returns how many were new (the rest were already stored).

    `wait_s`: on SQLite, how long to wait for the write lock before giving up (an
    OperationalError), instead of the engine's long busy timeout."""
    return sum(_write(engine, registry, clock, notes, delay_s, wait_s))


def _write(
    engine: Engine,
    registry: Registry,
    clock: Clock,
    notes: list[tuple[Notification, str]],
    delay_s: float,
    wait_s: float | None,
) -> list[bool]:
    """`store`'s work; per pair whether it was new. The same `_id` twice in `notes` is
    new at most once."""
    if not notes:
        return []
    now = clock.now()
    rows: dict[str, dict] = {}  # by `_id`: the first of the same `_id` twice is written
    for n, tid in notes:
        rows.setdefault(
            n.id,
            {
                "notification_id": n.id,
                "tenant_id": tid,
                "ml_user_id": n.user_id,
                "topic": n.topic,
                "resource": n.resource,
                "attempts": n.attempts,
                "sent_at": n.sent,
                "received_at": now,
            },
        )
    run_at = now + timedelta(seconds=delay_s)
    with write_transaction(engine, wait_s) as conn:
        # One statement for the whole batch (executemany with RETURNING: one multi-row
        # INSERT), so a batch costs a few round trips whatever its size.
        made = set(conn.execute(_insert_note(engine), list(rows.values())).scalars())
        queue = Queue(engine, registry, clock)
        for tid in sorted({rows[i]["tenant_id"] for i in made}):
            queue_processing(conn, queue, tid, run_at)
    new = []
    for n, _ in notes:
        new.append(n.id in made)
        made.discard(n.id)  # a second of the same `_id` is a duplicate
    return new


_NOTE_INSERTS: dict[str, Any] = {}


def _insert_note(engine: Engine):
    """The notification insert, built once per dialect (values bound per call: building
    a statement around its values cost more than running it)."""
    stmt = _NOTE_INSERTS.get(engine.dialect.name)
    if stmt is None:
        stmt = _NOTE_INSERTS[engine.dialect.name] = (
            insert_on_conflict(engine, ml_notifications)
            .on_conflict_do_nothing(index_elements=["notification_id"])
            .returning(ml_notifications.c.notification_id)
        )
    return stmt


_UNFINISHED = select(jobs.c.unique_key, jobs.c.status).where(
    jobs.c.unique_key.in_(bindparam("keys", expanding=True)),
    jobs.c.status.in_(UNFINISHED_STATES),
)


def queue_processing(conn, queue: Queue, tenant_id: str, run_at: datetime) -> None:
    """Make sure a job that has not yet looked at the tenant's notifications will process
    them. A pending one will (a burst joins it: one fetch per resource); a running one
    may already have looked, so then the other of two keys is used: the tenant's lock
    runs it after the running one, and while it waits it gathers what arrives."""
    first, second = process_key(tenant_id), process_key(tenant_id) + ":next"
    # The common case in a burst, in one read: a job is already waiting.
    held = dict(conn.execute(_UNFINISHED, {"keys": [first, second]}).all())
    if held.get(first) == "pending" or (
        held.get(first) == "running" and held.get(second) == "pending"
    ):
        return
    for key in (first, second):
        spec = process_spec(tenant_id, run_at)
        spec.unique_key = key
        made = queue.enqueue_many([spec], conn=conn)[0]
        if made.created:
            return
        status = conn.execute(select(jobs.c.status).where(jobs.c.id == made.id)).scalar()
        if status != "running":
            return


def accept(app_id: str, body: Any) -> Notification | str:
    """The notification in a decoded webhook body when it may be ours; otherwise the
    outcome to answer (`malformed`, `foreign_app`), counted."""
    try:
        note = parse(body)
    except Malformed:
        count("malformed", "")
        return "malformed"
    if not app_id or note.application_id != str(app_id):  # no app named: not provably ours
        count("foreign_app", note.topic)
        return "foreign_app"
    return note


def store_received(
    engine: Engine,
    registry: Registry,
    clock: Clock,
    notes: list[Notification],
    delay_s: float,
    wait_s: float | None = WEBHOOK_WAIT_S,
) -> list[str]:
    """Accepted notifications (`accept`) of any number of webhook calls: those of a
    connected seller written in one transaction with their tenants' processing jobs;
    per notification the outcome (`stored`, `duplicate`, `unknown_user`,
    `reauth_required`), counted once the transaction committed. Raises (nothing counted)
    when it did not."""
    tenants = cached_tenants_of(engine, {n.user_id for n in notes})
    ours = [
        (n, t) for n in notes if (t := tenants[n.user_id]) is not None and t is not MUST_RECONNECT
    ]
    new = iter(_write(engine, registry, clock, ours, delay_s, wait_s))
    outcomes = []
    for n in notes:
        if tenants[n.user_id] is None:
            outcomes.append("unknown_user")
        elif tenants[n.user_id] is MUST_RECONNECT:
            outcomes.append(REAUTH)
        else:
            outcomes.append("stored" if next(new) else "duplicate")
        count(outcomes[-1], n.topic)
    return outcomes


def receive(
    engine: Engine,
    registry: Registry,
    clock: Clock,
    app_id: str,
    body: Any,
    delay_s: float,
    wait_s: float | None = WEBHOOK_WAIT_S,
) -> str:
    """Handle one decoded webhook body; returns the outcome (also counted)."""
    note = accept(app_id, body)
    if isinstance(note, str):
        return note
    return store_received(engine, registry, clock, [note], delay_s, wait_s)[0]
