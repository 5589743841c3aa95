"""The Dockerfile and compose.yaml agree with the product they package.

No Docker daemon is needed (CI has none): these read the files and check each command
and setting against the CLI and the settings, so a renamed option or variable breaks here
and not on a user's first `docker compose up`.
"""

import re

import pytest
import typer
import yaml

from superseller.cli.main import app
from superseller.cli.serve_cmd import ROLES
from superseller.config import Settings
from superseller.db.engine import normalize_url
from tests.support.procs import ROOT

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
APP_SERVICES = ("migrate", "api", "worker", "scheduler")


def parse_cli(args: list[str]) -> tuple[str, dict]:
    """Parse `superseller ARGS` as the CLI would, without running it: returns the
    command's path and its parsed options."""
    command, words, path = typer.main.get_command(app), list(args), ["superseller"]
    while hasattr(command, "commands"):  # a group: the next word names a sub-command
        path.append(words.pop(0))
        command = command.commands[path[-1]]
    return " ".join(path), command.make_context(path[-1], words).params


def test_parse_cli_refuses_an_unknown_option():
    with pytest.raises(Exception, match="No such option"):
        parse_cli(["serve", "--no-such-option"])


@pytest.mark.parametrize("service", APP_SERVICES)
def test_every_compose_command_is_a_valid_cli_call(service):
    path, params = parse_cli(COMPOSE["services"][service]["command"])
    if path == "superseller serve":
        assert params["role"] in ROLES
    else:
        assert path == "superseller db upgrade"


def test_compose_runs_every_role_against_its_postgres():
    services = COMPOSE["services"]
    roles = {parse_cli(services[s]["command"])[1].get("role") for s in APP_SERVICES}
    assert roles >= {"api", "worker", "scheduler"}
    env = services["api"]["environment"]
    assert normalize_url(env["DATABASE_URL"]).startswith("postgresql+psycopg://")
    assert "@db:5432/" in env["DATABASE_URL"]
    # Every variable compose sets is one the settings read (a typo would be ignored).
    fields = {f.upper() for f in Settings.model_fields}
    assert set(env) <= fields, set(env) - fields


def test_workers_get_time_to_finish_their_jobs_on_stop():
    grace = COMPOSE["services"]["worker"]["stop_grace_period"]
    seconds = int(re.fullmatch(r"(\d+)s", grace).group(1))
    assert seconds > Settings.model_fields["job_shutdown_grace_s"].default


def test_image_is_multi_stage_slim_and_runs_as_a_user():
    stages = re.findall(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE)
    assert len(stages) >= 2 and all(s.endswith("-slim") for s in stages)
    last_stage = DOCKERFILE[DOCKERFILE.rindex("\nFROM ") :]
    users = re.findall(r"^USER (\S+)", last_stage, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    cmd = re.search(r"^CMD (\[.*\])", DOCKERFILE, re.MULTILINE).group(1)
    path, params = parse_cli(yaml.safe_load(cmd))
    assert path == "superseller serve" and params["role"] in ROLES
