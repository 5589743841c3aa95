"""Rebuild `listing_metrics_daily` for a tenant and a range of local days.

Set-based: one `INSERT … SELECT … ON CONFLICT DO UPDATE` per chunk of days, on
both PostgreSQL and SQLite; no per-row Python. A chunk with no rows yet (a new
seller's history, a `--replace`) takes the same statement without ON CONFLICT:
PostgreSQL's speculative insertion cost ~30% of a first build. Rebuilds of one
tenant are serialized (an advisory lock on PostgreSQL, the write lock on SQLite),
so "no rows yet" stays true until the chunk is written.

Every listing that existed on a day gets a row (zeros for a quiet day); visits
come from listing_visits_daily and are never turned from unknown into 0, nor from
known into unknown. A row whose figures did not change is not touched, so a second
rebuild leaves the table byte-for-byte the same.
"""

from __future__ import annotations

import re
import time
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, delete, func, select, text

from superseller.db.engine import is_postgres
from superseller.db.schema import (
    listing_metrics_daily,
    listings,
    tenant_currency_daily,
    tenant_metrics_daily,
)
from superseller.db.types import UTCDateTime
from superseller.errors import UserFacingError
from superseller.jobs.clock import Clock, SystemClock
from superseller.jobs.cron import zone
from superseller.limits import LimitError, check_date
from superseller.metrics.rules import COUNTED_ORDER_STATUSES, MAIN_CURRENCY, MAX_RANGE_DAYS
from superseller.tenants import get_tenant

CHUNK_DAYS = 31

_DAYS = {
    "postgresql": "SELECT CAST(d AS DATE) AS d FROM generate_series("
    "CAST(:start AS DATE), CAST(:end AS DATE), INTERVAL '1 day') AS g(d)",
    "sqlite": "WITH RECURSIVE s(d) AS (SELECT :start UNION ALL "
    "SELECT date(d, '+1 day') FROM s WHERE d < :end) SELECT d FROM s",
}
_CHANGED = {"postgresql": "IS DISTINCT FROM", "sqlite": "IS NOT"}
# The visits join reads only the range on PostgreSQL (it hashed every row of the table and
# spilled to disk); SQLite looks each row up by primary key, and checking the range as
# well cost it ~6% of the statement (the day is already one of the range's).
_VISITS_RANGE = {"postgresql": " AND date BETWEEN :start AND :end", "sqlite": ""}

_REBUILD_SQL = """
INSERT INTO listing_metrics_daily
    (tenant_id, listing_id, date, visits, orders, units_sold, revenue, conversion,
     avg_ticket, source, updated_at)
-- The WITH sits inside the INSERT: Python's sqlite3 reports no row count for a
-- statement that starts with WITH.
WITH sales AS (
    SELECT oi.listing_id, o.created_local_date AS d,
           COUNT(DISTINCT o.id) AS orders, SUM(oi.quantity) AS units,
           ROUND(SUM(oi.quantity * oi.unit_price), 2) AS revenue
    FROM orders o JOIN order_items oi ON oi.order_id = o.id
    WHERE {hint}o.tenant_id = :tenant AND o.status IN ({statuses})
      AND {hint}o.created_local_date BETWEEN :start AND :end
      AND oi.listing_id IS NOT NULL{only_oi}
    GROUP BY oi.listing_id, o.created_local_date
)
SELECT :tenant, g.listing_id, {day}, v.visits,
       COALESCE(s.orders, 0), COALESCE(s.units, 0), COALESCE(s.revenue, 0),
       CASE WHEN v.visits > 0 THEN CAST(COALESCE(s.orders, 0) AS FLOAT) / v.visits END,
       CASE WHEN s.orders > 0 THEN ROUND(s.revenue / s.orders, 2) END,
       :source, :now
FROM {rows}
LEFT JOIN sales AS s ON s.listing_id = g.listing_id AND s.d = {day}
LEFT JOIN (
    SELECT listing_id, date, visits FROM listing_visits_daily
    WHERE tenant_id = :tenant{visits_range}{only_v}
) AS v ON v.listing_id = g.listing_id AND v.date = {day}
WHERE {where}
ON CONFLICT (tenant_id, listing_id, date) DO UPDATE SET
    visits = COALESCE(excluded.visits, listing_metrics_daily.visits),
    orders = excluded.orders,
    units_sold = excluded.units_sold,
    revenue = excluded.revenue,
    conversion = CASE WHEN COALESCE(excluded.visits, listing_metrics_daily.visits) > 0
                      THEN CAST(excluded.orders AS FLOAT)
                           / COALESCE(excluded.visits, listing_metrics_daily.visits) END,
    avg_ticket = excluded.avg_ticket,
    source = excluded.source,
    updated_at = excluded.updated_at
WHERE listing_metrics_daily.orders {ne} excluded.orders
   OR listing_metrics_daily.units_sold {ne} excluded.units_sold
   OR listing_metrics_daily.revenue {ne} excluded.revenue
   OR (excluded.visits IS NOT NULL AND listing_metrics_daily.visits {ne} excluded.visits)
   OR listing_metrics_daily.avg_ticket {ne} excluded.avg_ticket
"""

