"""The API behaves as its OpenAPI document says: schemathesis with every check (the CLI's
`--checks all`: no 5xx, documented status codes, content types and headers, response bodies
matching their schemas, invalid input refused, valid input accepted, auth not ignored...), in
both generation modes (valid and invalid input: the CLI's `--mode all`), with several
seeds, authenticated as a seller and as an admin.

Requests carry the user's token and the internal key, so that generated input reaches
the handlers rather than stopping at the 401. Each operation gets EXAMPLES examples per
role on SQLite (a quarter on PostgreSQL): MODES x SEEDS runs sharing them.
"""

import os
import re

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.failures import FailureGroup

from superseller.config import Settings
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import serving

KEY = "fuzz-internal-key-0123456789"
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
# Other seeds than the project's usual ones find other bugs: FUZZ_SEEDS=1,2,3 to try some.
SEEDS = tuple(int(s) for s in os.environ.get("FUZZ_SEEDS", "16,1016").split(","))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))  # per operation and role
# PostgreSQL gets a quarter of them (CI time): what only it refuses (NUL characters,
# integer ranges) shows up within a few examples; the rest is backend-independent.
PG_SHARE = 4
PASSWORD = "correct horse battery"
USERS = {"seller": "ana@loja1.com", "admin": "ops@superseller.dev"}
# Logging out with the run's own token would end the session the rest of the run needs;
# it is called without a token (tests/test_security_sessions.py covers it with one).
WITHOUT_TOKEN = {("POST", "/api/v1/auth/logout")}
# Valid input by the schema that the API still refuses by a rule JSON Schema cannot state:
# (method, path) -> the status(es) `positive_data_acceptance` may see, and why. Nothing else
# is exempt, and no other check is.
SEMANTIC_REFUSALS = {
    # the payload is checked by the job type's own schema; the type must be registered
    ("POST", "/api/admin/jobs"): 400,
    # dates: a local day or a date-time with an offset, inside the limits, end after start
    ("GET", "/api/admin/jobs/search"): 422,
    ("GET", "/api/admin/jobs/counts"): 422,
    # ... and a bulk action needs at least one filter
    ("POST", "/api/admin/jobs/bulk/cancel"): 422,
    ("POST", "/api/admin/jobs/bulk/retry"): 422,
    # a period: `days`, or both `from` and `to` (422 when one is missing; 400 invalid_range
    # for days that are not dates, out of order or outside the limits)
    ("GET", "/api/v1/metrics/overview"): (400, 422),
    ("GET", "/api/v1/metrics/explain"): (400, 422),
    ("GET", "/api/v1/listings"): (400, 422),
    # a backfill range: from <= to, inside the date limits, at most the ticks allowed
    ("POST", "/api/admin/jobs/schedules/{schedule_id}/backfill"): 400,
    # the state must be one this server signed, for this browser
    ("GET", "/api/v1/mercadolivre/callback"): 400,
}
REJECTED_VALID = "Schema-valid request rejected"
# Dates and ranges outside the project's bounds (limits.py) are a 400 `out_of_bounds`
# wherever a date is read: a schema-valid day can still be year 9999.
OUT_OF_BOUNDS = "out_of_bounds"
# A negative case that drops the Authorization header is sent with the run's credentials
# (the call-time override), so schemathesis judges a request other than the one sent: its
# "accepted" verdict for such a case is about a request nobody made.
ACCEPTED_INVALID = "Schema-violating request accepted"
AUTH_DROPPED = "(was Authorization)"
# Anywhere: a string PostgreSQL cannot store (a NUL character) is a 400 `invalid_value`.
UNSTORABLE = "invalid_value"
# A request that is not HTTP (invalid mode puts control characters in header values) is
# refused by the server's HTTP parser before any route sees it, in uvicorn's own words; a
# request without such a header must never get this answer.
NOT_HTTP = "Invalid HTTP request received."
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _not_http(case) -> bool:
    """A header the HTTP grammar forbids: a name that is no token, a control character in
    a value (tab aside), framing headers that frame nothing (invalid mode draws random header
    names: `content-length: nr<R2VqN_` came up)."""
    for name, value in (case.headers or {}).items():
        if not _TOKEN.fullmatch(str(name)):
            return True
        if str(name).lower() == "content-length" and not str(value).isdigit():
            return True
        if str(name).lower() == "transfer-encoding":
            return True
        if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in str(value)):
            return True
    return False


