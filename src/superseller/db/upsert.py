"""The one place that picks a database's INSERT ... ON CONFLICT construct.

Both supported databases spell "insert, or on conflict do nothing / update" the same way
in SQLAlchemy, but through their own dialect's `insert()`. Features call
`insert_on_conflict(bind, table)` and never look at the dialect themselves.

(Row locks need no helper: `select(...).with_for_update()` compiles to nothing on SQLite,
whose write transaction — `BEGIN IMMEDIATE`, see `db/engine.py` — already serialises.)
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_on_conflict(bind: Engine | Connection, table: Table):
    """`insert(table)` of the bind's dialect: it has `on_conflict_do_nothing()`,
    `on_conflict_do_update()` and `.excluded`."""
    dialect = postgresql if bind.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)
