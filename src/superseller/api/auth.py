"""Login, logout, and who is asking: a JWT in `Authorization: Bearer` or the HttpOnly cookie.

A token is accepted only while its session exists (users/sessions.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from superseller.api.models import LoggedIn
from superseller.http.deps import Svc, services
from superseller.http.errors import ApiError
from superseller.http.sessions import (  # noqa: F401 - the API's guards, imported from here
    SESSION_COOKIE,
    AdminUser,
    CurrentUser,
    current_user,
    end_session,
    request_token,
    require_admin,
    session_claims,
    set_session_cookie,
    user_of_token,
)
from superseller.users import sessions, tokens
from superseller.users.accounts import authenticate, normalize_email
from superseller.users.ratelimit import LoginLimiter

COOKIE = SESSION_COOKIE
router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class Login(BaseModel):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=200)


def limiter(request: Request) -> LoginLimiter:
    app = request.app
    if not hasattr(app.state, "login_limiter"):
        svc = services(request)
        app.state.login_limiter = LoginLimiter(svc.engine, svc.settings.login_attempts_per_minute)
    return app.state.login_limiter


@router.post("/login", response_model=LoggedIn)
def login(body: Login, request: Request, response: Response, svc: Svc):
    client = request.client.host if request.client else "?"
    keys = [f"email:{normalize_email(body.email)}", f"ip:{client}"]
    now = svc.clock.now()
    if not limiter(request).attempt(keys, now):
        raise ApiError(429, "too_many_attempts", "too many login attempts; wait a minute")
    user = authenticate(svc.engine, body.email, body.password)
    if user is None:
        raise ApiError(401, "invalid_credentials", "wrong email or password")
    limiter(request).succeeded(keys)
    sid = sessions.start(svc.engine, user, now, svc.settings.jwt_ttl_h)
    token = tokens.issue(user.id, sid, svc.settings.signing_key(), now, svc.settings.jwt_ttl_h)
    set_session_cookie(request, response, token)
    return {
        "token": token,
        "user": {"email": user.email, "role": user.role, "tenantId": user.tenant_id},
    }


@router.post("/logout", status_code=204)
def logout(request: Request) -> Response:
    """End this session: the token (bearer or cookie) stops working at once."""
    out = Response(status_code=204)
    end_session(request, out)
    return out
