"""The dashboard in a real browser (Debian's chromium driven by Playwright), against a
server on real HTTP with a sandbox seller synced through the job engine.

Screenshots of every page at 1280 and 390 px land in artifacts/screenshots/.
"""

import csv
import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect
from sqlalchemy import func, select, update

from superseller.db.schema import (
    jobs,
    listings,
    ml_notifications,
    order_items,
    orders,
    tenant_metrics_daily,
    tenants,
)
from superseller.jobs.cron import zone
from superseller.jobs.pause import set_paused
from superseller.jobs.queue import Queue
from superseller.metrics.freshness import RECOVERED_ATTEMPTS
from superseller.metrics.rules import COUNTED_ORDER_STATUSES
from superseller.sandbox.data import item_id, orders_between
from superseller.tenants import create_tenant
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support.api import serving
from tests.support.browser import ADMIN, EXTERNAL, PASSWORD, SELLER, login, new_page, shot
from tests.support.inproc import running_worker, wait_status
from tests.support.ml import connected_tenant, run_sync, sandbox, settings_for


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
    with sandbox(listings=60, history_days=40) as sb:
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
            yield {"url": url, "sandbox": sb, "registry": registry, "settings": settings}


# The browser talks to this machine only: listing thumbnails point at Mercado Livre's image
# host, which a test must not reach (the page shows a grey square instead).
def db_totals(engine, tenant, days, today=False):
    """The oracle, from the synced orders themselves: paid orders created in the last `days`
    complete local days (ending yesterday; `today`: ending today), distinct, their items'
    quantity x unit price, and units."""
    end = datetime.now(UTC).astimezone(zone("America/Sao_Paulo")).date()
    end -= timedelta(days=0 if today else 1)
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
        expect(page.locator("#period")).to_contain_text(f"Últimos {days} dias completos")
        # the chart drew: one bar per day, each with a pt-BR tooltip
        expect(page.locator("[data-panel=revenue] rect.bar")).to_have_count(days)
        tips = page.locator("[data-panel=revenue] rect.hover title").all_text_contents()
        assert len(tips) == days and all(" · Receita R$\u00a0" in t for t in tips)
    page.close()


def test_refresh_shows_progress_then_the_new_numbers(browser, shop, engine):
    page = login(browser, shop["url"], SELLER)
    before = db_totals(engine, "t1", 8, today=True)  # the 7 complete days and today

    def shown_orders():
        return int(card(page, "orders").get_attribute("data-value")) + int(
            page.locator("#today").get_attribute("data-orders") or 0
        )

    assert shown_orders() == before[1]
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
        # reloaded when done, saying what changed
        expect(page.locator("#refresh-status")).to_contain_text("Dados atualizados", timeout=60_000)
        after = db_totals(engine, "t1", 8, today=True)
        assert after[1] > before[1]
        assert shown_orders() == after[1]
        new = after[1] - before[1]
        expect(page.locator("#refresh-status")).to_contain_text(
            f"+{new} pedido{'s' if new > 1 else ''}"
        )
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
        # Without a reload by hand, the page becomes the reconnect page (its badge, its
        # button; no "Atualizar dados" any more) and still says why the refresh failed.
        reconnect = page.get_by_role("link", name="Reconectar Mercado Livre")
        expect(reconnect).to_be_visible(timeout=60_000)
        expect(page.locator("#freshness")).to_have_attribute("data-status", "reauth_required")
        expect(page.locator("#last-failure")).to_contain_text("Não foi possível atualizar")
        expect(page.locator("#last-failure")).to_contain_text("Reconecte sua conta")
        expect(page.locator("#refresh")).to_have_count(0)
    page.reload()
    expect(page.locator("#last-failure")).to_have_count(0)  # said once
    expect(page.locator("#freshness")).to_have_attribute("data-status", "reauth_required")
    expect(page.locator("#freshness")).to_contain_text("Desatualizado")
    expect(page.get_by_role("link", name="Reconectar Mercado Livre")).to_be_visible()
    page.close()


