"""Creating users and checking passwords (argon2)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from superseller.db.schema import user_sessions, users
from superseller.errors import UserFacingError
from superseller.limits import EMAIL_MAX_LEN, PASSWORD_MAX_LEN, check_len
from superseller.tenants import get_tenant

ROLES = ("admin", "seller")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verifying against this when the email is unknown keeps both paths equally slow.
    (Made on first use: an argon2 hash costs ~0.1 s, too much for every CLI start.)"""
    return _hasher.hash("not-a-real-password")


class UserError(UserFacingError):
    """Bad user input, shown as is."""


class InvalidUserInput(UserError):
    """Input no database content could make valid (a malformed email, a password too short,
    a seller without a tenant, an admin with one): the command line exits 2, not 1."""


@dataclass(frozen=True)
class User:
    id: int
    email: str
    role: str
    tenant_id: str | None


def check_new_user(email: str, role: str, tenant_id: str | None = None) -> str:
    """The shape of a new user, before anything is read or asked for; the normalized email.

    Raises InvalidUserInput (or LimitError for a value over its bound)."""
    email = normalize_email(email)
    check_len(email, EMAIL_MAX_LEN, "the email address")
    if not _EMAIL.match(email):
        raise InvalidUserInput(f"not an email address: {email!r}")
    check_role(role, tenant_id)
    return email


def check_role(role: str, tenant_id: str | None) -> None:
    """A seller belongs to exactly one tenant; an admin sees every tenant, so has none."""
    if role not in ROLES:
        raise InvalidUserInput(f"role must be one of {', '.join(ROLES)}")
    if role == "seller" and not tenant_id:
        raise InvalidUserInput("a seller belongs to a tenant: give --tenant")
    if role == "admin" and tenant_id:
        raise InvalidUserInput("an admin has no tenant; leave --tenant out")


def check_can_create(engine: Engine, email: str, role: str, tenant_id: str | None = None) -> None:
    """Everything create_user checks except the password, without writing: so the command
    line can refuse before asking for a password. (create_user checks it all again.)"""
    tenant_id = tenant_id or None
    email = check_new_user(email, role, tenant_id)
    if tenant_id:
        get_tenant(engine, tenant_id)
    with engine.connect() as conn:
        if conn.execute(select(users.c.id).where(users.c.email == email)).first():
            raise UserError(f"a user with email {email} already exists")


def create_user(
    engine: Engine, email: str, password: str, role: str, tenant_id: str | None = None
) -> User:
    tenant_id = tenant_id or None  # "" is no tenant, not one named ""
    email = check_new_user(email, role, tenant_id)
    check_password(password)
    if tenant_id:
        get_tenant(engine, tenant_id)
    try:
        with engine.begin() as conn:
            uid = conn.execute(
                insert(users)
                .values(
                    email=email,
                    password_hash=_hasher.hash(password),
                    role=role,
                    tenant_id=tenant_id,
                    created_at=datetime.now(UTC),
                )
                .returning(users.c.id)
            ).scalar()
    except IntegrityError:
        raise UserError(f"a user with email {email} already exists") from None
    return User(uid, email, role, tenant_id)


def normalize_email(email: str) -> str:
    """The one spelling of an email the lookup, the login limiter and creation use."""
    return email.strip().lower()


def authenticate(engine: Engine, email: str, password: str) -> User | None:
    """The user, if the password is right and the user is not disabled."""
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.email == normalize_email(email))).first()
    try:
        _hasher.verify(row.password_hash if row else _dummy_hash(), password)
    except (VerifyMismatchError, InvalidHashError):
        return None
    if row is None or row.disabled_at is not None:
        return None
    return User(row.id, row.email, row.role, row.tenant_id)


def get_user(engine: Engine, user_id: int) -> User | None:
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.id == user_id)).first()
    return User(row.id, row.email, row.role, row.tenant_id) if row else None


def check_password(password: str) -> None:
    """A password's own rules (InvalidUserInput), checked before it is hashed."""
    check_len(password, PASSWORD_MAX_LEN, "the password")
    if len(password) < 8:
        raise InvalidUserInput("password must have at least 8 characters")
    if len(password) > 200:
        raise InvalidUserInput("password must have at most 200 characters")


def _end_sessions(conn: Connection, user_id: int) -> int:
    return conn.execute(delete(user_sessions).where(user_sessions.c.user_id == user_id)).rowcount


def find_user(engine: Engine, email: str) -> User:
    """The user with this email, or UserError (not found): checked before asking anything."""
    with engine.connect() as conn:
        row = _by_email(conn, email)
    return User(row.id, row.email, row.role, row.tenant_id)


def _by_email(conn: Connection, email: str):
    row = conn.execute(select(users).where(users.c.email == normalize_email(email))).first()
    if row is None:
        raise UserError(f"no user with email {normalize_email(email)}")
    return row


def list_users(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                users.c.id,
                users.c.email,
                users.c.role,
                users.c.tenant_id,
                users.c.created_at,
                users.c.disabled_at,
            ).order_by(users.c.id)
        ).all()
        counts = dict(
            conn.execute(
                select(user_sessions.c.user_id, func.count())
                .where(user_sessions.c.expires_at > datetime.now(UTC))
                .group_by(user_sessions.c.user_id)
            ).all()
        )
    return [{**r._asdict(), "sessions": counts.get(r.id, 0)} for r in rows]


def revoke_sessions(engine: Engine, email: str) -> int:
    """End every session of the user: their tokens stop working at once."""
    with engine.begin() as conn:
        return _end_sessions(conn, _by_email(conn, email).id)


def set_password(engine: Engine, email: str, password: str) -> None:
    """A new password; every session of the user ends."""
    check_password(password)
    with engine.begin() as conn:
        row = _by_email(conn, email)
        conn.execute(
            update(users).where(users.c.id == row.id).values(password_hash=_hasher.hash(password))
        )
        _end_sessions(conn, row.id)


def set_role(engine: Engine, email: str, role: str, tenant_id: str | None = None) -> None:
    """A new role (a seller needs a tenant, an admin has none); every session of the user
    ends."""
    tenant_id = tenant_id or None
    check_role(role, tenant_id)
    if tenant_id:
        get_tenant(engine, tenant_id)
    with engine.begin() as conn:
        row = _by_email(conn, email)
        conn.execute(
            update(users).where(users.c.id == row.id).values(role=role, tenant_id=tenant_id)
        )
        _end_sessions(conn, row.id)


def set_disabled(engine: Engine, email: str, disabled: bool = True) -> None:
    """A disabled user cannot log in and their sessions end; enabling lets them log in."""
    with engine.begin() as conn:
        row = _by_email(conn, email)
        conn.execute(
            update(users)
            .where(users.c.id == row.id)
            .values(disabled_at=datetime.now(UTC) if disabled else None)
        )
        _end_sessions(conn, row.id)


def delete_user(engine: Engine, email: str) -> None:
    """Delete the user and (by cascade, and explicitly) their sessions."""
    with engine.begin() as conn:
        row = _by_email(conn, email)
        _end_sessions(conn, row.id)
        conn.execute(delete(users).where(users.c.id == row.id))
