"""Bounds on every input, one set (superseller.limits) for the CLI and the API: a bad value
is one line and exit 2 on the CLI, a 4xx with the error body on the API, and nothing is
stored — on both databases."""

import contextlib
import json

import httpx
import pytest
from sqlalchemy import func, select

from superseller.config import Settings
from superseller.db.schema import engine_state, job_schedules, jobs, tenants, users
from superseller.jobs import InvalidPayload
from superseller.jobs.default_schedules import ensure_defaults
from superseller.jobs.queue import Queue
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import serving
from tests.support.cli import cli

PASSWORD = "correct horse battery"
KEY = "internal-test-key"


def stored(engine) -> dict[str, int]:
    """Row counts of every table an input could land in."""
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar()
            for t in (jobs, tenants, job_schedules, engine_state, users)
        }


LONG_TENANT = "x" * 100
BIG_PAYLOAD = json.dumps({"batchSize": 1, "pad": "x" * 120_000})

# (arguments, what the one line says). Each exits 2.
BAD_CLI_INPUT = [
    (["jobs", "enqueue", "cleanup", "--priority", "99999999999"], "less than or equal to 1000"),
    (["jobs", "enqueue", "cleanup", "--priority", "-1001"], "greater than or equal to -1000"),
    (["jobs", "enqueue", "cleanup", "--max-attempts", "99999999999"], "less than or equal to 100"),
    (["jobs", "enqueue", "cleanup", "--tenant", LONG_TENANT], "at most 64"),
    (["jobs", "enqueue", "cleanup", "--unique-key", "k" * 300], "at most 255"),
    (["jobs", "enqueue", "cleanup", "--queue", "q" * 300], "at most 100"),
    (["jobs", "enqueue", "cleanup", "--payload", BIG_PAYLOAD], "at most 65536"),
    (["jobs", "show", "99999999999999999999"], "Invalid value for 'ID'"),
    (["jobs", "cancel", "0"], "Invalid value for 'ID'"),
    (["jobs", "list", "--before", "99999999999999999999"], "Invalid value for '--before'"),
    (["rebuild", "--tenant", "t1", "--from", "9999-12-30", "--to", "9999-12-31"], "2100-12-31"),
    (["rebuild", "--tenant", "t1", "--from", "1900-01-01", "--to", "1900-01-02"], "2000-01-01"),
    (["rebuild", "--tenant", "t1", "--from", "2024-01-01", "--to", "2026-01-01"], "400"),
    (["rebuild", "--tenant", "t1", "--from", "2026-01-05"], "give both --from and --to"),
    (["tenants", "create", "Loja", "--id", LONG_TENANT], "at most 36"),
    (["tenants", "create", "N" * 300], "at most 200"),
    (["pause", "--reason", "r" * 600], "at most 500"),
    (
        [
            "users",
            "create",
            "--email",
            "a" * 250 + "@x.com",
            "--role",
            "admin",
            "--password",
            "p" * 9,
        ],
        "at most 254",
    ),
    (
        ["schedules", "backfill", "daily-cleanup", "--from", "2020-01-01", "--to", "2026-01-01"],
        "at most 400",
    ),
    (
        ["schedules", "backfill", "daily-cleanup", "--from", "9999-01-01", "--to", "9999-01-02"],
        "2100-12-31",
    ),
    (["schedules", "update", "daily-cleanup", "--deadline-minutes", "99999999999"], "44640"),
]
# Click's usage errors, one line each (no box): missing option, missing argument,
# wrong type, out of range, unknown option, extra argument, unknown command.
USAGE_ERRORS = [
    (["rebuild"], "Missing option '--tenant'"),
    (["jobs", "show"], "Missing argument 'ID'"),
    (["jobs", "show", "abc"], "not a job id"),
    (["sync", "--tenant", "t1", "--days-back", "0"], "greater than or equal to 1"),
    (["jobs", "list", "--nope"], "No such option: --nope"),
    (["jobs", "show", "1", "2"], "unexpected extra argument"),
    (["jobs", "frobnicate"], "No such command 'frobnicate'"),
]


