"""A link to a page (a bookmark, a shared `/anuncios?dias=7`, an expired session's
"Entre de novo") survives the login: the login returns to it, and only ever to a path of
this site."""

from urllib.parse import quote

import httpx
import pytest

from tests.support.api import PASSWORD, serving_store
from tests.support.api import client as signed_in
from tests.support.browser import new_page

SELLER = "ana@loja1.com"
WANTED = "/anuncios?dias=7&status=paused"


@pytest.fixture
def url(engine, tmp_path):
    with serving_store(engine, tmp_path, SELLER) as u:
        yield u


def test_a_page_asked_for_signed_out_is_where_the_login_returns(url):
    away = httpx.get(f"{url}{WANTED}")
    assert away.status_code == 303
    assert away.headers["location"] == f"/entrar?volta={quote(WANTED, safe='')}"
    form = httpx.get(f"{url}{away.headers['location']}")
    assert form.status_code == 200 and 'data-back="/anuncios?dias=7&amp;status=paused"' in form.text
    # The overview itself, and the login page, need no return address.
    assert httpx.get(f"{url}/").headers["location"] == "/entrar"
    with signed_in(url, SELLER) as c:  # already signed in: straight there
        assert c.get(f"/entrar?volta={quote(WANTED, safe='')}").headers["location"] == WANTED


@pytest.mark.parametrize(
    "volta",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "evil",
        "/a\r\nSet-Cookie: x=1",
    ],
)
def test_the_login_never_returns_to_another_site(url, volta):
    form = httpx.get(f"{url}/entrar", params={"volta": volta})
    assert form.status_code == 200 and 'data-back="/"' in form.text
    with signed_in(url, SELLER) as c:
        assert c.get("/entrar", params={"volta": volta}).headers["location"] == "/"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_seller_signing_in_from_a_shared_link_lands_on_it(browser, url):
    page = new_page(browser)
    page.goto(f"{url}{WANTED}")
    page.wait_for_url(f"{url}/entrar?volta=*")
    page.fill("input[name=email]", SELLER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}{WANTED}")
    page.close()
