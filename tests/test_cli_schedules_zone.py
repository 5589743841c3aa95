"""`superseller schedules` shows each schedule's next run in that schedule's own time zone,
with its offset, as the seller reads the clock (the admin console shows São Paulo time too):
not the stored UTC instant. Machine output stays ISO-8601, the same instant in that zone.
On SQLite and PostgreSQL."""

import json
from datetime import datetime

from tests.support.cli import cli

WIDE = {"COLUMNS": "200"}  # one table row on one line


def _create(db_url, name, cron, tz):
    return cli(
        db_url,
        "schedules",
        "create",
        name,
        "--type",
        "cleanup",
        "--cron",
        cron,
        "--timezone",
        tz,
        check=True,
        env=WIDE,
    ).stdout


def test_schedules_show_the_next_run_in_their_own_zone(db_url):
    cli(db_url, "db", "upgrade", check=True)
    created = _create(db_url, "noite-sp", "15 19 * * *", "America/Sao_Paulo")
    assert "19:15 -03:00" in created, created
    _create(db_url, "noite-india", "0 21 * * *", "Asia/Kolkata")

    table = cli(db_url, "schedules", "list", check=True, env=WIDE).stdout
    sp = next(line for line in table.splitlines() if "noite-sp" in line)
    india = next(line for line in table.splitlines() if "noite-india" in line)
    assert " 19:15 -03:00" in sp and "+00:00" not in sp, sp
    assert " 21:00 +05:30" in india and "+00:00" not in india, india

    listed = json.loads(cli(db_url, "schedules", "list", "--json", check=True).stdout)
    by_name = {s["name"]: s for s in listed}
    sp_next = datetime.fromisoformat(by_name["noite-sp"]["next_run_at"])
    assert (sp_next.hour, sp_next.minute, sp_next.strftime("%z")) == (19, 15, "-0300")
    india_next = datetime.fromisoformat(by_name["noite-india"]["next_run_at"])
    assert (india_next.hour, india_next.minute, india_next.strftime("%z")) == (21, 0, "+0530")

    shown = json.loads(cli(db_url, "schedules", "show", "noite-sp", check=True).stdout)
    assert shown["next_run_at"] == by_name["noite-sp"]["next_run_at"]
