"""`superseller users create`."""

from __future__ import annotations

import typer

from superseller.cli.common import console, engine
from superseller.users.accounts import create_user

app = typer.Typer(help="People who log in.", no_args_is_help=True)


@app.command()
def create(
    email: str = typer.Option(...),
    role: str = typer.Option(..., help="admin | seller"),
    tenant: str | None = typer.Option(None, help="The seller's tenant."),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
) -> None:
    """Add a user (the password is asked for, or given with --password)."""
    user = create_user(engine(), email, password, role, tenant)
    console.print(f"user {user.email} ({user.role}) created")
