"""What the pages' script says when an API call fails, in a real browser: always pt-BR, never
the API's own (English) text. An ended session asks to sign in again, with a link to the
login page; a request the origin guard refused asks to reload; the refresh's own refusals,
written for the seller (a store without an account), are shown as they are."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from superseller.http.sessions import SESSION_COOKIE
from superseller.mercadolivre.disconnect import disconnect_account
from superseller.users.accounts import create_user, set_password
from superseller.wiring import build_registry
from tests.support.api import serving
from tests.support.browser import PASSWORD, SELLER, login, new_page
from tests.support.ml import connected_tenant, sandbox, settings_for

ENGLISH = ("log in first", "did not come from", "reload the page", "erro 4")


@pytest.fixture
def store(engine, tmp_path):
    """A connected store (never synced: the overview offers "Atualizar dados") and its seller."""
    with sandbox(listings=3) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        create_user(engine, SELLER, PASSWORD, "seller", "t1")
        yield sb, settings


def no_english(text: str) -> None:
    assert not any(words in text for words in ENGLISH), text


def test_a_refresh_after_the_session_ended_asks_to_sign_in_again(browser, store, engine):
    sb, settings = store
    with serving(settings, engine, build_registry(settings)) as url:
        page = login(browser, url, SELLER)
        expect(page.locator("#refresh")).to_be_visible()
        # The session ends on the server (a password change ends every session), the page
        # is still open: its next call is a 401.
        set_password(engine, SELLER, "another good password")
        page.locator("#refresh").click()
        status = page.locator("#refresh-status")
        expect(status).to_have_text("Sua sessão expirou. Entre de novo para atualizar.")
        no_english(status.inner_text())
        expect(page.locator("#refresh")).to_be_enabled()  # no endless spinner
        link = status.get_by_role("link", name="Entre de novo")
        expect(link).to_have_attribute("href", "/entrar")
        link.click()
        page.wait_for_url(f"{url}/entrar")
        expect(page.locator("#login-form")).to_be_visible()
        page.close()


def test_a_request_the_origin_guard_refuses_asks_to_reload(browser, store, engine):
    """The server's public URL names another origin than the page's (the seller opened it
    through another address): the guard refuses the page's POSTs with a 403."""
    sb, settings = store
    settings = settings.model_copy(update={"public_url": "http://superseller.example"})
    with serving(settings, engine, build_registry(settings)) as url:
        page = new_page(browser)
        # The login form's POST is refused too, in pt-BR.
        page.goto(f"{url}/entrar")
        page.fill("input[name=email]", SELLER)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        error = page.locator("#login-error")
        expect(error).to_have_text("Não foi possível entrar. Recarregue a página e tente de novo.")
        no_english(error.inner_text())

        # Signed in by an API client (no Origin: not a browser), the cookie in the browser.
        r = httpx.post(f"{url}/api/v1/auth/login", json={"email": SELLER, "password": PASSWORD})
        assert r.status_code == 200, r.text
        page.context.add_cookies([{"name": SESSION_COOKIE, "value": r.json()["token"], "url": url}])
        page.goto(f"{url}/")
        page.locator("#refresh").click()
        status = page.locator("#refresh-status")
        expect(status).to_have_text(
            "Não foi possível atualizar. Recarregue a página e tente de novo."
        )
        no_english(status.inner_text())
        expect(status.get_by_role("link")).to_have_count(0)
        page.close()


def test_the_refreshs_own_words_for_the_seller_are_kept(browser, store, engine):
    """A store disconnected meanwhile (another tab): the refresh's 409 is written in pt-BR for
    the seller, and the page shows it rather than a generic text."""
    sb, settings = store
    with serving(settings, engine, build_registry(settings)) as url:
        page = login(browser, url, SELLER)
        expect(page.locator("#refresh")).to_be_visible()
        disconnect_account(engine, "t1", SELLER)
        page.locator("#refresh").click()
        expect(page.locator("#refresh-status")).to_have_text(
            "Não foi possível atualizar: Conecte sua conta do Mercado Livre para atualizar os dados."
        )
        page.close()


def test_a_refresh_without_an_answer_says_so_in_portuguese(browser, store, engine):
    """The network fails (the request gets no answer at all): a pt-BR text, not the
    browser's "Failed to fetch"."""
    sb, settings = store
    with serving(settings, engine, build_registry(settings)) as url:
        page = login(browser, url, SELLER)
        page.route(f"{url}/api/v1/refresh*", lambda route: route.abort("internetdisconnected"))
        page.locator("#refresh").click()
        status = page.locator("#refresh-status")
        expect(status).to_have_text("Não foi possível atualizar agora. Tente de novo em instantes.")
        expect(page.locator("#refresh")).to_be_enabled()
        page.close()
