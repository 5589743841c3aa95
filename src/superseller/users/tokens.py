"""Login tokens: signed JWTs (PyJWT, HS256) carrying the user id."""

from __future__ import annotations

from datetime import datetime, timedelta

import jwt

ALGORITHM = "HS256"


def issue(user_id: int, key: bytes, now: datetime, ttl_h: float) -> str:
    return jwt.encode(
        {"sub": str(user_id), "iat": now, "exp": now + timedelta(hours=ttl_h)},
        key,
        algorithm=ALGORITHM,
    )


def read(token: str, key: bytes) -> int | None:
    """The user id, or None for any invalid, expired or tampered token."""
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], options={"require": ["exp"]})
        return int(claims["sub"])
    except (jwt.PyJWTError, KeyError, ValueError):
        return None