def test_visits_missing_after_a_sync_show_as_partial_until_the_next_sync(browser, shop, engine):
    """A listing whose visits Mercado Livre kept refusing through both passes of a sync: the
    badge says the numbers are partial and how many listings lack visits (amber, not green);
    the next sync that gets them turns it back to "Atualizado até"."""
    sb = shop["sandbox"]
    registry = build_registry(shop["settings"].model_copy(update={"ml_max_tries": 2}))

    def sync() -> None:
        done = run_sync(engine, registry)
        assert done["status"] == "completed", done["last_error"]
        with running_worker(engine, registry):
            wait_status(engine, done["result"]["rebuildJobId"], "completed")

    httpx.post(f"{sb.url}/_sandbox/faults", json={"visits_fail_ids": [item_id(sb.state.spec, 5)]})
    sync()
    page = login(browser, shop["url"], SELLER)
    badge = page.locator("#freshness")
    expect(badge).to_have_attribute("data-status", "partial")
    expect(badge).to_contain_text("Parcial: Faltam as visitas de 1 anúncio")
    expect(badge).to_contain_text("a próxima sincronização busca de novo")
    expect(badge).to_have_class(re.compile(r"\bwarn\b"))
    expect(badge).not_to_have_class(re.compile(r"\bok\b"))
    httpx.post(f"{sb.url}/_sandbox/faults", json={})
    sync()
    page.reload()
    expect(badge).to_have_attribute("data-status", "ok")
    expect(badge).to_contain_text("Atualizado até")
    page.close()


def test_a_refresh_that_left_visits_missing_says_so(browser, shop, engine):
    """ "Atualizar dados" ran a sync that could not get two listings' visits (Mercado Livre
    kept failing through both passes): the completion message says so, with how many, and
    that the next sync tries again; the badge turns "Parcial"."""
    sb = shop["sandbox"]
    registry = build_registry(shop["settings"].model_copy(update={"ml_max_tries": 2}))
    victims = [item_id(sb.state.spec, 5), item_id(sb.state.spec, 9)]
    httpx.post(f"{sb.url}/_sandbox/faults", json={"visits_fail_ids": victims})
    page = login(browser, shop["url"], SELLER)
    expect(page.locator("#freshness")).to_have_attribute("data-status", "ok")
    with running_worker(engine, registry):
        page.locator("#refresh").click()
        status = page.locator("#refresh-status")
        expect(status).to_contain_text("Dados atualizados", timeout=90_000)
        expect(status).to_contain_text(
            "As visitas de 2 anúncios não vieram do Mercado Livre; "
            "a próxima sincronização tenta de novo."
        )
        expect(status).to_have_class(re.compile(r"\bpartial\b"))
    expect(page.locator("#freshness")).to_have_attribute("data-status", "partial")
    # The next refresh gets them all: no such words any more.
    httpx.post(f"{sb.url}/_sandbox/faults", json={})
    with running_worker(engine, registry):
        page.locator("#refresh").click()
        expect(status).to_contain_text("Atualizando")
        expect(status).not_to_have_class(re.compile(r"\bpartial\b"))  # not the last one's amber
        # "Dados atualizados:" (a colon) is written only after the reload, from the new data.
        expect(status).to_contain_text("Dados atualizados:", timeout=90_000)
    expect(status).not_to_contain_text("visitas")
    expect(page.locator("#freshness")).to_have_attribute("data-status", "ok")
    page.close()


def test_the_seller_pages_load_without_a_failed_request(browser, shop):
    """No 404 behind the pages (a missing icon filled every browser console with one)."""
    page = login(browser, shop["url"], SELLER)
    failed = []
    page.on("response", lambda r: failed.append((r.status, r.url)) if r.status >= 400 else None)
    for path in ("/", "/anuncios"):
        page.goto(f"{shop['url']}{path}")
        page.wait_for_load_state("networkidle")
    icon = page.request.get(f"{shop['url']}/static/favicon.svg")
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert page.locator("link[rel=icon]").get_attribute("href") == "/static/favicon.svg"
    assert not failed, failed
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


def test_a_seller_without_an_account_is_asked_to_connect(browser, shop):
    page = login(browser, shop["url"], ADMIN)
    page.goto(f"{shop['url']}/?loja=t2")
    box = page.locator("#onboarding")
    expect(box).to_have_attribute("data-state", "not_connected")
    expect(box).to_contain_text("Conecte sua conta do Mercado Livre")
    link = page.get_by_role("link", name="Conectar Mercado Livre")
    assert link.get_attribute("href") == "/api/v1/mercadolivre/connect?tenantId=t2"
    # nothing that is bound to fail: no refresh, no R$ 0,00 cards, no empty chart
    expect(page.locator("#refresh")).to_have_count(0)
    expect(page.locator(".kpi")).to_have_count(0)
    expect(page.locator("#chart")).to_have_count(0)
    # the button leads to Mercado Livre's authorization page (the sandbox's)
    r = page.request.get(shop["url"] + link.get_attribute("href"), max_redirects=0)
    assert r.status == 303 and r.headers["location"].startswith(shop["sandbox"].url)
    page.close()


