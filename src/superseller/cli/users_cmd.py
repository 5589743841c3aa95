"""`superseller users create|list|set-password|set-role|disable|enable|delete|revoke-sessions`.

Every change of a user's password, role or state ends all of their sessions. Everything
that can be checked is checked before the password is asked for or a deletion confirmed:
bad input exits 2, input that meets the data (a tenant or user not there, an email taken)
exits 1, and nobody types a password twice only to be refused."""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from superseller.cli.common import CliError, console, engine, print_json
from superseller.users import accounts

app = typer.Typer(help="People who log in.", no_args_is_help=True)
# Not `...`: that would mark it [required] in --help, yet it is asked for when omitted.
# Not `prompt=True` either: click would ask during parsing, before any other check.
PASSWORD = typer.Option(
    None,
    show_default=False,
    help="Asked for (twice, hidden) when omitted; without a terminal, read from stdin "
    "(two lines, the same password twice).",
)


def _password(given: str | None) -> str:
    """--password, else asked for twice in a terminal, else two lines on stdin; checked."""
    if given is None:
        given = _ask_password() if sys.stdin.isatty() else _read_password()
    accounts.check_password(given)
    return given


def _ask_password() -> str:
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


def _read_password() -> str:
    """Two lines on stdin (what a terminal's prompt would read); nothing there: say how."""
    first = sys.stdin.readline()
    if not first:
        raise CliError("no password: give --password (or run it in a terminal)", 2)
    second = sys.stdin.readline()
    if not second:
        raise CliError("the password was given once on stdin: give it twice, or --password", 2)
    if first.rstrip("\r\n") != second.rstrip("\r\n"):
        raise CliError("the two passwords on stdin differ", 2)
    return first.rstrip("\r\n")


def _role_value(value: str) -> str:
    """A role from the command line: bad input (exit 2), said before the password prompt."""
    if value not in accounts.ROLES:
        raise typer.BadParameter(f"unknown role {value!r} (one of {', '.join(accounts.ROLES)})")
    return value


ROLE = typer.Option(..., help="admin | seller", callback=_role_value)


@app.command()
def create(
    email: str = typer.Option(...),
    role: str = ROLE,
    tenant: str | None = typer.Option(None, help="The seller's tenant."),
    password: str = PASSWORD,
) -> None:
    """Add a user (the password is asked for, or given with --password)."""
    eng = engine()
    accounts.check_can_create(eng, email, role, tenant)  # before the password is asked
    user = accounts.create_user(eng, email, _password(password), role, tenant)
    console.print(f"user {user.email} ({user.role}) created")


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="One JSON array.")) -> None:
    """Every user, with their live session count."""
    rows = accounts.list_users(engine())
    if as_json:
        print_json(rows)
        return
    table = Table("id", "email", "role", "tenant", "state", "sessions")
    for r in rows:
        state = "disabled" if r["disabled_at"] else "active"
        table.add_row(
            str(r["id"]), r["email"], r["role"], r["tenant_id"] or "—", state, str(r["sessions"])
        )
    console.print(table)


@app.command("set-password")
def set_password(
    email: str = typer.Argument(...),
    password: str = PASSWORD,
) -> None:
    """A new password; the user's sessions end."""
    eng = engine()
    accounts.find_user(eng, email)  # not there: said before the password is asked
    accounts.set_password(eng, email, _password(password))
    console.print(f"password of {email.strip().lower()} changed; their sessions ended")


@app.command("set-role")
def set_role(
    email: str = typer.Argument(...),
    role: str = ROLE,
    tenant: str | None = typer.Option(None, help="The seller's tenant."),
) -> None:
    """A new role (a seller's tenant with it, an admin has none); the user's sessions end."""
    accounts.set_role(engine(), email, role, tenant)
    console.print(f"{email.strip().lower()} is now {role}; their sessions ended")


@app.command()
def disable(email: str = typer.Argument(...)) -> None:
    """The user can no longer log in; their sessions end at once."""
    accounts.set_disabled(engine(), email, True)
    console.print(f"{email.strip().lower()} disabled; their sessions ended")


@app.command()
def enable(email: str = typer.Argument(...)) -> None:
    """Let a disabled user log in again."""
    accounts.set_disabled(engine(), email, False)
    console.print(f"{email.strip().lower()} enabled")


@app.command()
def delete(
    email: str = typer.Argument(...),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete the user (and their sessions). Their id is never given to another user."""
    eng = engine()
    accounts.find_user(eng, email)  # not there: said before asking for confirmation
    if not yes:
        typer.confirm(f"delete {email.strip().lower()}?", abort=True)
    accounts.delete_user(eng, email)
    console.print(f"{email.strip().lower()} deleted")


@app.command("revoke-sessions")
def revoke_sessions(email: str = typer.Argument(...)) -> None:
    """End every session of the user: their tokens stop working at once."""
    n = accounts.revoke_sessions(engine(), email)
    console.print(f"{n} session(s) of {email.strip().lower()} ended")
