"""The dashboard in a real browser (Debian's chromium driven by Playwright), against a
server on real HTTP with a sandbox seller synced through the job engine.

Screenshots of every page at 1280 and 390 px land in artifacts/screenshots/.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from superseller.db.schema import jobs, order_items, orders
from superseller.jobs.cron import zone
from superseller.jobs.queue import Queue
from superseller.metrics.rules import COUNTED_ORDER_STATUSES
from superseller.sandbox.data import orders_between
from superseller.tenants import create_tenant
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support.api import serving
from tests.support.inproc import running_worker, wait_status
from tests.support.ml import connected_tenant, sandbox, settings_for
from tests.test_mercadolivre import run_sync

SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
PASSWORD = "correct horse battery"
SELLER, ADMIN = "ana@loja1.com", "ops@superseller.dev"


def hours_with_new_orders(spec, now: datetime) -> int:
    """The shortest look-back (at least 6 h) in which the sandbox seller got a paid order.
    Orders follow the hour of the day, so a fixed 6 h can be empty at night in Brazil."""
    for lag in (6, 9, 12, 18, 24, 36, 48):
        new = orders_between(spec, now - timedelta(hours=lag), now, now)
        if any(o["status"] in COUNTED_ORDER_STATUSES for o in new):
            return lag
    raise AssertionError("the sandbox seller sold nothing in 48 hours")


@pytest.fixture
def shop(engine, tmp_path):
    """A seller synced some hours ago (the sandbox's clock; long enough for new paid orders
    to arrive by now), and a never-synced second tenant."""
    with sandbox(listings=30, history_days=40) as sb:
        now = datetime.now(UTC)
        sb.state.frozen_at = now - timedelta(hours=hours_with_new_orders(sb.state.spec, now))
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        registry = build_registry(settings)
        done = run_sync(engine, registry, days_back=40)
        assert done["status"] == "completed", done["last_error"]
        with running_worker(engine, registry):
            wait_status(engine, done["result"]["rebuildJobId"], "completed")
            wait_status(engine, done["result"]["scoreJobId"], "completed")
        create_tenant(engine, "Loja Parada", tenant_id="t2")
        create_user(engine, SELLER, PASSWORD, "seller", "t1")
        create_user(engine, ADMIN, PASSWORD, "admin")
        with serving(settings, engine, registry) as url:
            yield {"url": url, "sandbox": sb, "registry": registry}


def login(browser, url, email, width=1280):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(f"{url}/entrar")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    return page


def shot(page, name, width):
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}-{width}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000


def db_totals(engine, tenant, days):
    """The oracle, from the synced orders themselves: paid orders created in the last `days`
    local days (distinct), their items' quantity x unit price, and units."""
    end = datetime.now(UTC).astimezone(zone("America/Sao_Paulo")).date()
    window = (
        orders.c.tenant_id == tenant,
        orders.c.created_local_date.between(end - timedelta(days=days - 1), end),
        orders.c.status.in_(COUNTED_ORDER_STATUSES),
    )
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).where(*window)).scalar()
        revenue, units = conn.execute(
            select(
                func.sum(order_items.c.quantity * order_items.c.unit_price),
                func.sum(order_items.c.quantity),
            )
            .select_from(order_items.join(orders, orders.c.id == order_items.c.order_id))
            .where(*window)
        ).one()
    return float(revenue or 0), int(n), int(units or 0)


def card(page, key):
    return page.locator(f".kpi[data-key={key}]")


def test_cards_equal_the_database_for_7_and_30_days(browser, shop, engine):
    page = login(browser, shop["url"], SELLER)
    for days in (7, 30):
        page.goto(f"{shop['url']}/?dias={days}")
        revenue, orders, units = db_totals(engine, "t1", days)
        assert orders > 0
        assert float(card(page, "revenue").get_attribute("data-value")) == pytest.approx(revenue)
        assert int(card(page, "orders").get_attribute("data-value")) == orders
        assert int(card(page, "units").get_attribute("data-value")) == units
        expect(card(page, "orders").locator(".value")).to_have_text(f"{orders:,}".replace(",", "."))
        expect(page.locator("#freshness")).to_contain_text("Atualizado até")
        expect(page.locator("#chart .main-svg").first).to_be_visible()  # the chart drew
    page.close()