# The rows: every day a listing existed, and any day it sold, even before its recorded
# creation (a sale proves it existed). PostgreSQL: a UNION ALL of the two disjoint sets of
# (listing, day). SQLite passed every row of that union (300,000) through a co-routine,
# so there the union is of listings (10,000: the tenant's, and any other listing id that
# sold, known = 0) crossed with the days, and the WHERE keeps their existing or sale days.
_ROWS = {
    "postgresql": (
        """(
    SELECT l.id AS listing_id, days.d
    FROM listings l CROSS JOIN ({days}) AS days
    WHERE {hint}l.tenant_id = :tenant{only_l}
      AND (l.created_local_date IS NULL OR l.created_local_date <= days.d)
    UNION ALL
    SELECT s.listing_id, s.d FROM sales s
    LEFT JOIN listings l ON l.id = s.listing_id AND l.tenant_id = :tenant
    WHERE l.id IS NULL OR l.created_local_date > s.d
) AS g""",
        "g.d",
        "true",
    ),
    "sqlite": (
        """(
    -- every listing of the tenant, on the days it existed (below)...
    SELECT l.id AS listing_id, l.created_local_date AS since, 1 AS known
    FROM listings l
    WHERE {hint}l.tenant_id = :tenant{only_l}
    UNION ALL
    -- ...and any other listing id that sold (not the tenant's): on its sale days only
    SELECT DISTINCT s.listing_id, CAST(NULL AS DATE), 0 FROM sales s
    WHERE NOT EXISTS (SELECT 1 FROM listings x WHERE x.id = s.listing_id AND x.tenant_id = :tenant)
) AS g
CROSS JOIN ({days}) AS days""",
        "days.d",
        "(g.known = 1 AND (g.since IS NULL OR g.since <= days.d)) OR s.listing_id IS NOT NULL",
    ),
}


