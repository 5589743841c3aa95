"""`superseller market sources list | add | disable | enable` and `superseller market drops`."""

from __future__ import annotations

import typer
from rich.table import Table

from superseller.cli.common import CliError, console, engine, print_json
from superseller.market import prices, sources
from superseller.tenants import TenantNotFound, get_tenant

app = typer.Typer(
    help="Market data: harvest sources and competitor price drops.", no_args_is_help=True
)
sources_app = typer.Typer(help="What the daily harvest collects, per tenant.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")

TENANT = typer.Option(..., "--tenant", help="Tenant id.")


def _tenant(tenant: str) -> str:
    try:
        return get_tenant(engine(), tenant)["id"]
    except TenantNotFound:
        raise CliError(f"tenant {tenant!r} not found", 1) from None


@sources_app.command("list")
def list_(tenant: str = TENANT, json_: bool = typer.Option(False, "--json")) -> None:
    """The tenant's sources (defaults are made per active listing at each harvest)."""
    rows = sources.list_sources(engine(), _tenant(tenant))
    if json_:
        print_json(rows)
        return
    table = Table("id", "kind", "category", "query", "origin", "enabled", "last harvest")
    for s in rows:
        table.add_row(
            str(s["id"]),
            s["kind"],
            s["categoryId"] or "",
            s["query"] or "",
            s["origin"],
            "yes" if s["enabled"] else "no",
            s["lastHarvestedAt"] or "never",
        )
    console.print(table)


@sources_app.command()
def add(
    tenant: str = TENANT,
    kind: str = typer.Option(..., help="search | trends"),
    category: str | None = typer.Option(None, help="Mercado Livre category, e.g. MLB1055."),
    query: str | None = typer.Option(None, help="Search keywords."),
) -> None:
    """Add a source (or re-enable the same one)."""
    try:
        s = sources.add(engine(), _tenant(tenant), kind, category, query)
    except sources.SourceError as exc:
        raise CliError(str(exc), 2) from None
    console.print(f"source {s['id']} ({s['kind']} {s['categoryId'] or ''} {s['query'] or ''}) on")


def _switch(tenant: str, source_id: int, on: bool) -> None:
    try:
        sources.set_enabled(engine(), _tenant(tenant), source_id, on)
    except sources.SourceError as exc:
        raise CliError(str(exc), 1) from None
    console.print(f"source {source_id} {'enabled' if on else 'disabled'}")


@sources_app.command()
def disable(source_id: int = typer.Argument(..., min=1), tenant: str = TENANT) -> None:
    """Stop harvesting a source (it stays disabled, default or not)."""
    _switch(tenant, source_id, False)


@sources_app.command()
def enable(source_id: int = typer.Argument(..., min=1), tenant: str = TENANT) -> None:
    """Harvest a source again."""
    _switch(tenant, source_id, True)


@app.command()
def drops(tenant: str = TENANT, limit: int = typer.Option(20, min=1, max=500)) -> None:
    """Competitors' price drops on items comparable to the tenant's listings."""
    rows = prices.alerts(engine(), _tenant(tenant), None, limit)
    if not rows:  # an empty table would not say why
        console.print(
            f"no price drops for {tenant}: a drop is a comparable item at least "
            f"{prices.DROP_MIN:.0%} cheaper than its capture of an earlier day, so it takes "
            "harvests on two days (the daily-harvest schedule runs at 02:00 America/Sao_Paulo)"
        )
        return
    table = Table("listing", "item", "title", "from", "to", "drop", "day")
    for a in rows:
        table.add_row(
            str(a["listingId"]),
            a["itemId"],
            a["title"][:40],
            f"{a['oldPrice']:.2f}",
            f"{a['newPrice']:.2f}",
            f"{a['dropPct']:.0%}",
            a["capturedDay"],
        )
    console.print(table)
