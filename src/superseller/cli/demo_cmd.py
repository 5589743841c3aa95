"""`superseller demo`: the whole product on one machine, no accounts needed.

Embedded SQLite in a data directory, the sandbox seller served over real HTTP,
the OAuth connection, a sync and rebuild through the real job engine, the
overview for 7 and 30 days, then a worker and the scheduler keep running (the
sandbox keeps producing orders and visits, and notifies each new order to the
webhook, so the dashboard follows sales within seconds) until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from superseller import ptbr
from superseller.cli.common import CliError, console
from superseller.cli.inline import outcome, run_job_now
from superseller.config import Settings
from superseller.db import migrate
from superseller.db.engine import make_engine
from superseller.jobs.clock import SystemClock
from superseller.jobs.default_schedules import ensure_defaults
from superseller.metrics.freshness import tenant_freshness
from superseller.metrics.queries import complete_period, overview
from superseller.tenants import create_tenant
from superseller.users.accounts import UserError, create_user
from superseller.wiring import build_registry

TENANT = "demo"
SELLER_LOGIN = "loja@demo.superseller"
ADMIN_LOGIN = "admin@demo.superseller"
DEMO_PASSWORD = "superseller-demo"


def _show(eng, days: int, tz: str) -> None:
    # Complete days, as the dashboard shows them: never half of today beside full days.
    start, end = complete_period(tz, datetime.now(UTC), days)
    o = overview(eng, TENANT, start, end, top=5)
    c = o["cards"]
    table = Table(
        title=f"Visão geral — últimos {days} dias completos ({start:%d/%m} a {end:%d/%m})"
    )
    for col in ("", "valor", "período anterior", "variação"):
        table.add_column(col, justify="right" if col else "left")
    rows = [
        ("Receita", ptbr.brl, "revenue"),
        ("Pedidos", ptbr.number, "orders"),
        ("Unidades", ptbr.number, "units"),
        ("Visitas", ptbr.number, "visits"),
        (
            "Conversão",
            lambda v: ptbr.percent(v, 2),
            "conversion",
        ),
        ("Ticket médio", ptbr.brl, "avgTicket"),
    ]
    for label, fmt, key in rows:
        card = c[key]
        table.add_row(
            label,
            fmt(card["value"]) if card["value"] is not None else "—",
            fmt(card["previous"]) if card["previous"] is not None else "—",
            ptbr.signed_pct(card["changePct"]),
        )
    console.print(table)
    top = Table(title="Anúncios que mais venderam")
    for col in ("anúncio", "receita", "pedidos"):
        top.add_column(col)
    for t in o["topListings"]:
        top.add_row(
            f"{t['externalId']} {t['title']}", ptbr.brl(t["revenue"]), ptbr.number(t["orders"])
        )
    console.print(top)


def _check_port(host: str, port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            raise CliError(
                f"port {port} on {host} is taken; choose another with --port", 2
            ) from None


def demo(
    data_dir: Path | None = typer.Option(None, help="Keep the data here (default: a temp dir)."),
    listings: int = typer.Option(200, min=1, max=5000, help="Sandbox seller's listings."),
    history_days: int = typer.Option(90, min=7, max=150, help="Days of history to sync."),
    once: bool = typer.Option(False, help="Stop after the first sync and overview."),
    host: str = typer.Option("127.0.0.1", help="Where the dashboard listens."),
    port: int = typer.Option(8000, min=1, max=65535),
) -> None:
    """Run the product locally: SQLite + the sandbox seller, no accounts needed."""
    # Imported here: the sandbox and the web stack are for this command only (CLI start-up).
    import httpx

    from superseller.api.deps import Services
    from superseller.cli.serve_cmd import own_redirect_uri, run_server
    from superseller.mercadolivre.connect import connect_sandbox
    from superseller.sandbox.data import SellerSpec
    from superseller.sandbox.server import start_in_thread

    _check_port(host, port)
    # A directory of our own is removed on the way out (Ctrl-C included): its database
    # points at this run's sandbox, which ends with it. `--data-dir` is kept.
    directory = data_dir or Path(tempfile.mkdtemp(prefix="superseller-demo-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        sandbox = start_in_thread(
            SellerSpec(listings=listings, history_days=history_days, start=datetime.now(UTC))
        )
        settings = Settings(
            data_dir=directory,
            database_url=f"sqlite:///{directory / 'superseller.db'}",
            ml_api_url=sandbox.url,
            ml_auth_url=f"{sandbox.url}/authorization",
            ml_client_id="sandbox-app",
            ml_client_secret="sandbox-secret",
            # "Conectar" again (after "Desconectar") comes back to this demo's own server
            ml_redirect_uri=own_redirect_uri("", host, port),
            ml_requests_per_s=0,
            ml_concurrency=8,
        )
        eng = make_engine(settings.resolved_database_url())
        reg = build_registry(settings)
        console.print(f"[b]SuperSeller demo[/b] — data in {directory}, sandbox at {sandbox.url}")
        migrate.upgrade(eng)
        ensure_defaults(eng, reg, timezone=settings.timezone)
        from superseller.tenants import TenantNotFound, get_tenant

        try:
            get_tenant(eng, TENANT)
        except TenantNotFound:
            create_tenant(eng, "Loja Demo", settings.timezone, tenant_id=TENANT)
            connect_sandbox(eng, settings, TENANT, datetime.now(UTC))
            console.print("Mercado Livre (sandbox) conectado.")
        sync = run_job_now(
            "sync_mercadolivre",
            {"tenantId": TENANT, "daysBack": history_days},
            TENANT,
            "Sincronizando com o Mercado Livre",
            eng=eng,
            reg=reg,
            settings=settings,
        )
        r = outcome(sync, "sync")
        console.print(
            f"{r['listings']} anúncios, {r['orders']} pedidos e {r['visitDays']} dias de "
            f"visitas sincronizados ({r['requests']} chamadas à API)."
        )

        def follow_up(job_type: str, payload: dict, label: str, key: str, what: str) -> None:
            """One of the jobs the sync queued (rebuilds, score), joined by its unique key
            and run here now, rather than a new one the server's worker would repeat."""
            done = run_job_now(
                job_type,
                {"tenantId": TENANT, **payload},
                TENANT,
                label,
                unique_key=key,
                say_joined=False,
                eng=eng,
                reg=reg,
                settings=settings,
            )
            outcome(done, what)

        spans = [(r["daysTouched"]["from"], r["daysTouched"]["to"]), *map(tuple, r["extraDays"])]
        for a, b in spans:
            span = {"from": a, "to": b}
            key = f"rebuild:{TENANT}:{a}:{b}"
            follow_up("metrics_aggregation", span, "Atualizando métricas diárias", key, "rebuild")
        for days in (7, 30):
            _show(eng, days, settings.timezone)
        f = tenant_freshness(eng, TENANT, datetime.now(UTC))
        console.print(
            f"Status: [b]{f['label']}[/b]"
            + (f" (até {f['updatedUntil']})" if f["updatedUntil"] else "")
        )
        follow_up(
            "score_listings", {}, "Calculando notas dos anúncios", f"score:{TENANT}", "scoring"
        )
        if once:
            sandbox.stop()
            return
        for email, role, tenant in ((SELLER_LOGIN, "seller", TENANT), (ADMIN_LOGIN, "admin", None)):
            with contextlib.suppress(UserError):  # already there from an earlier run
                create_user(eng, email, DEMO_PASSWORD, role, tenant)
        url = f"http://{host}:{port}"
        console.print(
            f"\n[b]Painel:[/b] {url}   login [b]{SELLER_LOGIN}[/b] / senha "
            f"[b]{DEMO_PASSWORD}[/b] (administrador: {ADMIN_LOGIN}, mesma senha)"
        )
        console.print(
            "API, worker e agendador rodando; o sandbox continua gerando pedidos. Ctrl-C para parar."
        )
        # The sandbox notifies its sales to our webhook, as Mercado Livre would: the dashboard
        # follows them on its own (retries compressed: the server starts just below).
        local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        httpx.post(
            f"{sandbox.url}/_sandbox/notifications",
            json={
                "callback_url": f"http://{local}:{port}/api/v1/mercadolivre/notifications",
                "retry_scale": 0.01,
            },
            timeout=10,
        ).raise_for_status()
        svc = Services(settings=settings, engine=eng, registry=reg, clock=SystemClock())
        try:
            run_server(svc, host, port, with_worker=True, with_scheduler=True, log_level="warning")
        finally:
            console.print("stopping…")
            sandbox.stop()
            eng.dispose()
    finally:
        if data_dir is None:
            shutil.rmtree(directory, ignore_errors=True)