# Tenant totals count every sale in the tenant's currency, of synced listings or not: a
# sale of an item that is no longer a listing (deleted, 403) stays in the totals, and is
# also shown apart as the "other listings" bucket. Sales in another currency go to
# tenant_currency_daily instead: never added into the BRL figures.
# orders_with_visits (the conversion's numerator) is distinct orders too: one of these
# orders counts once if any of its items' listing rows of the day has known visits (an
# order of two listings is one order, not two; the sum of listing rows counted it twice).
_ROLLUP_SQL = """
INSERT INTO tenant_metrics_daily
    (tenant_id, date, orders, units_sold, revenue, visits, orders_with_visits,
     other_orders, other_revenue, updated_at)
SELECT :tenant, days.d, COALESCE(s.orders, 0), COALESCE(s.units, 0), COALESCE(s.revenue, 0),
       m.visits, COALESCE(s.orders_with_visits, 0),
       COALESCE(s.other_orders, 0), COALESCE(s.other_revenue, 0), :now
FROM ({days}) AS days
LEFT JOIN {listing_sums} AS m ON m.date = days.d
LEFT JOIN (
    SELECT o.created_local_date AS d, COUNT(DISTINCT o.id) AS orders,
           SUM(oi.quantity) AS units, ROUND(SUM(oi.quantity * oi.unit_price), 2) AS revenue,
           COUNT(DISTINCT CASE WHEN oi.listing_id IS NULL THEN o.id END) AS other_orders,
           ROUND(SUM(CASE WHEN oi.listing_id IS NULL THEN oi.quantity * oi.unit_price
                          ELSE 0 END), 2) AS other_revenue,
           COUNT(DISTINCT CASE WHEN lm.visits IS NOT NULL THEN o.id END) AS orders_with_visits
    FROM orders o JOIN order_items oi ON oi.order_id = o.id
    -- the item's listing row of the day (one, by primary key): is its visits known?
    LEFT JOIN listing_metrics_daily lm
      ON lm.tenant_id = :tenant AND lm.listing_id = oi.listing_id
     AND lm.date = o.created_local_date
    WHERE o.tenant_id = :tenant AND o.status IN ({statuses})
      AND o.created_local_date BETWEEN :start AND :end
      AND COALESCE(oi.currency, o.currency, '{currency}') = '{currency}'
    GROUP BY o.created_local_date
) AS s ON s.d = days.d
WHERE true
ON CONFLICT (tenant_id, date) DO UPDATE SET
    orders = excluded.orders, units_sold = excluded.units_sold, revenue = excluded.revenue,
    visits = excluded.visits, orders_with_visits = excluded.orders_with_visits,
    other_orders = excluded.other_orders, other_revenue = excluded.other_revenue,
    updated_at = excluded.updated_at
WHERE tenant_metrics_daily.orders {ne} excluded.orders
   OR tenant_metrics_daily.units_sold {ne} excluded.units_sold
   OR tenant_metrics_daily.revenue {ne} excluded.revenue
   OR tenant_metrics_daily.visits {ne} excluded.visits
   OR tenant_metrics_daily.orders_with_visits {ne} excluded.orders_with_visits
   OR tenant_metrics_daily.other_orders {ne} excluded.other_orders
   OR tenant_metrics_daily.other_revenue {ne} excluded.other_revenue
"""

# The day's sums of its listing rows (what the rollup's visits come from).
_LISTING_SUMS_SQL = """(
    SELECT date, SUM(visits) AS visits
    FROM listing_metrics_daily
    WHERE tenant_id = :tenant AND date BETWEEN :start AND :end
    GROUP BY date
)"""

# The same sums when the chunk was empty and is now exactly the rows this transaction
# inserted (SQLite: rowids above the largest before it, under the write lock). Read in
# rowid order instead of through the (tenant, date) index, a row at a time: half the
# work, and the rollup was most of what the rebuild spends beyond its one statement.
_NEW_ROWS_SUMS_SQL = """(
    SELECT date, SUM(visits) AS visits
    FROM listing_metrics_daily
    WHERE rowid > :mark
    GROUP BY date
)"""

_OTHER_CURRENCIES_SQL = """
INSERT INTO tenant_currency_daily
    (tenant_id, date, currency, orders, units_sold, revenue, updated_at)
SELECT CAST(:tenant AS VARCHAR(36)), o.created_local_date, COALESCE(oi.currency, o.currency),
       COUNT(DISTINCT o.id), SUM(oi.quantity), ROUND(SUM(oi.quantity * oi.unit_price), 2), :now
FROM orders o JOIN order_items oi ON oi.order_id = o.id
WHERE o.tenant_id = :tenant AND o.status IN ({statuses})
  AND o.created_local_date BETWEEN :start AND :end
  AND COALESCE(oi.currency, o.currency, '{currency}') <> '{currency}'
GROUP BY o.created_local_date, COALESCE(oi.currency, o.currency)
"""


# The first build of a chunk: the same rows, nothing to conflict with.
_INSERT_SQL = _REBUILD_SQL[: _REBUILD_SQL.index("ON CONFLICT")]


