"""Bad configuration and bad tenant ids get one clear line, never a traceback or a value."""

import os
import subprocess
import sys

import pytest

from superseller.sandbox.server import free_port
from superseller.tenants import create_tenant, get_tenant
from tests.support.cli import cli
from tests.support.procs import ROOT


def _run(*args, **env):
    return subprocess.run(
        [sys.executable, "-m", "superseller.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "args", [["tenants", "list"], ["jobs", "list"], ["serve", "--port", str(free_port())]]
)
def test_a_bad_environment_variable_names_itself_on_one_line(tmp_path, args):
    proc = _run(*args, DATA_DIR=str(tmp_path), JOB_HEARTBEAT_S="abc")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: JOB_HEARTBEAT_S: expected a number"


def test_every_bad_variable_is_named_and_no_value_is_printed(tmp_path):
    proc = _run(
        "tenants",
        "list",
        DATA_DIR=str(tmp_path),
        DB_POOL_SIZE="0",
        LOG_FORMAT="secret-looking-xml",
        ML_REQUESTS_PER_S="s3cr3t-value",
    )
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert len(line.splitlines()) == 1, line
    assert "DB_POOL_SIZE: should be greater than or equal to 1" in line
    assert "LOG_FORMAT: should be 'text' or 'json'" in line
    assert "ML_REQUESTS_PER_S: expected a number" in line
    assert "secret-looking" not in line and "s3cr3t" not in line


def test_an_existing_tenant_id_is_refused_by_name(db_url, engine):
    cli(db_url, "tenants", "create", "Loja", "--id", "walk1", check=True)
    again = cli(db_url, "tenants", "create", "Outra", "--id", "walk1")
    assert again.returncode == 1
    assert again.stderr.strip() == "error: a tenant with id 'walk1' already exists"
    assert get_tenant(engine, "walk1")["name"] == "Loja"  # the first one is untouched


@pytest.mark.parametrize("bad", ["a/b?c=d&e", "com espaço", "-x", ".hidden", "ação"])
def test_new_tenant_ids_must_be_slugs(db_url, engine, bad):
    proc = cli(db_url, "tenants", "create", "Loja", "--id", bad)
    assert proc.returncode == 2
    assert "the tenant id may hold only letters, digits" in proc.stderr
    with pytest.raises(ValueError, match="may hold only"):
        create_tenant(engine, "Loja", tenant_id=bad)


def test_slug_tenant_ids_and_generated_ones_are_accepted(engine):
    for good in ["walk1", "Loja_2.sp-centro", "9" * 36]:
        assert create_tenant(engine, "Loja", tenant_id=good)["id"] == good
    assert len(create_tenant(engine, "Loja")["id"]) == 36  # a uuid
