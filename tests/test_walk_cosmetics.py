"""What a person meets on a walk through the dashboard: an address that does not exist is a
pt-BR page for a browser (JSON for the API), and a day the calendar does not have (30/02/2026)
is told so instead of asking for the format it already follows."""

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.api import client as signed_in
from tests.support.api import serving_store
from tests.support.browser import new_page

SELLER = "ana@loja1.com"
# What Chromium sends when it navigates to an address.
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


@pytest.fixture
def url(engine, tmp_path):
    with serving_store(engine, tmp_path, SELLER) as u:
        yield u


def _is_the_not_found_page(r: httpx.Response) -> None:
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "Página não encontrada" in r.text and "Voltar à visão geral" in r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_an_unknown_address_is_a_portuguese_page_for_a_browser_json_for_the_api(url):
    _is_the_not_found_page(httpx.get(f"{url}/nao-existe", headers={"Accept": BROWSER}))
    with signed_in(url, SELLER) as c:  # signed in too: the page has the session's header
        _is_the_not_found_page(c.get("/nao-existe", headers={"Accept": BROWSER}))
    # A mistyped asset link is the same 404 (it was a 422 naming the parameter "name").
    for path in ("/static/nao-existe.css", "/static/console/nao-existe.js"):
        _is_the_not_found_page(httpx.get(f"{url}{path}", headers={"Accept": BROWSER}))
    for path, kind in (("/static/app.css", "text/css"), ("/static/console/console.js", "java")):
        asset = httpx.get(f"{url}{path}")
        assert asset.status_code == 200 and kind in asset.headers["content-type"], path
    for path in ("/nao-existe", "/api/v1/nao-existe"):
        api = httpx.get(f"{url}{path}", headers={"Accept": "application/json"})
        assert api.status_code == 404 and api.headers["cache-control"] == "no-store"
        assert api.json() == {"error": {"code": "http_404", "message": "Not Found"}}
    # A GET a browser can make on a path that takes only POST: the same kind of page.
    refused = httpx.get(f"{url}/api/v1/auth/login", headers={"Accept": BROWSER})
    assert refused.status_code == 405 and refused.headers["allow"] == "POST"
    assert "Este endereço não aceita este tipo de pedido." in refused.text


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_browser_at_an_unknown_address_reads_portuguese(browser, url):
    page = new_page(browser)
    assert page.goto(f"{url}/nao-existe").status == 404
    expect(page.locator("h1")).to_have_text("Página não encontrada")
    expect(page.get_by_role("link", name="Voltar à visão geral")).to_be_visible()
    page.close()


FORMAT_HINT = "use o formato dd/mm/aaaa (por exemplo, 01/12/2026)."


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "de=30/02/2026&ate=01/03/2026",
            "Data inválida em “De”: 30/02/2026 não existe no calendário.",
        ),
        (
            "de=01/11/2026&ate=31/11/2026",
            "Data inválida em “Até”: 31/11/2026 não existe no calendário.",
        ),
        # as the date field sends it (aaaa-mm-dd), said back as the seller writes it
        (
            "de=2026-02-29&ate=2026-03-01",
            "Data inválida em “De”: 29/02/2026 não existe no calendário.",
        ),
        (
            "de=2026-13-01&ate=2026-11-02",
            "Data inválida em “De”: 01/13/2026 não existe no calendário.",
        ),
        ("de=30-02-2026&ate=01/03/2026", f"Data inválida em “De”: {FORMAT_HINT}"),
        ("de=01/02/2026&ate=ontem", f"Data inválida em “Até”: {FORMAT_HINT}"),
    ],
)
def test_a_day_the_calendar_lacks_is_told_apart_from_a_wrong_format(url, query, message):
    with signed_in(url, SELLER) as c:
        page = c.get(f"/?{query}")
        csv = c.get(f"/metricas.csv?{query}")
    assert page.status_code == 422 and message in page.text
    assert csv.status_code == 422 and message in csv.text


def test_the_api_says_a_day_does_not_exist_in_a_clear_400(url):
    with signed_in(url, SELLER) as c:
        for path in ("/api/v1/metrics/overview", "/api/v1/metrics/explain", "/api/v1/listings"):
            r = c.get(path, params={"from": "2026-02-30", "to": "2026-03-05"})
            assert r.status_code == 400, (path, r.text)
            assert r.json()["error"] == {
                "code": "invalid_range",
                "message": "from 2026-02-30 does not exist in the calendar",
            }
        wrong = c.get("/api/v1/metrics/overview", params={"from": "2026-03-01", "to": "5/3/2026"})
    assert wrong.status_code == 400
    assert wrong.json()["error"]["message"] == "to must be a date YYYY-MM-DD, got '5/3/2026'"