# The full rebuild's statements take every listing of the tenant; the incremental one
# (rebuild_pairs) the same statements narrowed to some listings.
_ALL_LISTINGS = {"only_oi": "", "only_l": "", "only_v": "", "hint": ""}


def _only(listing_ids, dialect: str) -> dict[str, str]:
    ids = ", ".join(str(int(i)) for i in sorted(set(listing_ids)))  # ints, never user text
    return {
        "only_oi": f" AND oi.listing_id IN ({ids})",
        "only_l": f" AND l.id IN ({ids})",
        "only_v": f" AND listing_id IN ({ids})",
        # SQLite (no statistics) took the tenant's indexes over the listing ids: it read
        # all 10,000 listings and every order of the days (~4x the work). A unary `+`
        # keeps it off an index there; PostgreSQL's planner needs no such help.
        "hint": "+" if dialect == "sqlite" else "",
    }


def _date_literal(d: date, dialect: str) -> str:
    # Dates are date objects written as ISO literals: never user text.
    return f"DATE '{d.isoformat()}'" if dialect == "postgresql" else f"'{d.isoformat()}'"


def _int_literal(n) -> str:
    return "NULL" if n is None else str(int(n))


def _given_sums(dialect: str, sums: dict) -> str:
    """The day's listing sums as a VALUES table (day -> visits)."""
    rows = ", ".join(
        f"({_date_literal(d, dialect)}, {_int_literal(v)})" for d, v in sorted(sums.items())
    )
    if dialect == "postgresql":
        return f"(SELECT d AS date, CAST(v AS INTEGER) AS visits FROM (VALUES {rows}) AS mv(d, v))"
    return f"(SELECT column1 AS date, column2 AS visits FROM (VALUES {rows}))"


def _first_build_rollup(dialect: str):
    """The rollup after a first build (SQLite; elsewhere None: the plain one)."""
    if dialect != "sqlite":
        return None
    return _statements(dialect, listing_sums=_NEW_ROWS_SUMS_SQL)[2]


def _statements(dialect: str, listing_ids=None, days=None, listing_sums=None):
    """(upsert, first build, tenant rollup, other currencies) for a dialect; narrowed to
    `listing_ids` and to a set of `days` (instead of the :start..:end range) when given;
    the rollup taking the days' `listing_sums` as given instead of summing the rows."""
    parts = {
        "days": _DAYS[dialect],
        "ne": _CHANGED[dialect],
        "visits_range": _VISITS_RANGE[dialect],
        "statuses": ", ".join(f"'{s}'" for s in COUNTED_ORDER_STATUSES),
        "currency": MAIN_CURRENCY,
        "listing_sums": (
            _LISTING_SUMS_SQL
            if listing_sums is None
            else listing_sums
            if isinstance(listing_sums, str)
            else _given_sums(dialect, listing_sums)
        ),
        **(_ALL_LISTINGS if listing_ids is None else _only(listing_ids, dialect)),
    }
    sqls = (_REBUILD_SQL, _INSERT_SQL, _ROLLUP_SQL, _OTHER_CURRENCIES_SQL)
    if days is not None:
        lits = [_date_literal(d, dialect) for d in sorted(days)]
        values = ", ".join(f"({x})" for x in lits)
        parts["days"] = (
            f"SELECT d FROM (VALUES {values}) AS dv(d)"
            if dialect == "postgresql"
            else f"SELECT column1 AS d FROM (VALUES {values})"
        )
        day_list = "IN (" + ", ".join(lits) + ")"
        sqls = tuple(sql.replace("BETWEEN :start AND :end", day_list) for sql in sqls)
        parts["visits_range"] = parts["visits_range"].replace("BETWEEN :start AND :end", day_list)
        parts["listing_sums"] = parts["listing_sums"].replace("BETWEEN :start AND :end", day_list)
    rows, parts["day"], parts["where"] = _ROWS[dialect]
    parts["rows"] = rows.format(**parts)
    if days is not None:
        parts["rows"] = parts["rows"].replace("BETWEEN :start AND :end", day_list)
    now = bindparam("now", type_=UTCDateTime)
    return tuple(text(sql.format(**parts)).bindparams(now) for sql in sqls)


