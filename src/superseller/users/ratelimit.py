"""Failed logins per key (the normalized email, the client address) per window.

The counts live in the database (`login_failures`), so every API process sees the same
ones and memory holds nothing per key. An attempt is counted before the password is
checked (so parallel guesses cannot slip past the check) and taken back when it succeeds:
only failures count. Rows older than the window are deleted as new attempts come in.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import Engine, case, delete, update

from superseller.db.schema import login_failures
from superseller.db.upsert import insert_on_conflict


def _hashed(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class LoginLimiter:
    def __init__(self, engine: Engine, per_window: int, window_s: float = 60.0):
        self.engine = engine
        self.per_window = per_window
        self.window = timedelta(seconds=window_s)

    def attempt(self, keys: list[str], now: datetime) -> bool:
        """Count an attempt on every key; False if any key is over its limit this window."""
        cutoff = now - self.window
        allowed = True
        with self.engine.begin() as conn:
            conn.execute(delete(login_failures).where(login_failures.c.window_start <= cutoff))
            for key in keys:
                stmt = insert_on_conflict(conn, login_failures).values(
                    key=_hashed(key), window_start=now, failures=1
                )
                current = login_failures.c.window_start > cutoff
                stmt = stmt.on_conflict_do_update(
                    index_elements=[login_failures.c.key],
                    set_={
                        "failures": case(
                            (current, login_failures.c.failures + 1), else_=stmt.excluded.failures
                        ),
                        "window_start": case(
                            (current, login_failures.c.window_start),
                            else_=stmt.excluded.window_start,
                        ),
                    },
                ).returning(login_failures.c.failures)
                if conn.execute(stmt).scalar_one() > self.per_window:
                    allowed = False
        return allowed

    def succeeded(self, keys: list[str]) -> None:
        """The attempt was a successful login: it does not count."""
        with self.engine.begin() as conn:
            conn.execute(
                update(login_failures)
                .where(login_failures.c.key.in_([_hashed(k) for k in keys]))
                .values(failures=login_failures.c.failures - 1)
            )
