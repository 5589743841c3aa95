"""Run, inspect and verify Alembic migrations against a database URL."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from superseller.db.schema import metadata

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _not_context_chatter(record: logging.LogRecord) -> bool:
    msg = record.getMessage()
    return not (msg.startswith("Context impl ") or msg.startswith("Will assume "))


# Every look at the revision (each /readyz) makes Alembic log which dialect and DDL mode it
# assumes: two INFO lines that say nothing new. The migrations' own lines stay.
logging.getLogger("alembic.runtime.migration").addFilter(_not_context_chatter)


def _config(engine: Engine, connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as conn:
        command.upgrade(_config(engine, conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as conn:
        command.downgrade(_config(engine, conn), revision)


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str | None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


def known_revisions() -> set[str]:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return {s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions()}


@dataclass
class CheckReport:
    revision: str | None
    head: str | None
    missing_tables: list[str] = field(default_factory=list)
    missing_indexes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing_tables and not self.missing_indexes and self.revision == self.head


def check(engine: Engine) -> CheckReport:
    """Every table and index the schema expects, and whether the database has it."""
    insp = inspect(engine)
    report = CheckReport(revision=current(engine), head=head())
    present = set(insp.get_table_names())
    for table in metadata.sorted_tables:
        if table.name not in present:
            report.missing_tables.append(table.name)
            continue
        have = {ix["name"] for ix in insp.get_indexes(table.name)}
        have |= {uc["name"] for uc in insp.get_unique_constraints(table.name)}
        for index in table.indexes:
            if index.name not in have:
                report.missing_indexes.append(f"{table.name}.{index.name}")
    return report
