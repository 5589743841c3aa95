"""Which days of visits a sync fetches for each listing: only those that can still change.

Mercado Livre counts unique visits per day and makes them available **within 48 h**
(reference §5); after that a day's count is settled. The visits API is one request per
item whatever the window (`last=150` costs what `last=10` costs), so the saving is not in
requests but in what each answer carries and what is written: a 10,000-listing seller's
nightly sync wrote 310,000 visit-day rows for a 30-day window, all but ~4 days of them
already stored and settled.

The rule, per listing, for a run whose local "today" is T and window starts at F
(`T - daysBack`):

- its stored visit days from F on are read (`stored_spans`): oldest O, newest N, count C;
- **full window** (`last = daysBack`, days F..T) when it has none, when they do not reach
  back to F (O > F: a longer window than ever fetched, e.g. a 90-day backfill after 30-day
  nights), when they have a hole (C ≠ N − O + 1), when the run asks for it (payload
  `visits: "full"`), or when the tenant never had a successful sync;
- otherwise **recent days only**: `last = min(daysBack, T − N + SETTLE_DAYS)`, days
  N − SETTLE_DAYS..T. N is the "today" of the last fetch that stored this item (a fetch
  stores every day of its window, zeros included), so the days that fetch may have seen
  incomplete are N − 2..N (48 h); one day more covers Mercado Livre's day boundary (BRT)
  against the seller's time zone. A night without a sync (scheduler down, failed run,
  an item whose call failed) leaves N older, and the window widens by itself.

Every path uses the rule: the nightly fan-out, the first import and a reconnect (no
stored days, or not back to F: full), the seller's "Atualizar dados" and the CLI (the
days that can still change are fetched again, a longer period than stored is fetched
whole). `{"visits": "full"}` in the payload (`superseller jobs enqueue`) refetches the
whole window of every listing, should Mercado Livre ever revise settled days.

Stored days are then exactly what a full refetch would store: the rebuild of the window's
days (`daysTouched` still starts at F) reads the same rows either way.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, func, select

from superseller.db.schema import listing_visits_daily, listings

SETTLE_DAYS = 3
Span = tuple[date, date, int]  # oldest, newest stored day from the window's start; count


def stored_spans(engine: Engine, tenant_id: str, first_day: date) -> dict[int, Span]:
    """{listing id: (oldest, newest, count)} of the tenant's stored visit days from
    `first_day` on; listings without any are absent. One indexed probe per listing (the
    primary key is tenant, listing, date), so it reads the window, not the history."""
    v = listing_visits_daily

    def of(agg):
        return (
            select(agg)
            .where(
                v.c.tenant_id == tenant_id,
                v.c.listing_id == listings.c.id,
                v.c.date >= first_day,
            )
            .scalar_subquery()
        )

    query = select(
        listings.c.id,
        of(func.min(v.c.date)),
        of(func.max(v.c.date)),
        of(func.count()),
    ).where(listings.c.tenant_id == tenant_id)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return {lid: (_as_date(lo), _as_date(hi), int(n)) for lid, lo, hi, n in rows if lo is not None}


def days_to_fetch(span: Span | None, first_day: date, today: date, days_back: int) -> int:
    """The `last` of this listing's visits request (days before today; see the module)."""
    if span is None:
        return days_back
    oldest, newest, count = span
    if oldest > first_day or count != (newest - oldest).days + 1:
        return days_back
    return max(1, min(days_back, max(0, (today - newest).days) + SETTLE_DAYS))


def _as_date(d) -> date:
    return date.fromisoformat(d) if isinstance(d, str) else d
