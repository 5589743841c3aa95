"""The first import's progress while Mercado Livre's answers are being retried: the line
says the sync is waiting on Mercado Livre instead of standing still on "(0 de 5)".

Real HTTP against the sandbox, a real worker, the status endpoint the dashboard polls; on
SQLite and PostgreSQL."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from superseller.sandbox import data
from tests import test_ml_connect as connect_tests
from tests.support.browser import login
from tests.support.inproc import running_worker
from tests.support.waiting import wait_until
from tests.test_ml_connect import authorize

flow = connect_tests.flow  # a seller logged in to a server, and the sandbox
WAITING = "aguardando o Mercado Livre"


def test_the_import_says_it_waits_on_mercado_livre_while_visits_are_retried(flow, engine):
    """Every visits call answers 500 for a while: the import's line (the status endpoint the
    dashboard polls, and the dashboard itself) says it is waiting on Mercado Livre; once
    Mercado Livre answers, the import finishes as usual."""
    browser, sb = flow
    ids = [data.item_id(sb.state.spec, i) for i in range(5)]
    httpx.post(f"{sb.url}/_sandbox/faults", json={"visits_fail_ids": ids})  # every visit: 500
    done = browser.get(authorize(browser, sb))
    job = int(httpx.URL(done.headers["location"]).params["importacao"])

    def text() -> str:
        return browser.get(f"/api/v1/refresh/{job}").json()["steps"]["text"] or ""

    with running_worker(engine, sb.registry):
        waiting = wait_until(
            lambda: WAITING in (t := text()) and t,
            timeout=60,
            interval=0.1,
            message="the import saying it waits on Mercado Livre",
        )
        # The step and its count as before, and why the count stands still.
        assert waiting.startswith(
            f"Etapa 1 de 3: buscando as visitas dos anúncios (0 de 5) · {WAITING}"
        ), waiting
        assert WAITING in browser.get(done.headers["location"]).text  # the dashboard too
        httpx.post(f"{sb.url}/_sandbox/faults", json={})  # Mercado Livre answers again
        final = wait_until(
            lambda: (s := browser.get(f"/api/v1/refresh/{job}").json())["state"] != "running" and s,
            timeout=120,
            message="the import's end",
        )
    assert final["state"] == "done" and final["message"] is None, final


def test_the_dashboard_shows_the_wait_while_the_import_runs(flow, engine, browser):
    """The dashboard the seller lands on after connecting follows the import by itself and
    shows the wait when it comes (its line had stood still on "(0 de 5)")."""
    http, sb = flow
    url = str(http.base_url).rstrip("/")
    ids = [data.item_id(sb.state.spec, i) for i in range(5)]
    httpx.post(f"{sb.url}/_sandbox/faults", json={"visits_fail_ids": ids})
    page = login(browser, url, "ana@loja.com")
    start = page.request.get(f"{url}/api/v1/mercadolivre/connect", max_redirects=0)
    assert start.status == 303
    page.goto(start.headers["location"])  # the sandbox approves, back to the dashboard
    page.wait_for_url(re.compile(r"/\?conectado=1&importacao=\d+$"))
    expect(page.locator("#importing")).to_contain_text("Etapa 1 de 3")
    with running_worker(engine, sb.registry):
        expect(page.locator("#import-step")).to_contain_text(WAITING, timeout=60_000)
        expect(page.locator("#import-step")).to_contain_text("visitas dos anúncios (0 de 5)")
        httpx.post(f"{sb.url}/_sandbox/faults", json={})  # Mercado Livre answers again
        expect(page.locator("#importing")).to_have_count(0, timeout=120_000)  # reloaded: done
    page.close()
