"""The real-Chromium fixture: Debian's chromium driven by Playwright (a pytest plugin,
registered in tests/conftest.py, so any test module can ask for `browser`)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.env import IN_CI

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PASSWORD = "correct horse battery"
SELLER, ADMIN = "ana@loja1.com", "ops@superseller.dev"  # the web tests' users
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    """One per module, closed at its end: Playwright's sync API allows one at a time, and
    its event loop must not outlive the module (later tests run their own `asyncio.run`)."""
    if not os.path.exists(CHROMIUM):
        reason = "Debian's chromium is not installed (apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"CI=true requires a browser: {reason}")
        pytest.skip(reason)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


# Playwright's `expect` waits 5 s by default: on a loaded two-core CI machine (four xdist
# workers) a page's script can take longer to show what it will show. 20 s, unless a test
# says otherwise; a test that passes waits no longer for it.
expect.set_options(timeout=20_000)

EXTERNAL = re.compile(r"^https?://(?!127\.0\.0\.1[:/])")


def new_page(browser, width=1280):
    page = browser.new_page(viewport={"width": width, "height": 900}, locale="pt-BR")
    page.route(EXTERNAL, lambda route: route.abort())
    return page


def login(browser, url, email, width=1280):
    page = new_page(browser, width)
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
    page.screenshot(path=str(SHOTS / f"{name}-{width}-top.png"))  # the first screen
