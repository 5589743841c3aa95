"""No request, however malformed, gets a 5xx: schemathesis over the OpenAPI schema.

Requests carry an admin's token and the internal key, so that generated input
reaches the handlers rather than stopping at the 401.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from superseller.config import Settings
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import serving

KEY = "fuzz-internal-key-0123456789"
EXAMPLES = 25  # per operation: bounded, so CI time stays predictable


@pytest.fixture
def live(engine, tmp_path):
    mk.tenant(engine, "t1")
    create_user(engine, "ops@superseller.dev", "correct horse battery", "admin")
    # A Mercado Livre app configured (connect answers 303, not 503), pointing at a closed
    # local port: nothing here ever leaves the machine.
    settings_ = Settings(
        data_dir=tmp_path,
        internal_jobs_key=KEY,
        ml_client_id="app",
        ml_redirect_uri="http://127.0.0.1/cb",
        ml_api_url="http://127.0.0.1:9",
        ml_auth_url="http://127.0.0.1:9/authorization",
    )
    with serving(settings_, engine, build_registry(settings_), short_wait_s=0.2) as url:
        import httpx

        token = httpx.post(
            f"{url}/api/v1/auth/login",
            json={"email": "ops@superseller.dev", "password": "correct horse battery"},
        ).json()["token"]
        yield url, {"Authorization": f"Bearer {token}", "X-Internal-Key": KEY}


def test_no_request_gets_a_server_error(live):
    url, headers = live
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            response = case.call(headers=headers)
            if response.status_code >= 500 or "Traceback" in response.text:
                failures.append(
                    f"{case.method} {case.formatted_path} -> "
                    f"{response.status_code}: {response.text[:200]}"
                )

        check()
    assert operations >= 20  # the whole API was walked
    assert failures == []
