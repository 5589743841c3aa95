"""The `superseller` CLI: db and jobs commands, and one-line errors for bad input."""

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from superseller.db import migrate
from superseller.db.engine import make_engine
from superseller.db.schema import jobs
from superseller.jobs import audit
from tests.support import marketplace as mk
from tests.support.cli import cli


def test_db_upgrade_check_current_downgrade(empty_db_url):
    assert cli(empty_db_url, "db", "check").returncode == 1
    cli(empty_db_url, "db", "upgrade", check=True)
    out = cli(empty_db_url, "db", "check", check=True).stdout
    assert "ok: all tables and indexes present" in out
    head = migrate.head()
    assert f"current: {head}  head: {head}" in cli(empty_db_url, "db", "current", check=True).stdout
    bad = cli(empty_db_url, "db", "downgrade", "nope")
    assert bad.returncode == 2 and "unknown revision 'nope'" in bad.stderr
    cli(empty_db_url, "db", "downgrade", "base", check=True)
    check = cli(empty_db_url, "db", "check")
    assert check.returncode == 1 and "missing table: jobs" in check.stdout


def test_schedules_through_the_cli(db_url):
    cli(db_url, "db", "upgrade", check=True)
    out = cli(
        db_url,
        "schedules",
        "create",
        "nightly",
        "--type",
        "cleanup",
        "--cron",
        "cron(0 6 * * ? *)",
        "--timezone",
        "UTC",
        check=True,
    ).stdout
    assert "created nightly" in out
    listed = json.loads(cli(db_url, "schedules", "list", "--json", check=True).stdout)
    nightly = next(s for s in listed if s["name"] == "nightly")
    assert nightly["cron"] == "0 6 * * *" and nightly["enabled"]
    assert "enqueued job" in cli(db_url, "schedules", "run-now", "nightly", check=True).stdout
    ledger = json.loads(
        cli(db_url, "schedules", "occurrences", "nightly", "--json", check=True).stdout
    )
    assert ledger[0]["outcome"] == "enqueued" and ledger[0]["reason"] == "run now"
    cli(db_url, "schedules", "disable", "nightly", check=True)
    assert not json.loads(cli(db_url, "schedules", "show", "nightly", check=True).stdout)["enabled"]
    out = cli(
        db_url,
        "schedules",
        "backfill",
        "nightly",
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-03",
        "--mode",
        "all",
        check=True,
    ).stdout
    assert "backfilled 3 tick(s)" in out
    before = cli(db_url, "schedules", "occurrences", "nightly", "--json", check=True).stdout
    # A tick enqueues nothing for the disabled schedule (a default schedule may come due
    # meanwhile, e.g. at the turn of an hour: only nightly's ledger is this test's).
    cli(db_url, "scheduler", "--once", check=True)
    after = cli(db_url, "schedules", "occurrences", "nightly", "--json", check=True).stdout
    assert json.loads(after) == json.loads(before)
    eng = make_engine(db_url)
    trail = [(e["actor"], e["action"], e["target_id"]) for e in audit.entries(eng)]
    eng.dispose()
    me = audit.cli_actor()  # `cli:<OS user>`: the CLI runs as this test's user
    assert trail == [
        (me, "schedule.backfill", "nightly"),
        (me, "schedule.update", "nightly"),
        (me, "schedule.run_now", "nightly"),
    ]


