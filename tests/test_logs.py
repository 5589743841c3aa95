"""Logs: one JSON object per line with the job's fields, and secrets never written."""

import json
import logging

import pytest

from superseller.config import Settings
from superseller.jobs.queue import Queue
from superseller.logs import JsonFormatter, redact
from superseller.wiring import build_registry
from tests.support.cli import cli


@pytest.mark.parametrize(
    "text, secret",
    [
        ("GET /x?access_token=APP_USR-123-abc&limit=50", "APP_USR-123-abc"),
        ('{"refresh_token": "TG-5f3a", "user_id": 1}', "TG-5f3a"),
        ("headers={'Authorization': 'Bearer APP_USR-999'}", "APP_USR-999"),
        ("X-Internal-Key: k3y-very-secret", "k3y-very-secret"),
        ("client_secret=sandbox-secret&grant_type=refresh_token", "sandbox-secret"),
        ("login failed password=hunter22", "hunter22"),
    ],
)
def test_secrets_are_redacted(text, secret):
    out = redact(text)
    assert secret not in out and "[REDACTED]" in out


def test_json_lines_carry_the_job_fields_and_no_secret():
    record = logging.LogRecord(
        "superseller.jobs.runs",
        logging.WARNING,
        __file__,
        1,
        "job %s failed: token=%s",
        (7, "APP_USR-1"),
        None,
    )
    record.job_id, record.job_type, record.attempt, record.duration_ms = 7, "sync", 2, 15
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "warning" and line["job_id"] == 7 and line["attempt"] == 2
    assert line["duration_ms"] == 15 and "APP_USR-1" not in line["message"]


def test_a_worker_writes_one_json_line_per_run(db_url, engine, tmp_path):
    job_id = Queue(engine, build_registry(Settings(data_dir=tmp_path))).enqueue("cleanup").id
    proc = cli(db_url, "worker", "--burst", check=True, env={"LOG_FORMAT": "json"})
    lines = [json.loads(x) for x in proc.stderr.splitlines() if x.startswith("{")]
    runs = [x for x in lines if x.get("job_id") == job_id]
    assert len(runs) == 1, proc.stderr
    run = runs[0]
    assert (run["job_type"], run["status"], run["attempt"]) == ("cleanup", "success", 1)
    assert isinstance(run["duration_ms"], int) and run["logger"] == "superseller.jobs.runs"
    assert all(set(x) >= {"ts", "level", "logger", "message"} for x in lines)
