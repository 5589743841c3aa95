"""`superseller aws schedules …`: the AWS scheduling set without Terraform (boto3)."""

from __future__ import annotations

import typer

from superseller.aws import schedules as aws_schedules
from superseller.cli.common import TIMEZONE, CliError, console, print_json, zone_or_default
from superseller.config import get_settings
from superseller.internal_key import InternalKeys, KeyUnavailable

app = typer.Typer(help="AWS tooling (needs the optional aws extra: boto3).", no_args_is_help=True)
schedules_app = typer.Typer(
    help="EventBridge schedules that call the internal job endpoints.", no_args_is_help=True
)
app.add_typer(schedules_app, name="schedules")

NAME = typer.Option("superseller", "--name", help="Prefix of every AWS resource.")


def _clients() -> aws_schedules.Clients:
    try:
        return aws_schedules.Clients.default()
    except aws_schedules.AwsSetupError as exc:
        raise CliError(str(exc), 2) from None
    except Exception as exc:  # botocore's NoRegionError and the like: set-up, not a bug
        raise CliError(f"AWS is not set up here: {exc}", 2) from None


def _key() -> str:
    keys = InternalKeys(get_settings())
    if not keys.configured:
        raise CliError("set INTERNAL_JOBS_KEY or INTERNAL_JOBS_KEY_SECRET_ID first", 2)
    try:
        return keys.accepted()[0]  # the current value
    except KeyUnavailable:
        raise CliError("the INTERNAL_JOBS_KEY secret cannot be read", 1) from None


@schedules_app.command()
def apply(
    api_url: str = typer.Option(..., help="Public HTTPS base URL of the API."),
    name: str = NAME,
    timezone: str | None = TIMEZONE,
    disabled: bool = typer.Option(False, help="Create the schedules switched off."),
) -> None:
    """Create or update the whole set (idempotent)."""
    key = _key()
    try:
        out = aws_schedules.apply(
            _clients(),
            api_url,
            key,
            name=name,
            timezone=zone_or_default(timezone),
            enabled=not disabled,
        )
    except aws_schedules.AwsSetupError as exc:
        raise CliError(str(exc), 2) from None
    print_json(out)


@schedules_app.command()
def enable(name: str = NAME) -> None:
    """Switch the schedules on."""
    _state(True, name)


@schedules_app.command()
def disable(name: str = NAME) -> None:
    """Switch the schedules off (nothing is deleted)."""
    _state(False, name)


def _state(on: bool, name: str) -> None:
    try:
        done = aws_schedules.set_state(_clients(), on, name)
    except aws_schedules.AwsSetupError as exc:
        raise CliError(str(exc), 1) from None
    console.print(f"{'enabled' if on else 'disabled'}: {', '.join(done)}")


@schedules_app.command()
def delete(name: str = NAME) -> None:
    """Remove every part of the set."""
    for line in aws_schedules.delete(_clients(), name):
        console.print(f"deleted {line}")
