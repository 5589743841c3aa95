"""Server-side sessions: one row per login token, so that a token can be revoked.

Logout ends one session; a password, role or state change of a user, or
`superseller users revoke-sessions`, ends all of theirs (users/accounts.py); deleting a user
deletes them (ON DELETE CASCADE). User ids are never reused, and a session belongs to one user id.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, select

from superseller.db.schema import user_sessions, users
from superseller.users.accounts import User


def start(engine: Engine, user: User, now: datetime, ttl_h: float) -> str:
    """A new session for the user; returns its id (the token's jti). Expired rows go."""
    sid = secrets.token_urlsafe(24)
    with engine.begin() as conn:
        conn.execute(delete(user_sessions).where(user_sessions.c.expires_at <= now))
        conn.execute(
            insert(user_sessions).values(
                id=sid, user_id=user.id, created_at=now, expires_at=now + timedelta(hours=ttl_h)
            )
        )
    return sid


def user_of(engine: Engine, user_id: int, session_id: str, now: datetime) -> User | None:
    """The user of a live session, if it is this user's and the user is not disabled."""
    with engine.connect() as conn:
        row = conn.execute(
            select(users.c.id, users.c.email, users.c.role, users.c.tenant_id)
            .join(user_sessions, user_sessions.c.user_id == users.c.id)
            .where(
                user_sessions.c.id == session_id,
                users.c.id == user_id,
                user_sessions.c.expires_at > now,
                users.c.disabled_at.is_(None),
            )
        ).first()
    return User(row.id, row.email, row.role, row.tenant_id) if row else None


def end(engine: Engine, session_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(user_sessions).where(user_sessions.c.id == session_id))