def rebuild_pairs(
    engine: Engine,
    tenant_id: str,
    pairs,
    days=(),
    clock: Clock | None = None,
    source: str = "rebuild",
) -> dict[str, Any]:
    """Rebuild only some (listing id, local day) rows, and the tenant's per-day totals of
    their days and of `days` (a sale of no synced listing still changes the totals).

    Writes exactly what `rebuild_daily_metrics` over those days would write for those
    rows: the same statements, narrowed to the pairs' listings and days (every listing
    with every day: a few more rows than asked, each exactly as a full rebuild has it),
    in one transaction. What a notification changed is rebuilt in milliseconds.

    The days' visit sums in the rollup are the stored ones plus what the rewritten rows
    changed (the rollup is always written with its listing rows, so it is their sum):
    summing every listing of the day again read 10,000 rows a day. A day without a
    rollup yet is summed."""
    wanted = {(int(lid), parse_day(day, "day")) for lid, day in pairs}
    ids = {lid for lid, _ in wanted}
    pair_days = {d for _, d in wanted}
    all_days = pair_days | {parse_day(d, "day") for d in days}
    if not all_days:
        return {"pairs": 0, "days": 0, "rowsUpserted": 0}
    for d in all_days:
        validate_range(d, d)
    clock = clock or SystemClock()
    dialect = engine.dialect.name
    params = _params(engine, tenant_id, min(all_days), max(all_days), clock.now(), source)
    upserted = 0
    with engine.begin() as conn:
        tune_session(conn)
        _serialize_tenant(conn, tenant_id)
        before = _row_sums(conn, tenant_id, ids, pair_days)
        if wanted:
            sql = _statements(dialect, ids, pair_days)[0]
            upserted = max(conn.execute(sql, params).rowcount, 0)
        after = _row_sums(conn, tenant_id, ids, pair_days)
        sums = _day_sums(conn, tenant_id, all_days, before, after)
        _, _, rollup, other_currencies = _statements(dialect, days=all_days, listing_sums=sums)
        conn.execute(rollup, params)
        conn.execute(
            delete(tenant_currency_daily).where(
                tenant_currency_daily.c.tenant_id == tenant_id,
                tenant_currency_daily.c.date.in_(sorted(all_days)),
            )
        )
        conn.execute(other_currencies, params)
    return {"pairs": len(wanted), "days": len(all_days), "rowsUpserted": upserted}


_SUMS_SQL = """
SELECT lm.date, SUM(lm.visits), COUNT(lm.visits)
FROM {rows} WHERE lm.tenant_id = :tenant {only}
GROUP BY lm.date
"""


def _sums_by_day(conn, tenant_id: str, days: set[date], ids: set[int] | None = None) -> dict:
    """day -> (sum of known visits, how many known) of the tenant's listing rows of
    `days` (of the listings `ids` only, when given)."""
    dialect = conn.dialect.name
    lits = [_date_literal(d, dialect) for d in sorted(days)]
    if ids is None:
        rows, only = "listing_metrics_daily AS lm", f"AND lm.date IN ({', '.join(lits)})"
    else:
        # Each (listing, day) looked up by the primary key: given `listing_id IN (...) AND
        # date IN (...)`, SQLite (no statistics) picked the (tenant, date) index and read
        # every listing of the days (150 ms at 10k listings).
        pairs = ", ".join(f"({int(i)}, {d})" for i in sorted(ids) for d in lits)
        values = (
            f"(VALUES {pairs}) AS p(lid, d)"
            if dialect == "postgresql"
            else f"(SELECT column1 AS lid, column2 AS d FROM (VALUES {pairs})) AS p"
        )
        rows = (
            f"{values} JOIN listing_metrics_daily AS lm ON lm.listing_id = p.lid AND lm.date = p.d"
        )
        only = ""
    found = conn.execute(text(_SUMS_SQL.format(rows=rows, only=only)), {"tenant": tenant_id})
    return {_as_date(d): (v, n) for d, v, n in found}