def test_honest_periods_today_apart_and_the_change_explained(browser, shop):
    page = login(browser, shop["url"], SELLER)
    expect(page.locator("#period")).to_contain_text("Últimos 7 dias completos")
    expect(page.locator("#period")).to_contain_text("comparado com")
    expect(page.locator("#today h2")).to_contain_text(re.compile(r"Hoje até \d\d:\d\d"))
    expect(page.locator("#today h2")).to_contain_text("parcial, não comparado")
    # the explanation is the API's, and its parts sum to the change shown
    api = page.request.get(f"{shop['url']}/api/v1/metrics/explain?days=7").json()
    expect(page.locator("#explain-sentence")).to_have_text(api["sentence"])
    parts = page.locator("li[data-effect]")
    expect(parts).to_have_count(len(api["effects"]))
    values = [
        Decimal(v) for v in (parts.nth(i).get_attribute("data-value") for i in range(parts.count()))
    ]
    assert sum(values) == Decimal(str(api["revenue"]["change"])).quantize(Decimal("0.01"))
    # 30 days: the 30 before them were never synced (40 days of history): no comparison
    page.goto(f"{shop['url']}/?dias=30")
    expect(page.locator("#no-comparison")).to_have_text("sem comparação (histórico insuficiente)")
    expect(card(page, "revenue").locator(".delta").first).to_have_text("sem comparação")
    expect(page.locator("#explain-sentence")).to_contain_text(
        "Sem comparação (histórico insuficiente)"
    )
    page.close()


def test_a_custom_range_is_checked_in_portuguese(browser, shop):
    page = login(browser, shop["url"], SELLER)
    page.fill("input[name=de]", "2026-11-20")
    page.fill("input[name=ate]", "2026-11-10")
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Aplicar").click()
    assert nav.value.status == 422
    expect(page.locator("#range-error")).to_have_text(
        "A data final (10/11/2026) é anterior à inicial (20/11/2026): inverta as datas."
    )
    expect(page.locator(".kpi")).to_have_count(0)  # no silent fallback to 7 days
    expect(page.locator("input[name=de]")).to_have_value("2026-11-20")  # kept as typed
    for query, message in [
        (
            "de=1999-12-31&ate=2000-01-05",
            "A data em “De” deve estar entre 01/01/2000 e 31/12/2100.",
        ),
        ("de=2024-01-01&ate=2026-01-01", "O período tem 732 dias; o máximo é 400."),
        ("de=2026-11-01", "Informe as duas datas, “De” e “Até”."),
        (
            "de=2026/11/01&ate=2026-11-02",
            "Data inválida em “De”: use o formato dd/mm/aaaa (por exemplo, 01/12/2026).",
        ),
        (
            "de=01/11/2026&ate=31/11/2026",
            "Data inválida em “Até”: 31/11/2026 não existe no calendário.",
        ),
    ]:
        assert page.goto(f"{shop['url']}/?{query}").status == 422
        expect(page.locator("#range-error")).to_have_text(message)
    assert page.goto(f"{shop['url']}/?de=2026-11-01&ate=2026-11-07").status == 200
    expect(page.locator("#period")).to_contain_text("Período escolhido · 01/11 a 07/11")
    # The format the message asks for is taken too (one digit as well), and shown back in
    # the date fields, also when the range is refused: nothing to type again.
    assert page.goto(f"{shop['url']}/?de=1/11/2026&ate=07/11/2026").status == 200
    expect(page.locator("#period")).to_contain_text("Período escolhido · 01/11 a 07/11")
    expect(page.locator("input[name=de]")).to_have_value("2026-11-01")
    assert page.goto(f"{shop['url']}/?de=07/11/2026&ate=1/11/2026").status == 422
    expect(page.locator("input[name=de]")).to_have_value("2026-11-07")
    expect(page.locator("input[name=ate]")).to_have_value("2026-11-01")
    page.close()