def test_jobs_lifecycle_through_the_cli(db_url):
    out = cli(
        db_url, "jobs", "enqueue", "cleanup", "--payload", '{"batchSize": 10}', check=True
    ).stdout
    job_id = int(out.split()[-1])
    unique = ("jobs", "enqueue", "cleanup", "--unique-key", "u")
    first = cli(db_url, *unique, check=True).stdout
    assert first.startswith("enqueued job ")
    unique_id = int(first.split()[-1])
    assert unique_id != job_id
    again = cli(db_url, *unique, check=True).stdout
    assert again.strip() == f"already queued as job {unique_id}"
    listed = json.loads(cli(db_url, "jobs", "list", "--json", check=True).stdout)
    assert job_id in [j["id"] for j in listed]
    assert cli(db_url, "worker", "--burst").returncode == 0
    shown = json.loads(cli(db_url, "jobs", "show", str(job_id), check=True).stdout)
    assert shown["job"]["status"] == "completed"
    assert shown["logs"][0]["status"] == "success"
    stats = json.loads(cli(db_url, "jobs", "stats", "--json", check=True).stdout)
    assert stats["byState"]["completed"] >= 1 and stats["byState"]["pending"] == 0
    bad = cli(db_url, "jobs", "retry", str(job_id))
    assert bad.returncode == 1 and "only failed or cancelled jobs retry" in bad.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["jobs", "enqueue", "nope"], 2, "unknown job type 'nope'"),
        (["jobs", "enqueue", "cleanup", "--payload", "{x"], 2, "payload is not valid JSON"),
        (["jobs", "enqueue", "cleanup", "--payload", "[1]"], 2, "must be a JSON object"),
        (["jobs", "enqueue", "cleanup", "--payload", '{"batchSize": -1}'], 2, "batchSize"),
        (["jobs", "show", "999999"], 1, "job 999999 not found"),
        (["jobs", "show", "abc"], 2, "Invalid value"),
        (["jobs", "cancel", "999999"], 1, "job 999999 not found"),
        (["jobs", "list", "--state", "bogus"], 2, "unknown state 'bogus'"),
        (["jobs", "list", "--type", "sync_mercadolibre"], 2, "unknown job type 'sync_mercado"),
        (["worker", "--concurrency", "0"], 2, "Invalid value"),
        (
            ["schedules", "create", "x", "--type", "cleanup", "--cron", "0 99 * * *"],
            2,
            "invalid cron expression",
        ),
        (
            [
                "schedules",
                "create",
                "x",
                "--type",
                "cleanup",
                "--cron",
                "0 3 * * *",
                "--timezone",
                "Mars/Base",
            ],
            2,
            "unknown time zone",
        ),
        (["schedules", "show", "nope"], 1, "schedule 'nope' not found"),
        (
            [
                "schedules",
                "backfill",
                "daily-cleanup",
                "--from",
                "2026-13-01",
                "--to",
                "2026-01-02",
            ],
            2,
            "--from must be a date",
        ),
        (["schedules", "update", "daily-cleanup"], 2, "nothing to change"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code(db_url, args, code, message):
    proc = cli(db_url, *args)
    assert proc.returncode == code
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_a_retired_job_type_still_lists_its_jobs(db_url):
    """`jobs list --type` refuses a type nobody registered only when no job of it exists: the
    jobs of a type a release retired stay listable."""
    cli(db_url, "db", "upgrade", check=True)
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            now = datetime.now(UTC)
            row = {"type": "retired_type", "payload": {}, "status": "completed"}
            conn.execute(insert(jobs).values(**row, run_at=now, created_at=now))
    finally:
        engine.dispose()
    listed = json.loads(cli(db_url, "jobs", "list", "--type", "retired_type", "--json").stdout)
    assert [j["type"] for j in listed] == ["retired_type"]
    # Other filters that leave nothing, or the page after the last: empty, not "unknown".
    for more in (("--state", "failed"), ("--before", str(listed[0]["id"])), ("--tenant", "t9")):
        empty = cli(db_url, "jobs", "list", "--type", "retired_type", *more, "--json")
        assert empty.returncode == 0 and json.loads(empty.stdout) == [], (more, empty.stderr)


def test_unreachable_database_is_a_clear_error(tmp_path):
    proc = cli("postgresql://nobody@127.0.0.1:1/none", "jobs", "list")
    assert proc.returncode == 1 and "database error" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_rebuild_and_freshness_commands(db_url):
    cli(db_url, "db", "upgrade", check=True)
    cli(db_url, "tenants", "create", "Loja", "--id", "t1", check=True)
    out = cli(
        db_url,
        "rebuild",
        "--tenant",
        "t1",
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-03",
        check=True,
    ).stdout
    assert json.loads(out)["daysProcessed"] == 3
    bad = cli(db_url, "rebuild", "--tenant", "t1", "--from", "2026-01-05", "--to", "2026-01-01")
    assert bad.returncode == 2 and "is after" in bad.stderr  # refused at input
    ghost = cli(db_url, "rebuild", "--tenant", "nope")
    assert ghost.returncode == 1 and "tenant 'nope' not found" in ghost.stderr
    # Never connected: reported as such, not alarmed on (no job could heal it).
    unconnected = cli(db_url, "freshness", "--json")
    assert unconnected.returncode == 0, unconnected.stderr
    assert json.loads(unconnected.stdout)[0]["status"] == "not_connected"
    assert "not_connected" in cli(db_url, "freshness", check=True).stdout
    engine = make_engine(db_url)
    try:
        mk.account(engine, "t1")
    finally:
        engine.dispose()
    stale = cli(db_url, "freshness", "--json")
    assert stale.returncode == 1  # connected, never synced: monitoring sees a non-zero exit
    assert json.loads(stale.stdout)[0]["status"] == "stale"
    assert json.loads(stale.stdout)[0]["reasons"][0]["code"] == "never_synced"


def test_a_schedule_without_timezone_gets_the_timezone_setting(db_url):
    create = ("schedules", "create", "--type", "cleanup", "--cron", "0 6 * * *")
    cli(db_url, *create[:2], "here", *create[2:], check=True)
    cli(db_url, *create[:2], "there", *create[2:], env={"TIMEZONE": "Europe/Lisbon"}, check=True)
    zones = {
        name: json.loads(cli(db_url, "schedules", "show", name, check=True).stdout)["timezone"]
        for name in ("here", "there")
    }
    assert zones == {"here": "America/Sao_Paulo", "there": "Europe/Lisbon"}


def test_pausing_a_queue_nothing_uses_warns(db_url):
    """`jobs pause --queue` with a typo still pauses (a queue may be paused before its job
    type is deployed) but says, on one stderr line, that nothing uses it and which queues
    are known; a queue a job type uses, or one a job is on, pauses without a word."""
    typo = cli(db_url, "jobs", "pause", "--queue", "defualt")
    assert typo.returncode == 0, typo.stderr
    assert typo.stdout.strip() == "queue defualt paused"
    [warning] = typo.stderr.strip().splitlines()
    assert warning == (
        "warning: no job type uses queue 'defualt' and no job is on it (a typo?); "
        "known queues: cli, default"
    )
    stats = json.loads(cli(db_url, "jobs", "stats", "--json", check=True).stdout)
    assert [q["queue"] for q in stats["engine"]["pausedQueues"]] == ["defualt"]

    used = cli(db_url, "jobs", "pause", "--queue", "default", check=True)
    assert used.stdout.strip() == "queue default paused" and used.stderr == ""
    cli(db_url, "jobs", "enqueue", "cleanup", "--queue", "bulk", check=True)
    for queue in ("bulk", "cli"):  # a job is on it; the commands' own queue
        quiet = cli(db_url, "jobs", "pause", "--queue", queue, check=True)
        assert quiet.stdout.strip() == f"queue {queue} paused" and quiet.stderr == ""
