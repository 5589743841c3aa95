"""Migrations create exactly the schema the code expects; `db check` notices gaps."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from superseller.db import migrate
from superseller.db.engine import make_engine
from superseller.db.schema import metadata


def test_upgrade_matches_schema_and_downgrade_removes_it(empty_db_url):
    eng = make_engine(empty_db_url)
    assert migrate.check(eng).missing_tables  # nothing yet
    migrate.upgrade(eng)
    report = migrate.check(eng)
    assert report.ok, report
    with eng.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diffs == []
    migrate.downgrade(eng, "base")
    assert set(migrate.check(eng).missing_tables) == {t.name for t in metadata.sorted_tables}
    migrate.upgrade(eng)
    assert migrate.check(eng).ok
    eng.dispose()


def test_check_lists_a_missing_index(engine):
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX uq_jobs_lock_key_running")
    report = migrate.check(engine)
    assert report.missing_indexes == ["jobs.uq_jobs_lock_key_running"]
    assert not report.ok