def _as_date(d) -> date:
    return date.fromisoformat(d) if isinstance(d, str) else d


def _row_sums(conn, tenant_id: str, ids: set[int], days: set[date]) -> dict:
    if not ids or not days:
        return {}
    return _sums_by_day(conn, tenant_id, days, ids)


def _day_sums(conn, tenant_id: str, days: set[date], before: dict, after: dict) -> dict:
    """day -> the visits of all its listing rows, as a full rollup would sum them: the
    stored rollup moved by the rewritten rows' change."""
    tm = tenant_metrics_daily
    stored = {
        d: v
        for d, v in conn.execute(
            select(tm.c.date, tm.c.visits).where(
                tm.c.tenant_id == tenant_id, tm.c.date.in_(sorted(days))
            )
        ).all()
    }
    out, unknown = {}, set()
    for d in days:
        if d not in stored:
            unknown.add(d)
            continue
        visits = stored[d]
        v0, n0 = before.get(d, (None, 0))
        v1, n1 = after.get(d, (None, 0))
        if visits is None and n0:  # a stored rollup that is not its rows' sum: sum them
            unknown.add(d)
            continue
        # Visits only ever go from unknown to known, so a known sum stays known.
        if visits is not None or n1:
            visits = (visits or 0) - (v0 or 0) + (v1 or 0)
        out[d] = visits
    if unknown:
        summed = _sums_by_day(conn, tenant_id, unknown)
        for d in unknown:
            out[d] = summed.get(d, (None, 0))[0]
    return out


def _params(engine: Engine, tenant_id: str, start: date, end: date, now, source: str) -> dict:
    return {
        "tenant": tenant_id,
        "start": _day_param(start, engine),
        "end": _day_param(end, engine),
        "now": now,
        "source": source,
    }


class InvalidRange(UserFacingError):
    """A rebuild range that cannot be used."""

    code = "invalid_range"