@pytest.mark.parametrize("days", [7, 30])
def test_the_overview_weighs_under_300_kb(browser, shop, days):
    """First load with an empty cache: every request's headers and (compressed) body."""
    page = login(browser, shop["url"], SELLER)
    fresh = browser.new_context(viewport={"width": 1280, "height": 900})
    fresh.route(EXTERNAL, lambda route: route.abort())
    fresh.add_cookies(page.context.cookies())
    page.close()
    page = fresh.new_page()
    loaded = []
    page.on("requestfinished", lambda req: loaded.append(req))
    began = time.perf_counter()
    response = page.goto(f"{shop['url']}/?dias={days}")
    page.wait_for_load_state("load")
    elapsed = time.perf_counter() - began
    assert response.status == 200
    assert response.headers.get("content-encoding") == "gzip"
    sizes = {r.url: r.sizes() for r in loaded}
    total = sum(s["responseBodySize"] + s["responseHeadersSize"] for s in sizes.values())
    print(
        f"\noverview {days} days: {len(sizes)} requests, {total / 1024:.1f} KB transferred,"
        f" loaded in {elapsed * 1000:.0f} ms"
    )
    assert {u.rsplit("/", 1)[-1] for u in sizes} >= {"app.css", "app.js"}
    assert total <= 300 * 1024
    fresh.close()


def accessibility_problems(page) -> list[str]:
    """axe-core (from the axe-playwright-python package) run in the page: the serious and
    critical violations, one line each."""
    found = Axe().run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def horizontal_overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


PAGES = [
    ("overview-7", "/?loja=t1&dias=7", 200),
    ("overview-30", "/?loja=t1&dias=30", 200),
    ("overview-range-error", "/?loja=t1&de=2026-11-20&ate=2026-11-10", 422),
    ("listings", "/anuncios?loja=t1&ordem=score&direcao=asc", 200),
    ("listings-page-2", "/anuncios?loja=t1&pagina=2", 200),
    ("jobs", "/jobs", 200),
    ("onboarding", "/?loja=t2", 200),
    ("not-found", "/nao-existe", 404),
]


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_screenshot_accessibility_and_no_sideways_scroll(browser, shop, width):
    url = shop["url"]
    page = new_page(browser, width)
    page.goto(f"{url}/entrar")
    shot(page, "login", width)
    problems = {"login": accessibility_problems(page)}
    page.close()
    page = login(browser, url, ADMIN, width)
    for name, path, status in PAGES:
        assert page.goto(url + path).status == status, name
        page.wait_for_load_state("networkidle")
        shot(page, name, width)
        assert horizontal_overflow(page) <= 0, f"{name} scrolls sideways at {width} px"
        problems[name] = accessibility_problems(page)
    if width == 390:  # the score explanation is reachable on a phone
        page.goto(url + "/anuncios?loja=t1")
        why = page.locator("details.why summary").first
        expect(why).to_be_visible()
        why.click()
        expect(page.locator("details.why p").first).to_be_visible()
    page.close()
    assert {k: v for k, v in problems.items() if v} == {}


