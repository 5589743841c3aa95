"""People who log in (admins and sellers), their sessions, and the login hygiene tables:
failed logins per key (shared by every API process) and used OAuth states."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, String, Table

from superseller.db.tables_base import BigId, metadata
from superseller.db.types import UTCDateTime

users = Table(
    "users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),  # argon2
    Column("role", String(10), nullable=False),  # admin | seller
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime, nullable=True),  # set: cannot log in, no sessions
    # SQLite: AUTOINCREMENT, so that a deleted user's id is never given to another user
    # (PostgreSQL's sequence never reuses a value).
    sqlite_autoincrement=True,
)

# One row per login token (its `jti`). A token is accepted only while its row exists:
# logout deletes it; a password, role or state change of the user deletes all of them.
user_sessions = Table(
    "user_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # the token's jti
    Column(
        "user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)

# Failed logins per key (a hash of the normalized email, or of the client address) in the
# current window. Rows older than the window are deleted as new failures come in.
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(64), primary_key=True),  # sha256 hex
    Column("window_start", UTCDateTime, nullable=False, index=True),
    Column("failures", Integer, nullable=False),
)

# OAuth `state` nonces already used, remembered until the state would have expired anyway.
oauth_states_used = Table(
    "oauth_states_used",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)
