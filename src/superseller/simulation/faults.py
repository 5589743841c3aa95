"""The fault schedule: drawn from the seed, printed, replayable (same seed, same schedule).

Night faults land on distinct nights (at most one per night, so each missed morning has
one cause); day faults at random daytime hours. Times are local (America/Sao_Paulo).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SAO_PAULO = ZoneInfo("America/Sao_Paulo")

# kind -> what it does (the table's legend and the docs')
KINDS = {
    "db_outage": "database unreachable (SQLite: write lock held 75 s, past the 60 s busy "
    "timeout; PG: connections refused 5-60 s)",
    "worker_kill": "worker SIGKILLed in the large seller's sync after a checkpoint, restarted",
    "scheduler_kill": "scheduler SIGKILLed, restarted 40 min later",
    "scheduler_night": "scheduler down all night (21:00 to 05:00)",
    "ml_429": "Mercado Livre 429 storm (30% of calls) for 90 min",
    "ml_5xx": "Mercado Livre 5xx burst (15% of calls) for 60 min",
    "token_revoke": "one seller revokes the app (must end reauth_required)",
    "clock_jump": "machine asleep 01:55 to 04:05 (clock jump)",
    "slow_disk": "SQLite only: slow commits (write lock held 0.2-3 s at random) 01:58 to 03:30",
}
NIGHT_KINDS = ("db_outage", "worker_kill", "scheduler_kill", "scheduler_night", "ml_429")
NIGHT_KINDS += ("ml_5xx", "clock_jump")
# A deliberately broken setup (not a fault the product must survive): the scheduler is
# down from 21:00 to 07:00 and nothing heals before the morning check.
BROKEN = "scheduler_off_night"


@dataclass(frozen=True)
class Fault:
    kind: str
    start: datetime  # local
    end: datetime  # local; == start for instantaneous ones
    tenant: str | None = None

    def describe(self) -> str:
        who = f" ({self.tenant})" if self.tenant else ""
        if self.end > self.start:
            return f"{self.kind}{who} {self.start:%d/%m %H:%M}–{self.end:%H:%M}"
        return f"{self.kind}{who} {self.start:%d/%m %H:%M}"


def _at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), SAO_PAULO)


def _night(kind: str, day: date, rng: random.Random) -> list[Fault]:
    """A night fault on the night that ends on the morning of `day`."""
    eve = day - timedelta(days=1)
    if kind == "db_outage":
        # A few seconds into the 02:00 wave, while syncs run.
        start = _at(day, 2) + timedelta(seconds=rng.choice((2, 5, 30)))
        return [Fault(kind, start, start + timedelta(minutes=rng.choice((1, 10, 60))))]
    if kind == "worker_kill":
        return [Fault(kind, _at(day, 2), _at(day, 2))]
    if kind == "scheduler_kill":
        start = _at(day, 2, 30)
        return [Fault(kind, start, start + timedelta(minutes=40))]
    if kind == "scheduler_night":
        return [Fault(kind, _at(eve, 21), _at(day, 5))]
    if kind == BROKEN:
        return [Fault(kind, _at(eve, 21), _at(day, 7))]
    if kind == "ml_429":
        return [Fault(kind, _at(day, 1, 50), _at(day, 3, 20))]
    if kind == "ml_5xx":
        return [Fault(kind, _at(day, 2), _at(day, 3))]
    if kind == "clock_jump":
        return [Fault(kind, _at(day, 1, 55), _at(day, 4, 5))]
    raise ValueError(kind)


def parse_kinds(text: str) -> list[str]:
    """`all`, `none` or a comma list of kinds (and the broken setup, for the oracle's test)."""
    if text == "all":
        return list(KINDS)
    if text == "none":
        return []
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS and k != BROKEN]
    if unknown:
        raise ValueError(f"unknown fault kind(s): {', '.join(unknown)} (known: {', '.join(KINDS)})")
    return kinds


def draw(
    seed: int, first_day: date, days: int, kinds: list[str], tenants: list[str]
) -> list[Fault]:
    """The schedule for mornings first_day+1 .. first_day+days (the sim starts on first_day)."""
    rng = random.Random(seed)
    mornings = [first_day + timedelta(days=k) for k in range(1, days + 1)]
    night = [k for k in kinds if k in NIGHT_KINDS or k == BROKEN]
    # Spread: the night kinds in a seeded order over the nights, repeating when the run is
    # long enough for more than one round; a short run takes the first ones.
    order = night[:]
    rng.shuffle(order)
    faults: list[Fault] = []
    if order:
        rounds = max(1, len(mornings) // max(len(order), 1))
        slots = rng.sample(range(len(mornings)), min(len(mornings), len(order) * rounds))
        for n, slot in enumerate(sorted(slots)):
            faults += _night(order[n % len(order)], mornings[slot], rng)
    if "token_revoke" in kinds and len(tenants) > 1:
        who = rng.choice(tenants[1:])  # never the large one: its absence would hide misses
        faults.append(Fault("token_revoke", _at(first_day, rng.randint(9, 20)), None, who))
    if "db_outage" in kinds and days >= 2:  # and one in the day, while tenants sync by heal
        start = _at(mornings[rng.randrange(len(mornings) - 1)], rng.randint(10, 18), 10)
        faults.append(Fault("db_outage", start, start + timedelta(minutes=30)))
    if "slow_disk" in kinds:  # drawn last: the schedules drawn before it stay the same
        taken = {f.end.date() for f in faults if f.kind in night}
        free = [d for d in mornings if d not in taken] or mornings
        day = rng.choice(free)
        faults.append(Fault("slow_disk", _at(day, 1, 58), _at(day, 3, 30)))
    return sorted(
        (f if f.end else Fault(f.kind, f.start, f.start, f.tenant) for f in faults),
        key=lambda f: f.start,
    )
