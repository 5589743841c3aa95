"""What the product's metrics must hold, computed from the sandbox's own records.

Independent of the product: no product module is called and no product rule imported.
The truth is the sandbox's deterministic listings, orders and visits (`sandbox.data`),
with the orders changed since (cancellations) and the item edits, counted by the rules
the seed and docs/metrics.md state for users:

- an order counts on its creation day in America/Sao_Paulo when its status is `paid` or
  `partially_refunded`; revenue is quantity x unit price; visits are the listing's unique
  visits of the local day;
- a listing has a row on every day from its creation day (its `date_created`, local) on,
  zeros included, visits known (a NULL is "not known", never a 0);
- conversion = orders / visits (NULL when visits are 0), avg_ticket = revenue / orders
  (NULL without orders);
- the overview's day (`tenant_metrics_daily`): distinct counted orders, their units and
  revenue, the sum of the listings' visits, and the distinct orders with an item on a row
  of known visits (an order of two listings counts once).

The product's tables are read with plain SQL, all tenants in one snapshot (`snapshot`):
nothing the engine writes after the check instant counts.
"""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, text

from superseller.sandbox import data
from superseller.sandbox.app import SandboxState

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
COUNTED = ("paid", "partially_refunded")  # the oracle's own copy of the counting rule
WINDOW_DAYS = 30
MONEY_TOL = 0.005  # both sides are whole cents: any real difference is >= 0.01
TICKET_TOL = 0.0101  # revenue / orders rounded to cents: a half-cent tie may go either way
RATIO_TOL = 1e-9
SHOWN = 3  # examples named per kind in a cause line
Figures = tuple[int, int, float, int]  # orders, units, revenue, visits


@dataclass
class Verdict:
    ok: bool
    cause: str = ""
    wrong: int = 0  # keys (listing-days, overview days, listings) that differ


