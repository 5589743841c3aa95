"""Leftovers of the command line: a database that can never open stops the long-running
commands at once (naming it, never its password) while a PostgreSQL outage at start is
still waited out; help text reads as prose; bad input says what is wrong, exit 2."""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import threading

import pytest
import typer.main
from typer.testing import CliRunner

from superseller.cli.main import app
from superseller.sandbox.server import free_port
from tests.support.cli import cli
from tests.support.procs import ROOT
from tests.support.waiting import wait_until

NO_DIR = "/nonexistent-superseller-dir/sub"


def _run(db_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """The CLI in a child process; one that does not end by itself fails the test."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "superseller.cli", *args],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": db_url},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=45,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"`superseller {' '.join(args)}` did not exit by itself") from None


@pytest.mark.parametrize(
    "args",
    [("worker",), ("scheduler",), ("serve", "--port", "0"), ("serve", "--role", "worker")],
    ids=["worker", "scheduler", "serve", "serve-role-worker"],
)
def test_a_sqlite_file_in_a_missing_directory_stops_long_running_commands_at_start(args):
    """SQLite creates a database file, never its directory: no retry can ever open it, so
    worker, scheduler and serve exit 2 with one line naming the path instead of logging
    "database unreachable, retrying" for good."""
    if args[0] == "serve" and args[1] == "--port":
        args = ("serve", "--port", str(free_port()))
    proc = _run(f"sqlite:///{NO_DIR}/x.db", *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"{NO_DIR}/x.db" in lines[0] and "does not exist" in lines[0]
    assert "retrying" not in proc.stderr and "Traceback" not in proc.stderr


def test_other_commands_name_the_database_they_could_not_use():
    """A command that fails on its database says which one: the SQLite path (whose missing
    directory is named as the reason, exit 2), or the PostgreSQL URL with its password
    hidden."""
    for args in (("jobs", "stats"), ("users", "list"), ("freshness",)):
        missing = cli(f"sqlite:///{NO_DIR}/x.db", *args)
        assert missing.returncode == 2, (args, missing.stderr)  # a setting to fix, like bad input
        lines = missing.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{NO_DIR}/x.db" in lines[0], (args, missing.stderr)
        assert "directory" in lines[0] and "does not exist" in lines[0], lines[0]

    port = free_port()  # nothing listens there
    down = cli(f"postgresql://bob:s3cret-pw@127.0.0.1:{port}/h_cli_none", "jobs", "stats")
    assert down.returncode == 1
    assert f"bob:***@127.0.0.1:{port}/h_cli_none" in down.stderr
    assert "s3cret-pw" not in down.stderr + down.stdout


def test_a_worker_waits_out_a_postgresql_server_that_is_down_at_start():
    """PostgreSQL down when the worker starts is an outage, not a mistake: the worker keeps
    retrying (one log line, no password) and stops cleanly on SIGTERM."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "superseller.cli", "worker"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": f"postgresql://bob:s3cret-pw@127.0.0.1:{port}/x"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        wait_until(
            lambda: any("database unreachable, retrying" in line for line in seen),
            timeout=60,
            message="the worker's retry line",
        )
        assert proc.poll() is None  # still there, retrying
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        reader.join(timeout=10)
    assert code == 0, "".join(seen)[-2000:]
    assert "s3cret-pw" not in "".join(seen)


def _is_group(command) -> bool:
    return hasattr(command, "commands")  # Typer's own copy of click's Group


def _commands(command, path: tuple[str, ...] = ()):
    yield path, command
    if _is_group(command):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "1000"})
    assert result.exit_code == 0, result.output
    return result.output


def test_help_text_breaks_lines_only_where_the_terminal_ends():
    """Every command's help, in its group's command list and in its own `--help`, rendered
    1000 columns wide (nothing needs wrapping): each paragraph of it is on one line. A
    docstring's hard line break used to end the line mid-sentence ("queued ones wait, due"
    / "ticks are caught up…") in the lists of `superseller --help` and `jobs --help`."""
    root = typer.main.get_command(app)
    assert len([path for path, _ in _commands(root)]) > 50  # every command, nested ones too
    broken = []
    for path, command in _commands(root):
        if not _is_group(command):
            continue
        listing = _help(path).splitlines()
        for name, sub in command.commands.items():
            first = " ".join(inspect.cleandoc(sub.help or "").split("\n\n")[0].split())
            if first and not any(first in line for line in listing):
                broken.append(f"{' '.join((*path, name))} in `{' '.join(path)} --help`")
    for path, command in _commands(root):
        own = _help(path).splitlines()
        for paragraph in inspect.cleandoc(command.help or "").split("\n\n"):
            text = " ".join(paragraph.split())
            if text and not any(text in line for line in own):
                broken.append(f"`{' '.join(path)} --help`")
    assert not broken, broken


def test_users_create_asks_for_the_password_its_help_does_not_require(db_url):
    """`--password` may be left out (it is asked for, twice), so the help does not mark it
    required; given on stdin the user is created."""
    options = _help(("users", "create")).splitlines()
    lines = [line for line in options if line.startswith("│") and "--password" in line]
    assert len(lines) == 1 and "required" not in lines[0] and "*" not in lines[0], lines
    proc = _run(
        db_url,
        *("users", "create", "--email", "ana@example.com", "--role", "admin"),
        stdin="a-long-password\na-long-password\n",
    )
    assert proc.returncode == 0, proc.stderr
    assert "user ana@example.com (admin) created" in proc.stdout


def test_bad_input_says_what_is_wrong_with_exit_2(db_url):
    """Input that no database content could make valid: one line saying which value is
    wrong and why, exit 2; well-formed input naming what is not there: exit 1."""
    both = cli(db_url, "tenants", "create", "", "--id", "a b")
    assert both.returncode == 2
    assert "the tenant name cannot be empty" in both.stderr
    assert "the tenant id may hold only letters" in both.stderr
    empty_id = cli(db_url, "tenants", "create", "Loja", "--id", "")
    assert empty_id.returncode == 2 and "the tenant id cannot be empty" in empty_id.stderr

    huge = cli(db_url, "jobs", "show", "99999999999999999999")
    assert huge.returncode == 2
    assert "job id 99999999999999999999 is out of range" in huge.stderr
    assert "4611686018427387904" not in huge.stderr
    assert cli(db_url, "jobs", "cancel", "0").returncode == 2

    zone = cli(db_url, "tenants", "create", "Loja", "--timezone", "Mars/Base")
    assert zone.returncode == 2 and "unknown time zone 'Mars/Base'" in zone.stderr
    kind = cli(db_url, "jobs", "enqueue", "no_such_type")
    assert kind.returncode == 2 and "unknown job type 'no_such_type'" in kind.stderr

    # Said before the password is asked for (no stdin here: a prompt would abort, exit 1).
    role = cli(db_url, "users", "create", "--email", "a@b.example", "--role", "king")
    assert role.returncode == 2 and "unknown role 'king' (one of admin, seller)" in role.stderr
    same = cli(db_url, "users", "set-role", "a@b.example", "--role", "king")
    assert same.returncode == 2 and "unknown role 'king'" in same.stderr

    missing = cli(db_url, "jobs", "show", "123456")
    assert missing.returncode == 1 and "job 123456 not found" in missing.stderr
    for proc in (both, empty_id, huge, zone, kind, role, same, missing):
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