def assert_refused(db_url, cases):
    for args, message in cases:
        proc = cli(db_url, *args)
        shown = " ".join(a[:20] for a in args)
        assert proc.returncode == 2, (shown, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (shown, proc.stderr)
        assert message in lines[0], (shown, lines[0])
        assert not lines[0].startswith("error: unexpected"), lines[0]


def test_each_bad_cli_input_is_one_line_exit_2_and_stores_nothing(db_url, engine):
    cli(db_url, "db", "upgrade", check=True)  # the default schedules
    mk.tenant(engine, "t1")
    before = stored(engine)
    assert_refused(db_url, BAD_CLI_INPUT)
    assert stored(engine) == before


@pytest.mark.parametrize("backend", ["sqlite"])  # refused before any database is used
def test_usage_errors_are_one_line_not_a_box(db_url):
    assert_refused(db_url, USAGE_ERRORS)


def test_unknown_payload_fields_are_refused_by_every_job_type(engine, tmp_path):
    registry = build_registry(Settings(data_dir=tmp_path))
    for name in registry.names():
        model = registry.get(name).payload_model
        assert model is not None and model.model_config.get("extra") == "forbid", name
        with pytest.raises(InvalidPayload, match="bogusField"):
            Queue(engine, registry).enqueue(name, {"bogusField": 1})
    assert stored(engine)["jobs"] == 0


@contextlib.contextmanager
def api(engine, tmp_path):
    mk.tenant(engine, "t1")
    create_user(engine, "ops@superseller.dev", PASSWORD, "admin")
    settings = Settings(data_dir=tmp_path, internal_jobs_key=KEY)
    registry = build_registry(settings)
    ensure_defaults(engine, registry)
    with (
        serving(settings, engine, registry) as url,
        # the session cookie's changes come from our own pages (the same-origin check)
        httpx.Client(base_url=url, timeout=60, headers={"Origin": url}) as c,
    ):
        r = c.post(
            "/api/v1/auth/login", json={"email": "ops@superseller.dev", "password": PASSWORD}
        )
        assert r.status_code == 200
        yield c


BAD_API_INPUT = [
    ("post", "/api/admin/jobs", {"type": "cleanup", "priority": 5000}, 422, "invalid_request"),
    ("post", "/api/admin/jobs", {"type": "cleanup", "maxAttempts": 10**11}, 422, "invalid_request"),
    ("post", "/api/admin/jobs", {"type": "cleanup", "tenantId": "x" * 100}, 422, "invalid_request"),
    (
        "post",
        "/api/admin/jobs",
        {"type": "cleanup", "uniqueKey": "k" * 300},
        422,
        "invalid_request",
    ),
    (
        "post",
        "/api/admin/jobs",
        {"type": "cleanup", "payload": {"pad": "x" * 70_000}},
        413,
        "payload_too_large",
    ),
    (
        "post",
        "/api/admin/jobs",
        {"type": "cleanup", "payload": {"pad": "x" * 10_000_000}},
        413,
        "payload_too_large",
    ),
    (
        "post",
        "/api/admin/jobs",
        {"type": "cleanup", "payload": {"bogus": 1}},
        400,
        "invalid_payload",
    ),
    (
        "post",
        "/api/admin/jobs",
        {"type": "freshness_heal", "payload": {"bogus": 1}},
        400,
        "invalid_payload",
    ),
    (
        "post",
        "/api/admin/jobs",
        {"type": "cleanup", "runAt": "9999-12-31T00:00:00Z"},
        400,
        "out_of_bounds",
    ),
    (
        "post",
        "/api/admin/jobs",
        {
            "type": "metrics_aggregation",
            "payload": {"tenantId": "t1", "from": "9999-12-30", "to": "9999-12-31"},
        },
        400,
        "invalid_payload",
    ),
    ("get", "/api/admin/jobs/99999999999999999999", None, 422, "invalid_request"),
    (
        "post",
        "/api/v1/jobs/rebuild-daily-metrics",
        {"tenantId": "t1", "from": "9999-12-30", "to": "9999-12-31"},
        400,
        "invalid_range",
    ),
    ("post", "/api/v1/jobs/sync-mercadolivre", {"tenantId": "x" * 100}, 422, "invalid_request"),
]


def test_each_bad_api_input_is_a_4xx_with_the_error_body_and_stores_nothing(engine, tmp_path):
    with api(engine, tmp_path) as c:
        before = stored(engine)
        for method, path, body, status, code in BAD_API_INPUT:
            r = c.request(method.upper(), path, json=body, headers={"X-Internal-Key": KEY})
            assert r.status_code == status, (path, body and str(body)[:80], r.text[:300])
            assert r.json()["error"]["code"] == code, (path, r.text[:300])
        # The backfill of a schedule: at most 400 days, dates within the bounds.
        [sid] = [
            s["id"]
            for s in c.get("/api/admin/jobs/schedules").json()["schedules"]
            if s["name"] == "daily-cleanup"
        ]
        for span in (("2020-01-01", "2026-01-01"), ("9999-01-01", "9999-01-02")):
            r = c.post(
                f"/api/admin/jobs/schedules/{sid}/backfill", json={"from": span[0], "to": span[1]}
            )
            assert r.status_code == 400 and r.json()["error"]["code"] == "out_of_bounds", r.text
        r = c.patch(f"/api/admin/jobs/schedules/{sid}", json={"payload": {"pad": "x" * 70_000}})
        assert r.status_code == 413, r.text
        assert stored(engine) == before
