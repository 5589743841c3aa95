"""`superseller sync`, `superseller sandbox serve|connect`."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from superseller.cli.common import console, engine, print_json
from superseller.cli.inline import outcome, run_job_now
from superseller.config import get_settings
from superseller.tenants import get_tenant

sandbox_app = typer.Typer(help="The local Mercado Livre sandbox.", no_args_is_help=True)


def sync(
    tenant: str = typer.Option(..., help="Tenant id."),
    days_back: int = typer.Option(30, min=1, max=150, help="Days of orders and visits."),
) -> None:
    """Sync a seller's listings, orders and visits now (then the rebuild is queued)."""
    get_tenant(engine(), tenant)
    job = run_job_now(
        "sync_mercadolivre",
        {"tenantId": tenant, "daysBack": days_back},
        tenant,
        "syncing Mercado Livre",
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
    """Connect a tenant to the sandbox seller (the whole OAuth code flow)."""
    from superseller.mercadolivre.connect import connect_sandbox

    get_tenant(engine(), tenant)
    account = connect_sandbox(engine(), get_settings(), tenant, datetime.now(UTC))
    console.print(f"tenant {tenant} connected (account {account})")