def test_refresh_shows_progress_then_the_new_numbers(browser, shop, engine):
    page = login(browser, shop["url"], SELLER)
    before = db_totals(engine, "t1", 7)
    expect(card(page, "orders")).to_have_attribute("data-value", str(before[1]))
    shop["sandbox"].state.frozen_at = datetime.now(UTC)  # hours of new orders (see `shop`)
    with engine.connect() as conn:
        syncs = conn.execute(
            select(func.count()).where(jobs.c.type == "sync_mercadolivre")
        ).scalar()
    with running_worker(engine, shop["registry"]):
        button = page.locator("#refresh")
        button.dblclick()  # a double click must not start two refreshes
        expect(button).to_be_disabled()
        expect(page.locator("#refresh-status")).to_contain_text("Atualizando")
        page.wait_for_load_state()
        expect(page.locator("#refresh")).to_be_enabled(timeout=60_000)  # reloaded when done
        after = db_totals(engine, "t1", 7)
        assert after[1] > before[1]
        expect(card(page, "orders")).to_have_attribute("data-value", str(after[1]))
    with engine.connect() as conn:
        assert (
            conn.execute(select(func.count()).where(jobs.c.type == "sync_mercadolivre")).scalar()
            == syncs + 1
        )
    page.close()


def test_a_failed_refresh_says_why_and_offers_to_reconnect(browser, shop, engine):
    sb = shop["sandbox"]
    httpx.post(f"{sb.url}/_sandbox/revoke", json={})  # the seller revoked the app
    httpx.post(f"{sb.url}/_sandbox/expire-tokens")
    page = login(browser, shop["url"], SELLER)
    with running_worker(engine, shop["registry"]):
        page.locator("#refresh").click()
        status = page.locator("#refresh-status")
        expect(status).to_contain_text("Não foi possível atualizar", timeout=60_000)
        expect(status).to_contain_text("Reconecte sua conta do Mercado Livre")
        expect(page.locator("#refresh")).to_be_enabled()
    page.reload()
    expect(page.locator("#freshness")).to_contain_text("Desatualizado")
    expect(page.get_by_role("link", name="Reconectar Mercado Livre")).to_be_visible()
    page.close()


def test_a_seller_cannot_open_the_jobs_page(browser, shop):
    page = login(browser, shop["url"], SELLER)
    expect(page.locator("header nav")).not_to_contain_text("Jobs")
    response = page.goto(f"{shop['url']}/jobs")
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("Acesso restrito")
    page.close()


def test_an_admin_retries_a_failed_job(browser, shop, engine):
    job_id = (
        Queue(engine, shop["registry"])
        .enqueue(
            "metrics_aggregation",
            {"tenantId": "t2", "from": "2026-01-01", "to": "2026-01-02"},
            tenant_id="t2",
        )
        .id
    )
    with engine.begin() as conn:  # fail it as a worker would have
        conn.execute(
            jobs.update()
            .where(jobs.c.id == job_id)
            .values(status="failed", attempts=3, last_error="boom", finished_at=datetime.now(UTC))
        )
    page = login(browser, shop["url"], ADMIN)
    page.goto(f"{shop['url']}/jobs?state=failed")
    row = page.locator(f"tr[data-job='{job_id}']")
    expect(row).to_contain_text("boom")
    row.get_by_role("link").click()
    page.get_by_role("button", name="Tentar novamente").click()
    page.locator("dialog#confirm").get_by_role("button", name="Confirmar").click()
    expect(page.locator("#job-state")).to_have_text("na fila")  # reloaded, not failed
    with engine.connect() as conn:
        status, attempts = conn.execute(
            select(jobs.c.status, jobs.c.attempts).where(jobs.c.id == job_id)
        ).one()
    assert (status, attempts) == ("pending", 0)
    page.close()


def test_a_stale_tenant_shows_desatualizado(browser, shop):
    page = login(browser, shop["url"], ADMIN)
    page.goto(f"{shop['url']}/?loja=t2")
    badge = page.locator("#freshness")
    expect(badge).to_have_attribute("data-status", "stale")
    expect(badge).to_contain_text("Desatualizado")
    expect(badge).to_contain_text("Nenhuma sincronização concluída")
    page.close()


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("width", [1280, 390])
def test_screenshots_of_every_page(browser, shop, width):
    url = shop["url"]
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(f"{url}/entrar")
    shot(page, "login", width)
    page.close()
    page = login(browser, url, ADMIN, width)
    for name, path in [
        ("overview-7", "/?loja=t1&dias=7"),
        ("overview-30", "/?loja=t1&dias=30"),
        ("listings", "/anuncios?loja=t1&ordem=score&direcao=asc"),
        ("jobs", "/jobs"),
        ("stale", "/?loja=t2"),
    ]:
        assert page.goto(url + path).status == 200
        page.wait_for_load_state("networkidle")
        shot(page, name, width)
    page.close()
