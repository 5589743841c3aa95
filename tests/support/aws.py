"""A mocked AWS (moto) for the tests of the optional AWS tooling."""

from __future__ import annotations

import pytest
from moto import mock_aws


@pytest.fixture
def mocked_aws(monkeypatch):
    """Fake credentials and region, and every AWS call served by moto in this process."""
    for k, v in {
        "AWS_DEFAULT_REGION": "us-east-2",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        yield
