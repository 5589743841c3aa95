"""Login, and who is asking: a JWT in `Authorization: Bearer` or the HttpOnly cookie."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from superseller.api.deps import services
from superseller.api.errors import ApiError
from superseller.users import tokens
from superseller.users.accounts import User, authenticate, get_user
from superseller.users.ratelimit import LoginLimiter

COOKIE = "superseller_session"
router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class Login(BaseModel):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=200)


def limiter(request: Request) -> LoginLimiter:
    app = request.app
    if not hasattr(app.state, "login_limiter"):
        app.state.login_limiter = LoginLimiter(services(request).settings.login_attempts_per_minute)
    return app.state.login_limiter


@router.post("/login")
def login(body: Login, request: Request, response: Response):
    svc = services(request)
    client = request.client.host if request.client else "?"
    if not limiter(request).allow(f"email:{body.email.lower()}", f"ip:{client}"):
        raise ApiError(429, "too_many_attempts", "too many login attempts; wait a minute")
    user = authenticate(svc.engine, body.email, body.password)
    if user is None:
        raise ApiError(401, "invalid_credentials", "wrong email or password")
    token = tokens.issue(
        user.id, svc.settings.signing_key(), svc.clock.now(), svc.settings.jwt_ttl_h
    )
    response.set_cookie(
        COOKIE, token, httponly=True, samesite="lax", max_age=int(svc.settings.jwt_ttl_h * 3600)
    )
    return {
        "token": token,
        "user": {"email": user.email, "role": user.role, "tenantId": user.tenant_id},
    }


def current_user(request: Request) -> User:
    svc = services(request)
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(COOKIE)
    uid = tokens.read(token, svc.settings.signing_key()) if token else None
    user = get_user(svc.engine, uid) if uid is not None else None
    if user is None:
        raise ApiError(401, "unauthenticated", "log in first")
    return user


def require_admin(request: Request) -> User:
    user = current_user(request)
    if user.role != "admin":
        raise ApiError(403, "forbidden", "administrators only")
    return user