@pytest.fixture
def live(engine, tmp_path):
    mk.tenant(engine, "t1")
    create_user(engine, USERS["seller"], PASSWORD, "seller", "t1")
    create_user(engine, USERS["admin"], PASSWORD, "admin")
    # A Mercado Livre app configured (connect answers 303, not 503), pointing at a closed
    # local port: nothing here ever leaves the machine.
    settings_ = Settings(
        data_dir=tmp_path,
        internal_jobs_key=KEY,
        ml_client_id="app",
        ml_redirect_uri="http://127.0.0.1/cb",
        ml_api_url="http://127.0.0.1:9",
        ml_auth_url="http://127.0.0.1:9/authorization",
        login_attempts_per_minute=1000,  # the run logs in; generated logins must not lock it
    )
    with serving(settings_, engine, build_registry(settings_), short_wait_s=0.2) as url:
        yield url


def _token(url: str, email: str) -> str:
    r = httpx.post(f"{url}/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()["token"]


def all_checks() -> list:
    """Every check schemathesis has (`--checks all`)."""
    load_all_checks()
    return list(CHECKS.get_all())


def _run(operation, mode, s: int, examples: int, headers: dict, failures: list) -> None:
    checks = all_checks()

    @seed(s)
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        response = case.call(headers=headers)
        where = f"{case.method} {case.formatted_path} ({mode.value}, seed {s}) -> "
        if response.status_code == 400 and response.text == NOT_HTTP:
            if not (mode is schemathesis.GenerationMode.NEGATIVE and _not_http(case)):
                failures.append(f"{where}400 {NOT_HTTP!r} for a request that is HTTP")
            return
        if "Traceback" in response.text:
            failures.append(f"{where}{response.status_code}: {response.text[:200]}")
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except FailureGroup as exc:  # one entry per failed check
            allowed = SEMANTIC_REFUSALS.get((case.method.upper(), operation.path), ())
            allowed = allowed if isinstance(allowed, tuple) else (allowed,)
            unstorable = response.status_code == 400 and UNSTORABLE in response.text
            out_of_bounds = response.status_code == 400 and OUT_OF_BOUNDS in response.text
            failures.extend(
                f"{where}{response.status_code}: {f.title}: {str(f.message)[:300]}"
                for f in exc.exceptions
                if not (
                    f.title == REJECTED_VALID
                    and (response.status_code in allowed or unstorable or out_of_bounds)
                )
                and not (f.title == ACCEPTED_INVALID and AUTH_DROPPED in str(f.message))
            )

    try:
        check()
    except Unsatisfiable:  # no invalid input exists (an operation without parameters)
        assert mode is schemathesis.GenerationMode.NEGATIVE


@pytest.mark.timeout(600)  # ~2 min per role on a quiet 2-core machine; room for a busy one
@pytest.mark.parametrize("role", ["seller", "admin"])
def test_the_api_keeps_its_documented_contract(live, role, backend):
    url = live
    examples = EXAMPLES if backend == "sqlite" else max(1, EXAMPLES // PG_SHARE)
    headers = {"Authorization": f"Bearer {_token(url, USERS[role])}", "X-Internal-Key": KEY}
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    per_run = max(1, -(-examples // (len(MODES) * len(SEEDS))))  # rounded up
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        sent = (
            {"X-Internal-Key": KEY}
            if (operation.method.upper(), operation.path) in WITHOUT_TOKEN
            else headers
        )
        for mode in MODES:
            for s in SEEDS:
                _run(operation, mode, s, per_run, sent, failures)
    assert operations >= 20  # the whole API was walked
    found = sorted(set(failures))
    print("\n".join(found))  # all of them (pytest shows the output of a failed test)
    assert found[:20] == []
