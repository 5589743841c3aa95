"""People who log in: admins (operators) and sellers (one tenant each)."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, String, Table

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
)
