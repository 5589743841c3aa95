"""`superseller users …` checks what it can before asking for a password or a confirmation:
input no database could make valid exits 2, input that meets the data (a tenant or user not
there, an email taken) exits 1, one line `error: …` either way, and no prompt was shown.
An admin has no tenant (accounts refuses it, so every caller does)."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time

import pytest

from superseller.db.engine import make_engine
from superseller.users import accounts
from superseller.users.accounts import InvalidUserInput, create_user
from tests.support import marketplace as mk
from tests.support.cli import cli
from tests.support.procs import ROOT

TWICE = "password1\npassword1\n"  # what a script pipes for the two prompts


def _run(db_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """The CLI in a child process, stdin a pipe (never a terminal): `stdin` or nothing."""
    return subprocess.run(
        [sys.executable, "-m", "superseller.cli", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": db_url},
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _refused(proc: subprocess.CompletedProcess, code: int, message: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert len(lines) == 1 and lines[0] == f"error: {message}", proc.stderr
    assert "Password" not in proc.stdout + proc.stderr  # refused before any prompt
    assert "Warning" not in proc.stderr and "Traceback" not in proc.stderr


def _emails(db_url: str) -> dict[str, str | None]:
    listed = json.loads(cli(db_url, "users", "list", "--json", check=True).stdout)
    return {u["email"]: u["tenant_id"] for u in listed}


@pytest.fixture
def shop(db_url) -> str:
    cli(db_url, "tenants", "create", "Loja W", "--id", "lojaw", check=True)
    cli(
        db_url,
        *("users", "create", "--email", "ana@lojaw.example", "--role", "seller"),
        *("--tenant", "lojaw", "--password", "password1"),
        check=True,
    )
    return db_url


def test_create_refuses_before_asking_for_the_password(shop):
    """Each of these used to ask for the password twice, then refuse (exit 1, whatever the
    reason), and an admin with a tenant was stored as such."""
    create = ("users", "create", "--email")
    for args, code, message in [
        (("not-an-email", "--role", "admin"), 2, "not an email address: 'not-an-email'"),
        (("a@b.example", "--role", "seller"), 2, "a seller belongs to a tenant: give --tenant"),
        (("a@b.example", "--role", "admin", "--tenant", "lojaw"), 2, "an admin has no tenant; "
         "leave --tenant out"),
        (("a@b.example", "--role", "seller", "--tenant", "nosuch"), 1, "tenant 'nosuch' not found"),
        (("ANA@lojaw.example ", "--role", "seller", "--tenant", "lojaw"), 1,
         "a user with email ana@lojaw.example already exists"),
    ]:  # fmt: skip
        _refused(_run(shop, *create, *args, stdin=TWICE), code, message)
    assert _emails(shop) == {"ana@lojaw.example": "lojaw"}


def test_a_password_too_short_is_bad_input(shop):
    args = ("users", "create", "--email", "bia@b.example", "--role", "admin")
    too_short = "error: password must have at least 8 characters"
    for proc in (
        _run(shop, *args, "--password", "short"),
        _run(shop, *args, stdin="short\nshort\n"),
        _run(shop, "users", "set-password", "ana@lojaw.example", "--password", "short"),
    ):
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().splitlines() == [too_short], proc.stderr
    assert "bia@b.example" not in _emails(shop)


def test_without_a_terminal_the_password_is_read_from_stdin_or_asked_for_by_name(db_url):
    """Nothing on stdin: one line saying to give --password (getpass's three-line warning
    and `error: aborted`, exit 1, before). Given twice on stdin, as a prompt would read it:
    created, with no warning about echo."""
    args = ("users", "create", "--email", "cid@b.example", "--role", "admin")
    _refused(_run(db_url, *args), 2, "no password: give --password (or run it in a terminal)")
    _refused(
        _run(db_url, *args, stdin="password1\n"),
        2,
        "the password was given once on stdin: give it twice, or --password",
    )
    _refused(
        _run(db_url, *args, stdin="password1\npassword2\n"), 2, "the two passwords on stdin differ"
    )
    assert _emails(db_url) == {}
    made = _run(db_url, *args, stdin=TWICE)
    assert made.returncode == 0 and "user cid@b.example (admin) created" in made.stdout
    assert made.stderr == ""
    engine = make_engine(db_url)
    try:
        assert accounts.authenticate(engine, "cid@b.example", "password1") is not None
    finally:
        engine.dispose()


def test_set_role_refuses_an_admin_with_a_tenant_and_a_seller_without(shop):
    role = ("users", "set-role", "ana@lojaw.example", "--role")
    _refused(
        _run(shop, *role, "admin", "--tenant", "lojaw"),
        2,
        "an admin has no tenant; leave --tenant out",
    )
    _refused(_run(shop, *role, "seller"), 2, "a seller belongs to a tenant: give --tenant")
    _refused(_run(shop, *role, "seller", "--tenant", "nosuch"), 1, "tenant 'nosuch' not found")
    assert _emails(shop) == {"ana@lojaw.example": "lojaw"}
    made = _run(shop, *role, "admin")
    assert made.returncode == 0, made.stderr
    assert _emails(shop) == {"ana@lojaw.example": None}  # an admin's tenant goes


def test_a_user_not_there_is_said_before_asking_anything(shop):
    """`delete` asked to confirm and `set-password` for the password twice, then said the
    user was not there."""
    missing = "no user with email nobody@b.example"
    gone = _run(shop, "users", "delete", "nobody@b.example", stdin="y\n")
    _refused(gone, 1, missing)
    assert "delete nobody" not in gone.stdout
    _refused(_run(shop, "users", "set-password", "nobody@b.example", stdin=TWICE), 1, missing)
    asked = _run(shop, "users", "delete", "ana@lojaw.example", stdin="y\n")
    assert asked.returncode == 0 and "delete ana@lojaw.example? [y/N]" in asked.stdout
    assert _emails(shop) == {}


def test_accounts_refuse_an_admin_with_a_tenant(engine):
    """Not only the command line: every caller of create_user and set_role."""
    mk.tenant(engine, "t1")
    with pytest.raises(InvalidUserInput, match="an admin has no tenant"):
        create_user(engine, "ops@b.example", "password1", "admin", "t1")
    create_user(engine, "ana@b.example", "password1", "seller", "t1")
    with pytest.raises(InvalidUserInput, match="an admin has no tenant"):
        accounts.set_role(engine, "ana@b.example", "admin", "t1")
    assert accounts.list_users(engine)[0]["tenant_id"] == "t1"
    assert create_user(engine, "ops@b.example", "password1", "admin", "").tenant_id is None


def test_in_a_terminal_bad_input_is_refused_before_the_prompt_and_good_input_asked_twice(shop):
    refused, shown = _in_terminal(shop, "users", "create", "--email", "bad", "--role", "admin")
    assert refused == 2 and "Password" not in shown, shown
    assert "error: not an email address: 'bad'" in shown
    made, shown = _in_terminal(
        shop, "users", "create", "--email", "dia@b.example", "--role", "admin"
    )
    assert made == 0, shown
    assert "Password:" in shown and "Repeat for confirmation:" in shown
    assert "password1" not in shown  # hidden
    assert "user dia@b.example (admin) created" in shown


def _in_terminal(db_url: str, *args: str) -> tuple[int, str]:
    """The CLI on a pseudo-terminal; `password1` typed at each prompt. Its exit code and all
    it showed (without colours)."""
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "superseller.cli", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": db_url, "COLUMNS": "200"},
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,  # no controlling terminal: getpass reads stdin, the pty
    )
    os.close(slave)
    shown, pending, deadline = b"", b"", time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if not select.select([master], [], [], 0.2)[0]:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child is gone (EIO)
                break
            if not chunk:
                break
            shown, pending = shown + chunk, pending + chunk
            # click writes "Password:", getpass the space once echo is off and typed-ahead
            # input flushed: typed only then, or it is thrown away.
            if pending.endswith(b": ") and (b"Password" in pending or b"confirmation" in pending):
                os.write(master, b"password1\n")
                pending = b""
        else:
            proc.kill()
            raise AssertionError(f"`superseller {' '.join(args)}` did not end: {shown!r}")
        return proc.wait(timeout=30), re.sub(r"\x1b\[[0-9;]*m", "", shown.decode(errors="replace"))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
