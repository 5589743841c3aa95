"""`superseller score`: score a tenant's listings and show the weakest with their actions."""

from __future__ import annotations

import typer
from rich.table import Table
from sqlalchemy import select

from superseller.cli.common import console, engine
from superseller.cli.inline import outcome, run_job_now
from superseller.db.schema import listings
from superseller.metrics.queries import sort_listings
from superseller.tenants import get_tenant


def score(
    tenant: str = typer.Option(..., help="Tenant id."),
    show: int = typer.Option(10, min=0, max=10_000, help="How many of the lowest scores to list."),
) -> None:
    """Score every listing of a tenant (0-100) and list the lowest with what to do next."""
    get_tenant(engine(), tenant)
    job = run_job_now("score_listings", {"tenantId": tenant}, tenant, "scoring listings")
    result = outcome(job, "scoring")
    with engine().connect() as conn:
        rows = [
            {
                "id": r.external_id,
                "title": r.title,
                "score": r.score,
                "breakdown": r.score_breakdown,
            }
            for r in conn.execute(select(listings).where(listings.c.tenant_id == tenant))
        ]
    table = Table("listing", "title", "score", "next action")
    for r in sort_listings(rows, "score", descending=False)[:show]:
        actions = (r["breakdown"] or {}).get("actions") or [{"text": "-"}]
        table.add_row(r["id"], r["title"][:40], str(r["score"]), actions[0]["text"])
    console.print(table)
    console.print(f"{result['listingsScored']} listings scored, average {result['averageScore']}")
