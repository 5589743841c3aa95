"""Creating users and checking passwords (argon2)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from superseller.db.schema import users
from superseller.jobs.errors import JobError
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


class UserError(JobError):
    """Bad user input, shown as is."""


@dataclass(frozen=True)
class User:
    id: int
    email: str
    role: str
    tenant_id: str | None


def create_user(
    engine: Engine, email: str, password: str, role: str, tenant_id: str | None = None
) -> User:
    email = email.strip().lower()
    check_len(email, EMAIL_MAX_LEN, "the email address")
    check_len(password, PASSWORD_MAX_LEN, "the password")
    if not _EMAIL.match(email):
        raise UserError(f"not an email address: {email!r}")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < 8:
        raise UserError("password must have at least 8 characters")
    if role == "seller":
        if not tenant_id:
            raise UserError("a seller belongs to a tenant: give --tenant")
        get_tenant(engine, tenant_id)
    try:
        with engine.begin() as conn:
            uid = conn.execute(
                insert(users)
                .values(
                    email=email,
                    password_hash=_hasher.hash(password),
                    role=role,
                    tenant_id=tenant_id if role == "seller" else tenant_id,
                    created_at=datetime.now(UTC),
                )
                .returning(users.c.id)
            ).scalar()
    except IntegrityError:
        raise UserError(f"a user with email {email} already exists") from None
    return User(uid, email, role, tenant_id)


def authenticate(engine: Engine, email: str, password: str) -> User | None:
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.email == email.strip().lower())).first()
    try:
        _hasher.verify(row.password_hash if row else _dummy_hash(), password)
    except (VerifyMismatchError, InvalidHashError):
        return None
    return User(row.id, row.email, row.role, row.tenant_id) if row else None


def get_user(engine: Engine, user_id: int) -> User | None:
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.id == user_id)).first()
    return User(row.id, row.email, row.role, row.tenant_id) if row else None
