"""Migrations create exactly the schema the code expects; `db check` notices gaps."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

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


def test_0015_gives_each_job_type_one_name_and_back(empty_db_url):
    """Rows written under a former job type name (jobs and schedules: the rebuild's,
    job_logs and counters: the sync's) carry the one name after the upgrade."""
    eng = make_engine(empty_db_url)
    migrate.upgrade(eng, "0009")
    at = "2026-01-01 00:00:00"
    with eng.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO jobs (type, queue, payload, status, priority, run_at, attempts,"
                " max_attempts, cancel_requested, created_at) VALUES ('rebuild_daily_metrics',"
                " 'default', '{}', 'pending', 0, :at, 0, 3, false, :at)"
            ),
            {"at": at},
        )
        conn.execute(
            text(
                "INSERT INTO job_schedules (name, job_type, payload, cron, timezone, enabled,"
                " misfire_policy, misfire_grace_s, misfire_window_s, overlap_policy, created_at,"
                " updated_at) VALUES ('r', 'rebuild_daily_metrics', '{}', '0 3 * * *',"
                " 'America/Sao_Paulo', true, 'latest', 300, 604800, 'skip', :at, :at)"
            ),
            {"at": at},
        )
        conn.execute(
            text(
                "INSERT INTO job_logs (job_id, job_type, status, attempt, started_at,"
                " completed_at, duration_ms, records_processed) VALUES"
                " (1, 'mercadolivre_sync', 'success', 1, :at, :at, 5, 0)"
            ),
            {"at": at},
        )

    def names():
        with eng.connect() as conn:
            return [
                conn.execute(text(sql)).scalar_one()
                for sql in (
                    "SELECT type FROM jobs",
                    "SELECT job_type FROM job_schedules",
                    "SELECT job_type FROM job_logs",
                )
            ]

    migrate.upgrade(eng)
    assert names() == ["metrics_aggregation", "metrics_aggregation", "sync_mercadolivre"]
    migrate.downgrade(eng, "0009")
    assert names() == ["rebuild_daily_metrics", "rebuild_daily_metrics", "mercadolivre_sync"]
    eng.dispose()
