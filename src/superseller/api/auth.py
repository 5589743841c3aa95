"""Login, logout, and who is asking: a JWT in `Authorization: Bearer` or the HttpOnly cookie.

A token is accepted only while its session exists (users/sessions.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from superseller.api.deps import services
from superseller.api.errors import ApiError
from superseller.api.guards import SESSION_COOKIE
from superseller.users import sessions, tokens
from superseller.users.accounts import User, authenticate, normalize_email
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


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    settings = services(request).settings
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=settings.public_url.lower().startswith("https://"),
        max_age=int(settings.jwt_ttl_h * 3600),
    )


@router.post("/login")
def login(body: Login, request: Request, response: Response):
    svc = services(request)
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


def request_token(request: Request, cookie_only: bool = False) -> str | None:
    header = request.headers.get("authorization", "")
    if not cookie_only and header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE)


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
    response.delete_cookie(COOKIE)


@router.post("/logout", status_code=204)
def logout(request: Request) -> Response:
    """End this session: the token (bearer or cookie) stops working at once."""
    out = Response(status_code=204)
    end_session(request, out)
    return out