def test_error_pages_are_portuguese_html_for_browsers_and_json_for_the_api(browser, shop):
    page = login(browser, shop["url"], SELLER)
    for path, status, title in [
        ("/nao-existe", 404, "Página não encontrada"),
        ("/?dias=abc", 422, "Endereço com valores inválidos"),
        ("/jobs", 403, "Acesso restrito"),
    ]:
        assert page.goto(shop["url"] + path).status == status
        expect(page.locator("h1")).to_have_text(title)
        expect(page.get_by_role("link", name="Voltar à visão geral")).to_be_visible()
    page.goto(shop["url"] + "/?dias=abc")
    expect(page.locator(".details")).to_have_text("O valor de “dias” não é válido.")
    api = httpx.get(shop["url"] + "/nao-existe", headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.json()["error"]["code"] == "http_404"
    page.close()


# A 1x1 PNG: what Mercado Livre's image CDN answers, here served by the test.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def test_thumbnails_from_mercado_livres_image_host_are_shown(browser, shop):
    """The page's Content-Security-Policy lets Mercado Livre's image CDN through (it
    blocked every thumbnail once: the other tests abort external hosts, so none saw it)."""
    page = login(browser, shop["url"], SELLER)
    refused = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    page.route(
        re.compile(r"^https://[^/]*mlstatic\.com/"),
        lambda route: route.fulfill(status=200, content_type="image/png", body=PIXEL),
    )
    page.goto(shop["url"] + "/anuncios")
    thumb = page.locator("img.thumb").first
    expect(thumb).to_have_count(1)
    thumb.scroll_into_view_if_needed()  # thumbnails load lazily
    page.wait_for_function("() => document.querySelector('img.thumb').complete")
    assert thumb.evaluate("i => i.naturalWidth") == 1
    assert refused == []
    page.close()


def test_listings_search_filter_pages_clip_and_csv(browser, shop, engine):
    url = shop["url"]
    page = login(browser, url, SELLER)
    page.goto(f"{url}/anuncios")
    rows = page.locator("table.listings tbody tr")
    expect(rows).to_have_count(50)  # 50 a page, counted on the server
    expect(page.locator("#page-info")).to_have_text("Página 1 de 2 · 1–50 de 60")
    first = rows.first
    # the thumbnail (over https); here its host is unreachable, so a grey square stands in
    expect(first.locator(".thumb")).to_have_count(1)
    html = page.request.get(f"{url}/anuncios").text()
    assert html.count('<img class="thumb" src="https://http2.mlstatic.com/') == 50
    expect(first.get_by_role("link", name=re.compile("Ver no Mercado Livre"))).to_have_attribute(
        "href", re.compile(r"^https://produto\.mercadolivre\.com\.br/")
    )
    with page.expect_navigation():
        page.get_by_role("link", name="Próxima →").click()
    expect(page.locator("#page-info")).to_have_text("Página 2 de 2 · 51–60 de 60")
    expect(rows).to_have_count(10)
    # search by title, accent- and case-blind
    word = rows.first.locator(".name").inner_text().split()[0]
    page.get_by_label("Buscar").fill(word.upper())
    with page.expect_navigation():
        page.get_by_role("button", name="Filtrar").click()
    names = rows.locator(".name").all_inner_texts()
    assert names and all(word.casefold() in n.casefold() for n in names)
    # paused listings (the sandbox pauses those out of stock): "Reponha o estoque" comes
    # first, whatever else would gain more; Mercado Livre reactivates none without stock
    page.goto(f"{url}/anuncios?status=paused")
    assert rows.count() > 0
    for i in range(rows.count()):
        expect(rows.nth(i)).to_have_attribute("data-status", "paused")
        expect(rows.nth(i).locator(".first-action")).to_contain_text("Reponha o estoque")
    # mark a clip: the existing clips API, the row re-scored in place
    page.goto(f"{url}/anuncios?clip=nao-verificado")
    row = rows.first
    lid = int(row.get_attribute("data-id"))
    row.locator("select[data-clip]").select_option("true")
    expect(row.locator(".clip-status")).to_contain_text("Salvo: nota")
    with engine.connect() as conn:
        assert (
            conn.execute(select(listings.c.has_clips_override).where(listings.c.id == lid)).scalar()
            is True
        )
    page.goto(f"{url}/anuncios?clip=tem")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-id", str(lid))
    # CSV of what the page shows, pt-BR numbers
    page.goto(f"{url}/anuncios")
    with page.expect_download() as dl:
        page.get_by_role("link", name="anúncios (1.234,56)").click()
    text = Path(dl.value.path()).read_text(encoding="utf-8-sig")
    lines = text.splitlines()
    assert lines[0].startswith("id;titulo;status;preco;estoque")
    assert len(lines) == 61  # all 60 listings, not one page
    assert re.search(r";\d+,\d\d;", lines[1])  # decimal comma
    statuses = {row[2] for row in csv.reader(lines[1:], delimiter=";")}
    assert statuses and statuses <= {"Ativo", "Pausado", "Encerrado", "Em revisão"}, statuses
    page.close()


def test_refresh_while_the_engine_is_paused_says_so(browser, shop, engine):
    set_paused(engine, True, reason="manutenção do banco")
    page = login(browser, shop["url"], SELLER)
    expect(page.locator("#paused")).to_contain_text("pausado pela equipe")
    expect(page.locator("#paused")).to_contain_text("manutenção do banco")
    page.locator("#refresh").click()
    status = page.locator("#refresh-status")
    expect(status).to_contain_text("pausado", timeout=15_000)
    expect(status).to_contain_text("ficou na fila")
    expect(page.locator("#refresh")).to_be_enabled()  # no endless spinner
    page.close()


def test_a_first_import_that_loses_the_grant_turns_into_the_reconnect_page(browser, shop, engine):
    """The first import fails because the seller revoked the app meanwhile: the page that
    followed the import becomes the reconnect page by itself (badge, button), saying why."""
    url, sb = shop["url"], shop["sandbox"]
    create_tenant(engine, "Loja Quatro", tenant_id="t4")
    create_user(engine, "quatro@loja4.com", PASSWORD, "seller", "t4")
    shop["settings"].ml_redirect_uri = f"{url}/api/v1/mercadolivre/callback"
    page = login(browser, url, "quatro@loja4.com")
    httpx.post(f"{sb.url}/_sandbox/login-as", json={"user_id": 770078})
    page.get_by_role("link", name="Conectar Mercado Livre").click()
    page.wait_for_url(re.compile(r"/\?conectado=1&importacao=\d+$"))
    expect(page.locator("#importing")).to_contain_text("Importando seus dados…")
    httpx.post(f"{sb.url}/_sandbox/revoke", json={"user_id": 770078})  # this seller's grant
    httpx.post(f"{sb.url}/_sandbox/expire-tokens")
    with running_worker(engine, shop["registry"]):
        reconnect = page.get_by_role("link", name="Reconectar Mercado Livre")
        expect(reconnect).to_be_visible(timeout=90_000)
    expect(page.locator("#last-failure")).to_contain_text("A importação não terminou")
    expect(page.locator("#freshness")).to_have_attribute("data-status", "reauth_required")
    page.close()


def test_a_new_sellers_first_day(browser, shop, engine):
    """Sign in -> connect through the sandbox's OAuth -> first import -> the overview -> out."""
    url = shop["url"]
    create_tenant(engine, "Loja Nova", tenant_id="t3")
    create_user(engine, "nova@loja3.com", PASSWORD, "seller", "t3")
    shop["settings"].ml_redirect_uri = f"{url}/api/v1/mercadolivre/callback"
    page = login(browser, url, "nova@loja3.com")
    expect(page.locator("#onboarding")).to_contain_text("Conecte sua conta do Mercado Livre")
    # Another Mercado Livre seller than the shop's (one account belongs to one store).
    httpx.post(f"{shop['sandbox'].url}/_sandbox/login-as", json={"user_id": 770077})
    page.get_by_role("link", name="Conectar Mercado Livre").click()  # the sandbox approves
    # The callback queued the first import by itself: its progress, and no R$ 0,00 meanwhile.
    page.wait_for_url(re.compile(r"/\?conectado=1&importacao=\d+$"))
    expect(page.locator("#onboarding")).to_have_attribute("data-state", "importing")
    expect(page.locator("#importing")).to_contain_text("Importando seus dados…")
    # a neutral state while it runs, never a red "Desatualizado"
    expect(page.locator("#freshness")).to_have_text("Primeira importação em andamento")
    expect(page.locator("main")).not_to_contain_text("Desatualizado")
    expect(page.locator(".kpi")).to_have_count(0)
    with running_worker(engine, shop["registry"]):  # the page reloads itself until it is done
        page.goto(f"{url}/")
        expect(page.locator("#period")).to_contain_text("Últimos 7 dias completos", timeout=90_000)
    expect(page.locator("#onboarding")).to_have_count(0)
    revenue, orders, units = db_totals(engine, "t3", 7)
    assert orders > 0
    expect(card(page, "orders")).to_have_attribute("data-value", str(orders))
    expect(page.locator("#explain-sentence")).not_to_be_empty()
    page.get_by_role("button", name="Sair").click()
    page.wait_for_url(f"{url}/entrar")
    page.close()


def focus_path(page, presses: int) -> list[str]:
    """What Tab reaches, in order: each focused element's visible text or label."""
    seen = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        seen.append(
            page.evaluate(
                "(() => { const e = document.activeElement;"
                " return (e.getAttribute('aria-label') || e.innerText || e.value || '').trim(); })()"
            )
        )
    return seen


def test_every_action_is_on_the_keyboard_path(browser, shop):
    page = login(browser, shop["url"], SELLER, width=390)
    path = focus_path(page, 30)
    for action in ("7 dias", "30 dias", "Aplicar", "Atualizar dados", "Sair"):
        assert action in path, (action, path[:40])
    page.goto(f"{shop['url']}/anuncios")
    path = focus_path(page, 40)
    for action in ("Filtrar", "por que esta nota?"):
        assert action in path, (action, path[:40])
    assert any(p.startswith("Ver no Mercado Livre") for p in path)
    assert any(p.startswith("Clip de ") for p in path)
    page.close()


def fits(page, width):
    """Nothing wider than the screen (no sideways scroll of the whole page)."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("width", [1280, 390])
def test_an_admin_picks_a_store(browser, shop, width):
    url = shop["url"]
    page = login(browser, url, ADMIN, width)
    picker = page.get_by_label("Loja")
    expect(picker.locator("option")).to_have_text(["Loja Parada", "Loja t1"])
    expect(page.locator("h1")).to_contain_text("Loja Parada")  # the first, by name
    picker.select_option(label="Loja t1")
    with page.expect_navigation():
        page.get_by_role("button", name="Abrir").click()
    assert "loja=t1" in page.url
    expect(page.locator("h1")).to_contain_text("Loja t1")
    expect(page.get_by_label("Loja")).to_have_value("t1")
    expect(page.locator(".kpi")).to_have_count(6)
    fits(page, width)
    shot(page, "admin-store-picker", width)
    page.goto(f"{url}/anuncios?loja=t1")  # the listings page switches too
    page.get_by_label("Loja").select_option(label="Loja Parada")
    with page.expect_navigation():
        page.get_by_role("button", name="Abrir").click()
    assert "/anuncios?loja=t2" in page.url
    fits(page, width)
    page.close()
    seller = login(browser, url, SELLER, width)  # one store: nothing new
    expect(seller.locator("#store-picker")).to_have_count(0)
    seller.close()


def test_disconnecting_from_the_dashboard_keeps_the_data(browser, shop, engine):
    from superseller.mercadolivre.connect import connect_sandbox

    url = shop["url"]
    for width, email in ((390, SELLER), (1280, ADMIN)):
        page = login(browser, url, email, width)
        if email == ADMIN:
            page.goto(f"{url}/?loja=t1")
        dialog = page.locator("#disconnect-dialog")
        page.get_by_role("button", name="Desconectar").click()
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("continuam aqui")
        box = dialog.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width
        shot(page, "disconnect-confirm", width)
        dialog.get_by_role("button", name="Cancelar").click()
        expect(dialog).to_be_hidden()
        assert account_rows(engine) == 1  # cancelled: nothing happened
        page.get_by_role("button", name="Desconectar").click()
        dialog.get_by_role("button", name="Desconectar").click()
        expect(page.locator("#onboarding")).to_have_attribute("data-state", "disconnected")
        expect(page.locator("#onboarding")).to_contain_text("Conta do Mercado Livre desconectada")
        expect(page.locator("#freshness")).to_contain_text("Não conectado")
        expect(page.locator(".kpi")).to_have_count(6)  # the data stays
        expect(page.get_by_role("link", name="Conectar Mercado Livre")).to_be_visible()
        expect(page.locator("#refresh")).to_have_count(0)
        assert account_rows(engine) == 0
        fits(page, width)
        shot(page, "disconnected", width)
        page.close()
        connect_sandbox(engine, shop["settings"], "t1", datetime.now(UTC))  # for the next


def account_rows(engine):
    from superseller.db.schema import marketplace_accounts

    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(marketplace_accounts)).scalar()


@pytest.mark.parametrize("width", [1280, 390])
def test_declining_at_mercado_livre_offers_to_connect_again(browser, shop, engine, width):
    url = shop["url"]
    create_tenant(engine, "Loja Nova", tenant_id="t3")
    create_user(engine, "nova@loja3.com", PASSWORD, "seller", "t3")
    shop["settings"].ml_redirect_uri = f"{url}/api/v1/mercadolivre/callback"
    page = login(browser, url, "nova@loja3.com", width)

    # "Conectar Mercado Livre" as the button starts it (the state cookie lands in this
    # browser), then Mercado Livre's redirect after "Não permitir": an error, no code.
    start = page.request.get(
        url + page.get_by_role("link", name="Conectar Mercado Livre").get_attribute("href"),
        max_redirects=0,
    )
    assert start.status == 303
    state = httpx.URL(start.headers["location"]).params["state"]
    page.goto(
        f"{url}/api/v1/mercadolivre/callback?error=access_denied"
        f"&error_description=The+user+denied+access&state={state}"
    )
    expect(page.locator("h1")).to_have_text("Conexão não concluída")
    expect(page.locator("main")).to_contain_text("Você não autorizou o acesso")
    expect(page.locator("main")).not_to_contain_text("inválido")
    again = page.get_by_role("link", name="Conectar de novo")
    expect(again).to_be_visible()
    fits(page, width)
    shot(page, "oauth-declined", width)
    httpx.post(f"{shop['sandbox'].url}/_sandbox/login-as", json={"user_id": 770078})
    again.click()  # this time the sandbox approves
    page.wait_for_url(re.compile(r"/\?conectado=1&importacao=\d+$"))
    expect(page.locator("#freshness")).to_have_text("Primeira importação em andamento")
    expect(page.locator("#freshness")).to_have_class(re.compile("neutral"))
    expect(page.locator("#importing")).to_contain_text("Etapa 1 de 3")
    fits(page, width)
    shot(page, "first-import", width)
    page.close()


def test_live_updates_move_the_until_labels_and_a_stopped_feed_is_not_green(browser, shop, engine):
    """Synced at 10:16, a sale notified and applied at 10:46: the live poll swaps in the
    numbers and "Hoje até" / "Atualizado até" say 10:46 too, without a reload. A
    notification the webhook missed (recovered later) then shows "tempo real parado" in
    a warning pill, not the green one."""
    tz = zone("America/Sao_Paulo")
    now = datetime.now(UTC)
    midnight = datetime.combine(now.astimezone(tz).date(), datetime.min.time(), tz)
    synced = max(now - timedelta(minutes=30), midnight + timedelta(minutes=1))
    with engine.begin() as conn:
        conn.execute(
            update(tenants)
            .where(tenants.c.id == "t1")
            .values(last_sync_ok_at=synced, last_rebuild_ok_at=synced)
        )
    page = login(browser, shop["url"], SELLER)
    hhmm = synced.astimezone(tz).strftime("%H:%M")
    expect(page.locator("#today h2")).to_contain_text(f"Hoje até {hhmm}")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    with page.expect_response(lambda r: "/api/v1/metrics/version" in r.url):
        pass  # the live poll knows the version before the sale

    applied = datetime.now(UTC)
    note = {"tenant_id": "t1", "ml_user_id": 1, "topic": "orders_v2", "attempts": 1}
    with engine.begin() as conn:
        conn.execute(
            ml_notifications.insert().values(
                notification_id="live-1",
                resource="/orders/1",
                sent_at=applied,
                received_at=applied,
                processed_at=applied,
                outcome="processed",
                **note,
            )
        )
        last_day = conn.execute(
            select(func.max(tenant_metrics_daily.c.date)).where(
                tenant_metrics_daily.c.tenant_id == "t1"
            )
        ).scalar()
        conn.execute(  # what applying the sale did to the figures (the live version moves)
            update(tenant_metrics_daily)
            .where(
                tenant_metrics_daily.c.tenant_id == "t1", tenant_metrics_daily.c.date == last_day
            )
            .values(updated_at=applied)
        )
    local = applied.astimezone(tz)
    expect(page.locator("#today h2")).to_contain_text(f"Hoje até {local:%H:%M}", timeout=30_000)
    expect(page.locator("#freshness")).to_contain_text(
        f"Atualizado até {local:%d/%m} às {local:%H:%M} · tempo real"
    )
    expect(page.locator("#freshness")).to_have_class(re.compile(r"\bok\b"))
    assert page.evaluate("window.__sameDocument === true")  # updated in place

    missed = applied + timedelta(seconds=1)  # ML sent it after our last delivery
    with engine.begin() as conn:
        conn.execute(
            ml_notifications.insert().values(
                notification_id="missed-1",
                resource="/orders/2",
                sent_at=missed,
                received_at=missed,
                **{**note, "attempts": RECOVERED_ATTEMPTS},
            )
        )
    page.reload()
    expect(page.locator("#freshness")).to_contain_text("tempo real parado desde")
    expect(page.locator("#freshness")).to_have_class(re.compile(r"\bwarn\b"))
    expect(page.locator("#freshness")).not_to_have_class(re.compile(r"\bok\b"))
    page.close()
