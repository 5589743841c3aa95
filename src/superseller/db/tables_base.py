"""Shared pieces of the schema: the metadata, naming convention and id type."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, MetaData, text

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias).
BigId = BigInteger().with_variant(Integer(), "sqlite")


def partial(sql: str) -> dict:
    """A partial-index predicate, the same text for both dialects."""
    return {"sqlite_where": text(sql), "postgresql_where": text(sql)}