# -- the snapshot ----------------------------------------------------------------------
@contextlib.contextmanager
def snapshot(engine: Engine):
    """One read-only transaction whose snapshot is pinned on entry: PostgreSQL REPEATABLE
    READ READ ONLY, SQLite a deferred read transaction (WAL keeps its view). Everything
    read through the yielded connection is the database as it was at that instant."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            with conn.begin():
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                conn.exec_driver_sql("SELECT COUNT(*) FROM tenants").scalar()  # pins it
                yield conn
        else:
            conn = conn.execution_options(sqlite_deferred=True)
            with conn.begin():
                conn.exec_driver_sql("SELECT COUNT(*) FROM tenants").scalar()  # pins it
                yield conn


# -- the truth ---------------------------------------------------------------------------
def _local_day(iso: str) -> date:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(SAO_PAULO).date()


def listings_truth(state: SandboxState) -> dict[str, dict]:
    """{external id: {created (local day), title, price, status, edited (UTC str)}}."""
    spec = state.spec
    out = {}
    for i in range(spec.listings):
        it = data.item(spec, i)
        if it["id"] in getattr(state, "deleted_items", ()):
            continue
        edit = state.item_edits.get(it["id"], {})
        out[it["id"]] = {
            "i": i,
            "created": _local_day(it["date_created"]),
            "title": edit.get("title", it["title"]),
            "price": edit.get("price", it["price"]),
            "status": edit.get("status", it["status"]),
            "edited": edit.get("last_updated"),
        }
    return out


def _sales(state: SandboxState, first: date, last: date, now: datetime):
    """({(item, day): [order ids, units, revenue]}, {day: [order ids, units, revenue]})."""
    start = datetime(first.year, first.month, first.day, tzinfo=SAO_PAULO)
    end = datetime(last.year, last.month, last.day, tzinfo=SAO_PAULO) + timedelta(days=1)
    per_item: dict = defaultdict(lambda: [set(), 0, 0.0])
    per_day: dict = defaultdict(lambda: [set(), 0, 0.0])
    for raw in data.orders_between(state.spec, start, end, now):
        change = state.order_changes.get(raw["id"])
        status = change[0] if change else raw["status"]
        if status not in COUNTED:
            continue
        day = raw["_created"].astimezone(SAO_PAULO).date()
        for line in raw["order_items"]:
            for acc in (per_item[(line["item"]["id"], day)], per_day[day]):
                acc[0].add(raw["id"])
                acc[1] += line["quantity"]
                acc[2] += line["quantity"] * line["unit_price"]
    return per_item, per_day


def expected(
    state: SandboxState, first: date, last: date, now: datetime, *, all_rows: bool = False
) -> dict:
    """{(item id, day): (orders, units, revenue, visits)} for days first..last. Non-zero
    figures only, unless `all_rows`: then every listing on every day it existed."""
    truth = listings_truth(state)
    per_item, _ = _sales(state, first, last, now)
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    out: dict[tuple[str, date], Figures] = {}
    spec = state.spec
    today = now.astimezone(SAO_PAULO).date()
    done = [_day_visits(spec, d) if d < today else None for d in days]
    for ext, li in truth.items():
        i = li["i"]
        visits = [
            full[i] if full is not None else data.visits_on(spec, i, day, now)
            for day, full in zip(days, done, strict=True)
        ]
        for day, v in zip(days, visits, strict=True):
            s = per_item.get((ext, day))
            if all_rows and day < li["created"] and not s:
                continue
            if all_rows or v or s:
                out[(ext, day)] = (
                    len(s[0]) if s else 0,
                    s[1] if s else 0,
                    round(s[2], 2) if s else 0.0,
                    v,
                )
    return out


@lru_cache(maxsize=4096)
def _day_visits(spec: data.SellerSpec, day: date) -> tuple[int, ...]:
    """Every listing's visits of a day that has ended: final, so computed once per seller
    and day (a morning then adds one day, not 31, for each seller)."""
    end = datetime(day.year, day.month, day.day, tzinfo=SAO_PAULO) + timedelta(days=2)
    return tuple(data.visits_on(spec, i, day, end) for i in range(spec.listings))


def overview_truth(state: SandboxState, first: date, last: date, now: datetime, rows: dict):
    """{day: (orders, units, revenue, visits, orders_with_visits)} from the sandbox's orders
    and the expected listing rows `rows` (all_rows=True)."""
    per_item, per_day = _sales(state, first, last, now)
    visits: Counter = Counter()
    with_visits: dict = defaultdict(set)  # day -> ids of orders with a row of known visits
    for (ext, day), fig in rows.items():
        if fig[3] is None:
            continue
        visits[day] += fig[3]
        sold = per_item.get((ext, day))
        if sold:
            with_visits[day] |= sold[0]  # an order of two listings is still one order
    out = {}
    for k in range((last - first).days + 1):
        day = first + timedelta(days=k)
        s = per_day.get(day)
        out[day] = (
            len(s[0]) if s else 0,
            s[1] if s else 0,
            round(s[2], 2) if s else 0.0,
            visits[day],
            len(with_visits[day]),
        )
    return out


def _ticket(revenue: float, orders: int) -> float | None:
    if not orders:
        return None
    q = Decimal(str(revenue)) / orders
    return float(q.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


# -- the product's tables (plain SQL) ------------------------------------------------------
def _day(value) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _num(value) -> float | None:
    return None if value is None else float(value)


def _stored_rows(conn: Connection, tenant_id: str, first: date) -> dict:
    sql = text(
        "SELECT l.external_id, m.date, m.orders, m.units_sold, m.revenue, m.visits, "
        "m.conversion, m.avg_ticket "
        "FROM listing_metrics_daily m JOIN listings l ON l.id = m.listing_id "
        "WHERE m.tenant_id = :t AND m.date >= :a"
    )
    return {
        (ext, _day(d)): (int(o), int(u), round(float(r), 2), v, _num(c), _num(t))
        for ext, d, o, u, r, v, c, t in conn.execute(sql, {"t": tenant_id, "a": first}).fetchall()
    }


def _stored_overview(conn: Connection, tenant_id: str, first: date, last: date) -> dict:
    sql = text(
        "SELECT date, orders, units_sold, revenue, visits, orders_with_visits "
        "FROM tenant_metrics_daily WHERE tenant_id = :t AND date BETWEEN :a AND :b"
    )
    return {
        _day(d): (int(o), int(u), round(float(r), 2), v, int(w))
        for d, o, u, r, v, w in conn.execute(sql, {"t": tenant_id, "a": first, "b": last})
    }


def _stored_listings(conn: Connection, tenant_id: str) -> dict:
    sql = text("SELECT external_id, title, price, status FROM listings WHERE tenant_id = :t")
    return {
        ext: (title, _num(price), status)
        for ext, title, price, status in conn.execute(sql, {"t": tenant_id})
    }


def _last_sync_start(conn: Connection, tenant_id: str) -> datetime | None:
    """When the tenant's latest completed Mercado Livre sync started (an edit made before
    it must be in `listings`)."""
    value = conn.execute(
        text(
            "SELECT MAX(started_at) FROM jobs WHERE tenant_id = :t "
            "AND type = 'sync_mercadolivre' AND status = 'completed'"
        ),
        {"t": tenant_id},
    ).scalar()
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo("UTC"))
    return value


def max_date(engine: Engine, tenant_id: str) -> date | None:
    with engine.connect() as conn:
        value = conn.execute(
            text("SELECT MAX(date) FROM listing_metrics_daily WHERE tenant_id = :t"),
            {"t": tenant_id},
        ).scalar()
    return date.fromisoformat(value) if isinstance(value, str) else value


# -- the comparison -------------------------------------------------------------------------
def _close(a, b, tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol


def _row_misses(want: Figures, have: tuple) -> list[str]:
    """The kinds by which a stored full-day row differs from the truth."""
    orders, units, revenue, visits = want
    h_orders, h_units, h_revenue, h_visits, h_conv, h_ticket = have
    kinds = []
    if h_visits is None:
        kinds.append("visits unknown")
    elif int(h_visits) != visits:
        kinds.append("visits")
    if (h_orders, h_units) != (orders, units) or not _close(h_revenue, revenue, MONEY_TOL):
        kinds.append("sales")
    conv = orders / visits if visits else None
    if not _close(h_conv, conv, RATIO_TOL):
        kinds.append("conversion")
    if not _close(h_ticket, _ticket(revenue, orders), TICKET_TOL):
        kinds.append("avg_ticket")
    return kinds


class _Misses:
    def __init__(self) -> None:
        self.count: Counter = Counter()
        self.examples: dict[str, list[str]] = defaultdict(list)
        self.keys: set = set()

    def add(self, kind: str, key, detail: str) -> None:
        self.count[kind] += 1
        self.keys.add(key)
        if len(self.examples[kind]) < SHOWN:
            self.examples[kind].append(detail)

    def cause(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in self.count.most_common())
        first = "; ".join(
            f"{k}: " + ", ".join(self.examples[k]) for k, _ in self.count.most_common()
        )
        return f"{len(self.keys)} key(s) differ ({kinds}); {first}"


def check_tenant(
    source: Engine | Connection, tenant_id: str, state: SandboxState, now: datetime
) -> Verdict:
    """At a morning check (`now`, read after the snapshot was taken): the last 30 full days
    exact, listing by listing and in the overview; today's partial day present for every
    listing, nothing after today, today's figures not above the sandbox's; edits the last
    completed sync could see are in `listings`."""
    if isinstance(source, Engine):
        with snapshot(source) as conn:
            return check_tenant(conn, tenant_id, state, now)
    conn = source
    today = now.astimezone(SAO_PAULO).date()
    yesterday = today - timedelta(days=1)
    first = today - timedelta(days=WINDOW_DAYS)
    truth = listings_truth(state)
    want = expected(state, first, today, now, all_rows=True)
    have = _stored_rows(conn, tenant_id, first)
    m = _Misses()
    for key, fig in want.items():
        ext, day = key
        got = have.get(key)
        if day == today:
            if got is None:
                m.add("today's partial day missing", key, ext)
                continue
            over = got[0] > fig[0] or got[1] > fig[1] or got[2] > fig[2] + MONEY_TOL
            if over or (got[3] is not None and got[3] > fig[3]):
                m.add("today above sandbox", key, f"{ext} stored {got[:4]} sandbox {fig}")
            continue
        if got is None:
            m.add("missing", key, f"{ext} {day}")
            continue
        for kind in _row_misses(fig, got):
            m.add(kind, key, f"{ext} {day} stored {got} expected {fig}")
    for key, got in have.items():
        ext, day = key
        if day > today:
            m.add("after today", key, f"{ext} {day}")
        elif key not in want and (ext not in truth or any(got[:3]) or got[3]):
            m.add("extra", key, f"{ext} {day} stored {got[:4]}")
    over = overview_truth(state, first, yesterday, now, want)
    stored_over = _stored_overview(conn, tenant_id, first, yesterday)
    for day, fig in over.items():
        got = stored_over.get(day)
        if got is None:
            m.add("overview missing", ("overview", day), str(day))
        elif (
            got[0:2] != fig[0:2]
            or not _close(got[2], fig[2], MONEY_TOL)
            or got[3] is None
            or int(got[3]) != fig[3]
            or got[4] != fig[4]
        ):
            m.add("overview", ("overview", day), f"{day} stored {got} expected {fig}")
    _check_edits(conn, tenant_id, truth, m)
    if m.count:
        return Verdict(False, m.cause(), len(m.keys))
    return Verdict(True)


def _check_edits(conn: Connection, tenant_id: str, truth: dict, m: _Misses) -> None:
    """Edits made before the tenant's last completed sync started must be in `listings`
    (the sync reads every item; a notified seller may have them sooner, never later)."""
    edited = {ext: li for ext, li in truth.items() if li["edited"]}
    if not edited:
        return
    since = _last_sync_start(conn, tenant_id)
    if since is None:
        return
    stored = _stored_listings(conn, tenant_id)
    for ext, li in edited.items():
        if datetime.fromisoformat(li["edited"].replace("Z", "+00:00")) >= since:
            continue
        got = stored.get(ext)
        if got is None:
            m.add("listing missing", ("listing", ext), ext)
            continue
        title, price, status = got
        if (
            title != li["title"]
            or not _close(price, li["price"], MONEY_TOL)
            or (status != li["status"])
        ):
            m.add(
                "edit not synced",
                ("listing", ext),
                f"{ext} stored {got} sandbox {(li['title'], li['price'], li['status'])}",
            )
