"""Who is asking: a JWT in `Authorization: Bearer` or the HttpOnly session cookie, accepted
only while its session exists (users/sessions.py); and the session's form (CSRF) token.

`CurrentUser` and `AdminUser` are the typed dependencies routes declare."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request, Response

from superseller.config import Settings
from superseller.http.deps import services
from superseller.http.errors import ApiError
from superseller.users import sessions, tokens
from superseller.users.accounts import User

SESSION_COOKIE = "superseller_session"


def csrf_token(settings: Settings, session_id: str) -> str:
    """The form token of a session: only pages served to its holder can know it."""
    key = settings.signing_key() + b":csrf"
    return hmac.new(key, session_id.encode(), hashlib.sha256).hexdigest()


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    settings = services(request).settings
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=settings.public_url.lower().startswith("https://"),
        max_age=int(settings.jwt_ttl_h * 3600),
    )


def request_token(request: Request, cookie_only: bool = False) -> str | None:
    header = request.headers.get("authorization", "")
    if not cookie_only and header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(SESSION_COOKIE)


def session_claims(request: Request, cookie_only: bool = False) -> tokens.Claims | None:
    token = request_token(request, cookie_only)
    return tokens.read(token, services(request).settings.signing_key()) if token else None


def user_of_token(request: Request, cookie_only: bool = False) -> User | None:
    svc = services(request)
    claims = session_claims(request, cookie_only)
    if claims is None:
        return None
    return sessions.user_of(svc.engine, claims.user_id, claims.session_id, svc.clock.now())


def current_user(request: Request) -> User:
    user = user_of_token(request)
    if user is None:
        raise ApiError(401, "unauthenticated", "log in first")
    return user


def require_admin(request: Request) -> User:
    user = current_user(request)
    if user.role != "admin":
        raise ApiError(403, "forbidden", "administrators only")
    return user


def end_session(request: Request, response: Response) -> None:
    """End the session of the token the request carries (if any) and drop the cookie."""
    claims = session_claims(request)
    if claims is not None:
        sessions.end(services(request).engine, claims.session_id)
    response.delete_cookie(SESSION_COOKIE)


CurrentUser = Annotated[User, Depends(current_user)]
AdminUser = Annotated[User, Depends(require_admin)]