_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_day(value: str | date, what: str) -> date:
    """A day given as YYYY-MM-DD. One in that format that the calendar does not have
    (2026-02-30) is told so, not sent back to a format it already follows."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DAY.fullmatch(value):
        raise InvalidRange(f"{what} must be a date YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRange(f"{what} {value} does not exist in the calendar") from None


def validate_range(start: date, end: date) -> None:
    """A range of local days: within what Python and both databases represent
    (limits.DATE_MIN .. DATE_MAX), in order, and at most MAX_RANGE_DAYS long."""
    for day, what in ((start, "'from'"), (end, "'to'")):
        try:
            check_date(day, what)
        except LimitError as exc:
            raise InvalidRange(str(exc)) from None
    if start > end:
        raise InvalidRange(f"'from' ({start}) is after 'to' ({end})")
    days = (end - start).days + 1
    if days > MAX_RANGE_DAYS:
        raise InvalidRange(f"range of {days} days is longer than {MAX_RANGE_DAYS}")


def rebuild_daily_metrics(
    engine: Engine,
    tenant_id: str,
    start: str | date,
    end: str | date,
    clock: Clock | None = None,
    replace: bool = False,
    source: str = "rebuild",
) -> dict[str, Any]:
    """Rebuild both ends inclusive; returns the seed's result shape.

    `source` is written on every row whose figures it writes: `internal_job` when the
    internal endpoint asked (the runbook's data-fix query selects those), else `rebuild`.

    `replace` first deletes the range's rows (the runbook's "corrupted range"), in the
    same transaction as their rebuild, so readers never see the range empty."""
    start, end = parse_day(start, "from"), parse_day(end, "to")
    validate_range(start, end)
    get_tenant(engine, tenant_id)  # clear error for an unknown tenant
    clock = clock or SystemClock()
    sql, first_build, rollup, other_currencies = _statements(engine.dialect.name)
    new_rows_rollup = _first_build_rollup(engine.dialect.name)
    began = time.perf_counter()
    upserted = 0
    now = clock.now()
    chunk_start = start
    while chunk_start <= end:
        chunk_end = min(end, chunk_start + timedelta(days=CHUNK_DAYS - 1))
        params = {
            "tenant": tenant_id,
            "start": _day_param(chunk_start, engine),
            "end": _day_param(chunk_end, engine),
            "now": now,
            "source": source,
        }
        with engine.begin() as conn:
            tune_session(conn)
            _serialize_tenant(conn, tenant_id)
            if replace:
                for table in (listing_metrics_daily, tenant_metrics_daily):
                    conn.execute(
                        delete(table).where(
                            table.c.tenant_id == tenant_id,
                            table.c.date.between(chunk_start, chunk_end),
                        )
                    )
            empty = (
                replace
                or conn.execute(
                    select(listing_metrics_daily.c.listing_id)
                    .where(
                        listing_metrics_daily.c.tenant_id == tenant_id,
                        listing_metrics_daily.c.date.between(chunk_start, chunk_end),
                    )
                    .limit(1)
                ).first()
                is None
            )  # a replaced chunk was just emptied: no need to look
            if empty and new_rows_rollup is not None:
                mark = conn.exec_driver_sql(
                    "SELECT COALESCE(MAX(rowid), 0) FROM listing_metrics_daily"
                ).scalar()
                upserted += max(conn.execute(first_build, params).rowcount, 0)
                conn.execute(new_rows_rollup, {**params, "mark": mark})
            else:
                upserted += max(conn.execute(first_build if empty else sql, params).rowcount, 0)
                conn.execute(rollup, params)  # the overview's per-day totals, same transaction
            conn.execute(
                delete(tenant_currency_daily).where(
                    tenant_currency_daily.c.tenant_id == tenant_id,
                    tenant_currency_daily.c.date.between(chunk_start, chunk_end),
                )
            )
            conn.execute(other_currencies, params)
        chunk_start = chunk_end + timedelta(days=1)
    with engine.connect() as conn:
        max_date = conn.execute(
            select(func.max(listing_metrics_daily.c.date)).where(
                listing_metrics_daily.c.tenant_id == tenant_id
            )
        ).scalar()
        n_listings = conn.execute(
            select(func.count()).select_from(listings).where(listings.c.tenant_id == tenant_id)
        ).scalar()
    if isinstance(max_date, str):  # SQLite aggregate comes back as text
        max_date = date.fromisoformat(max_date)
    return {
        "daysProcessed": (end - start).days + 1,
        "rowsUpserted": upserted,
        "listingsProcessed": n_listings,
        "durationMs": int((time.perf_counter() - began) * 1000),
        "dateRange": {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "maxDateAfterRebuild": max_date.isoformat() if max_date else None,
        },
    }


def tune_session(conn) -> None:
    """PostgreSQL settings for one big set-based statement, for this transaction only:
    JIT compilation costs more than it saves here (~0.5 s), and the default 4 MB of
    work_mem makes the joins spill to disk."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL jit = off")
        conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")


def _serialize_tenant(conn, tenant_id: str) -> None:
    """One rebuild transaction per tenant at a time (until commit). SQLite needs nothing:
    every write transaction there begins IMMEDIATE, holding the database's write lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
            {"key": f"superseller.rebuild:{tenant_id}"},
        )


def _day_param(d: date, engine: Engine):
    return d if is_postgres(engine) else d.isoformat()


def day_spans(days: set[date] | list[date], max_days: int = MAX_RANGE_DAYS) -> list[tuple]:
    """Days to rebuild, as few (first, last) ranges as possible: consecutive days join,
    and no range is longer than `max_days`. A sync marks the days an update touched
    (an old order cancelled today) this way, however far apart they are."""
    spans: list[list[date]] = []
    for d in sorted(set(days)):
        if spans and (d - spans[-1][1]).days == 1 and (d - spans[-1][0]).days < max_days:
            spans[-1][1] = d
        else:
            spans.append([d, d])
    return [(a, b) for a, b in spans]


def local_today(tz_name: str, now: datetime) -> date:
    return now.astimezone(zone(tz_name)).date()
