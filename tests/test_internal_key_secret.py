"""INTERNAL_JOBS_KEY from AWS Secrets Manager (moto): read, cached, and during a rotation
the previous value accepted for the grace period only."""

import boto3
import httpx
import pytest

from superseller.config import Settings
from superseller.internal_key import InternalKeys
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import serving

SECRET = "prod/INTERNAL_JOBS_KEY"


@pytest.fixture
def aws(mocked_aws):
    sm = boto3.client("secretsmanager")
    sm.create_secret(Name=SECRET, SecretString="old-key-0123456789")
    return sm


def call(url, key):
    # The rebuild: a sync of this tenant (never connected to Mercado Livre) is refused with 409.
    return httpx.post(
        f"{url}/api/v1/jobs/rebuild-daily-metrics",
        json={"tenantId": "t1"},
        headers={"X-Internal-Key": key},
        timeout=30,  # the route itself waits up to 4 s for the job (httpx's default is 5 s)
    ).status_code


@pytest.mark.parametrize("grace_s, old_after_rotation", [(3600, 202), (0, 401)])
def test_rotation_grace(aws, engine, tmp_path, grace_s, old_after_rotation):
    mk.tenant(engine, "t1")
    settings = Settings(
        data_dir=tmp_path,
        internal_jobs_key_secret_id=SECRET,
        internal_jobs_key_cache_s=0,
        internal_jobs_key_grace_s=grace_s,
    )
    with serving(settings, engine, build_registry(settings)) as url:
        assert call(url, "old-key-0123456789") == 202
        assert call(url, "wrong") == 401
        aws.put_secret_value(SecretId=SECRET, SecretString="new-key-9876543210")  # rotate
        assert call(url, "new-key-9876543210") == 202
        assert call(url, "old-key-0123456789") == old_after_rotation


def test_the_secret_is_cached_and_an_outage_keeps_the_last_keys(aws, engine, tmp_path):
    mk.tenant(engine, "t1")
    settings = Settings(
        data_dir=tmp_path, internal_jobs_key_secret_id=SECRET, internal_jobs_key_cache_s=3600
    )
    with serving(settings, engine, build_registry(settings)) as url:
        assert call(url, "old-key-0123456789") == 202
        aws.put_secret_value(SecretId=SECRET, SecretString="new-key-9876543210")
        assert call(url, "new-key-9876543210") == 401  # not read again within the TTL
    # Read on every call (TTL 0): when Secrets Manager fails, the last keys read still work.
    keys = InternalKeys(
        Settings(data_dir=tmp_path, internal_jobs_key_secret_id=SECRET, internal_jobs_key_cache_s=0)
    )
    assert keys.matches("new-key-9876543210")
    aws.delete_secret(SecretId=SECRET, ForceDeleteWithoutRecovery=True)
    assert keys.matches("new-key-9876543210") and not keys.matches("x")


def test_an_unreadable_secret_closes_the_door(aws, engine, tmp_path):
    settings = Settings(data_dir=tmp_path, internal_jobs_key_secret_id="does/not/exist")
    with serving(settings, engine, build_registry(settings)) as url:
        r = httpx.post(
            f"{url}/api/v1/jobs/sync-mercadolivre",
            json={"tenantId": "t1"},
            headers={"X-Internal-Key": "anything"},
        )
    assert r.status_code == 503 and r.json()["error"]["code"] == "internal_key_unavailable"
    assert "anything" not in r.text
