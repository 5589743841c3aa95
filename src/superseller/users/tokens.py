"""Login tokens: signed JWTs (PyJWT, HS256) carrying the user id and the session id (`jti`).

A valid signature is not enough: the session must still exist (users/sessions.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

ALGORITHM = "HS256"


@dataclass(frozen=True)
class Claims:
    user_id: int
    session_id: str


def issue(user_id: int, session_id: str, key: bytes, now: datetime, ttl_h: float) -> str:
    return jwt.encode(
        {
            "sub": str(user_id),
            "jti": session_id,
            "iat": now,
            "exp": now + timedelta(hours=ttl_h),
        },
        key,
        algorithm=ALGORITHM,
    )


def read(token: str, key: bytes) -> Claims | None:
    """The claims, or None for any invalid, expired, tampered or session-less token."""
    try:
        claims = jwt.decode(
            token, key, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "jti"]}
        )
        jti = claims["jti"]
        if not isinstance(jti, str) or not 0 < len(jti) <= 64:
            return None
        return Claims(int(claims["sub"]), jti)
    except (jwt.PyJWTError, KeyError, ValueError, TypeError):
        return None
