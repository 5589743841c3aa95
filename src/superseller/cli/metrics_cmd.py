"""`superseller rebuild`, `superseller freshness`, `superseller tenants …`."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.table import Column, Table

from superseller.cli.common import (
    TIMEZONE,
    CliError,
    console,
    engine,
    print_json,
    zone_or_default,
)
from superseller.cli.inline import outcome, run_job_now
from superseller.metrics.freshness import ALARMING, all_freshness, tenant_freshness
from superseller.metrics.rebuild import InvalidRange, parse_day, validate_range
from superseller.tenants import create_tenant, get_tenant, list_tenants

tenants_app = typer.Typer(help="Sellers (tenants).", no_args_is_help=True)


def rebuild(
    tenant: str = typer.Option(..., help="Tenant id."),
    from_: str | None = typer.Option(None, "--from", help="First local day, YYYY-MM-DD."),
    to: str | None = typer.Option(None, help="Last local day, YYYY-MM-DD."),
    replace: bool = typer.Option(
        False, help="Delete the range's rows first, then rebuild them (one transaction per chunk)."
    ),
) -> None:
    """Rebuild listing_metrics_daily for a tenant (default: the last 30 local days)."""
    if (from_ is None) != (to is None):
        raise CliError("give both --from and --to, or neither (the last 30 days)", 2)
    if from_ is not None:
        try:
            validate_range(parse_day(from_, "--from"), parse_day(to, "--to"))
        except InvalidRange as exc:
            raise CliError(str(exc), 2) from None
    get_tenant(engine(), tenant)
    payload = {
        "tenantId": tenant,
        **({"from": from_, "to": to} if from_ or to else {}),
        **({"replace": True} if replace else {}),
    }
    job = run_job_now("metrics_aggregation", payload, tenant, "rebuilding daily metrics")
    print_json(outcome(job, "rebuild"))


def freshness(
    tenant: str | None = typer.Option(None, help="One tenant (default: all)."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Whether each tenant's numbers are fresh: ok, partial, importing, stale,
    reauth_required or not_connected. Exits 1 if any is stale or needs reconnecting (a
    tenant never connected is reported, not alarmed on: nothing is broken, nothing can be
    synced; nor is a partial one, whose missing visits the next sync retries; nor an
    importing one: a new seller whose first import is queued or running, queued less than
    26 h ago; after that it is stale, reason importing)."""
    now = datetime.now(UTC)
    rows = (
        [tenant_freshness(engine(), get_tenant(engine(), tenant)["id"], now)]
        if tenant
        else all_freshness(engine(), now)
    )
    if json_out:
        print_json(rows)
    else:
        table = Table(
            Column("tenant", no_wrap=True),
            Column("status", no_wrap=True),
            "last sync",
            "last rebuild",
            "metrics until",
            Column("why", overflow="fold"),
        )
        for r in rows:
            table.add_row(
                r["tenantId"],
                r["status"],
                r["lastSyncAt"] or "never",
                r["lastRebuildAt"] or "never",
                r["maxDate"] or "-",
                "; ".join(x["code"] for x in r["reasons"]),
            )
        console.print(table)
    if any(r["status"] in ALARMING for r in rows):
        raise typer.Exit(1)


@tenants_app.command("create")
def tenants_create(
    name: str,
    timezone: str | None = TIMEZONE,
    tenant_id: str | None = typer.Option(None, "--id"),
) -> None:
    """Add a seller."""
    t = create_tenant(engine(), name, zone_or_default(timezone), tenant_id)
    console.print(f"tenant {t['id']} created")


@tenants_app.command("list")
def tenants_list() -> None:
    """Every seller."""
    print_json(
        [{k: v for k, v in t.items() if not k.startswith("last_")} for t in list_tenants(engine())]
    )
