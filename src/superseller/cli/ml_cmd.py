"""`superseller sync`, `superseller ml disconnect`, `superseller sandbox serve|connect`."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from superseller.cli.common import CliError, console, engine, print_json, registry
from superseller.cli.inline import outcome, run_job_now
from superseller.config import get_settings
from superseller.jobs import audit
from superseller.tenant_jobs import sync_key
from superseller.tenants import get_tenant

sandbox_app = typer.Typer(help="The local Mercado Livre sandbox.", no_args_is_help=True)
ml_app = typer.Typer(help="A store's Mercado Livre connection.", no_args_is_help=True)


@ml_app.command("disconnect")
def disconnect(tenant: str = typer.Option(..., help="Tenant id.")) -> None:
    """Disconnect the store's Mercado Livre account: its tokens are deleted, its listings,
    orders and metrics kept; no sync runs until it is connected again."""
    from superseller.mercadolivre.disconnect import NotConnected, disconnect_account

    get_tenant(engine(), tenant)
    try:
        done = disconnect_account(engine(), tenant, audit.cli_actor())
    except NotConnected:
        raise CliError(f"tenant {tenant} has no Mercado Livre account to disconnect") from None
    users = ", ".join(str(u) for u in done.ml_user_ids)
    console.print(
        f"tenant {tenant} disconnected from Mercado Livre (user {users}); its data is kept"
    )


def sync(
    tenant: str = typer.Option(..., help="Tenant id."),
    days_back: int = typer.Option(30, min=1, max=150, help="Days of orders and visits."),
) -> None:
    """Sync a seller's listings, orders and visits now (then the rebuild is queued). While
    the store's sync is already pending or running ("Atualizar dados", the first import,
    the nightly run), this joins it and waits for it instead of queueing a second one."""
    get_tenant(engine(), tenant)
    job = run_job_now(
        "sync_mercadolivre",
        {"tenantId": tenant, "daysBack": days_back},
        tenant,
        "syncing Mercado Livre",
        unique_key=sync_key(tenant),
    )
    result = {
        k: v for k, v in outcome(job, "sync").items() if k not in ("itemErrors", "visitErrors")
    }
    print_json(result)


@sandbox_app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8081, min=1, max=65535),
    listings: int = typer.Option(200, min=1, max=100_000),
    history_days: int = typer.Option(90, min=1, max=365),
    orders_per_day: float = typer.Option(60.0, min=0),
    seed: int = typer.Option(42, min=0, max=2**32 - 1),
) -> None:
    """Serve the sandbox API (point ML_API_URL and ML_AUTH_URL at it)."""
    from superseller.sandbox.data import SellerSpec
    from superseller.sandbox.server import serve as run

    console.print(f"sandbox on http://{host}:{port} (client id sandbox-app, secret sandbox-secret)")
    run(
        SellerSpec(
            seed=seed,
            listings=listings,
            history_days=history_days,
            orders_per_day=orders_per_day,
            start=datetime.now(UTC),
        ),
        host,
        port,
    )


@sandbox_app.command("connect")
def connect(tenant: str = typer.Option(..., help="Tenant id.")) -> None:
    """Connect a tenant to the sandbox seller (the whole OAuth code flow), then queue its
    first sync (ML_BACKFILL_DAYS of history) for a worker to run."""
    import httpx

    from superseller.mercadolivre.connect import (
        AccountInUse,
        SandboxRefused,
        StoreHasOtherAccount,
        connect_sandbox,
        enqueue_backfill,
    )
    from superseller.mercadolivre.errors import MLError

    settings = get_settings()
    get_tenant(engine(), tenant)
    try:
        account = connect_sandbox(engine(), settings, tenant, datetime.now(UTC))
    except AccountInUse as exc:
        raise CliError(
            f"this Mercado Livre account is already connected to tenant {exc.tenant_id}"
        ) from None
    except StoreHasOtherAccount as exc:
        raise CliError(str(exc)) from None
    except SandboxRefused as exc:
        raise CliError(f"{exc}; is ML_CLIENT_ID the sandbox's (sandbox-app)?") from None
    except MLError as exc:
        raise CliError(f"Mercado Livre refused the connection: {exc}") from None
    except httpx.HTTPError as exc:
        raise CliError(
            f"the sandbox at {settings.ml_auth_url} cannot be reached ({type(exc).__name__}); "
            "is `superseller sandbox serve` running and ML_AUTH_URL/ML_API_URL set?"
        ) from None
    job = enqueue_backfill(engine(), registry(), settings, tenant)
    console.print(
        f"tenant {tenant} connected (account {account}); first sync of "
        f"{settings.ml_backfill_days} days queued (job {job.id}): a running worker takes it "
        "(without one: `superseller worker`)"
    )
