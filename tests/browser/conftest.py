"""Playwright (Python) driving Debian's Chromium, headless, against pytest-django's live server.

Skipped with a clear reason when no Chromium is installed (CI installs Debian's `chromium`).
Screenshots of failing tests land in var/screenshots/.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

# Playwright's sync API runs an event loop in this thread; the ORM calls in fixtures are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            if CHROMIUM is None:
                item.add_marker(pytest.mark.skip(reason="Chromium not installed (apt-get install chromium)"))


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, request, live_server):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15000)
    violations = csp_violations(page)
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"FAILED-{request.node.name}.png"), full_page=True)
    context.close()
    assert not violations, f"Content-Security-Policy blocked something: {violations}"


def csp_violations(page) -> list[str]:
    """Chromium reports every Content-Security-Policy refusal on the console; collect them for the page."""
    found: list[str] = []
    page.on(
        "console",
        lambda message: found.append(message.text) if "Content Security Policy" in message.text else None,
    )
    return found


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def login_as(page, live_server):
    """`login_as(user)`: puts a logged-in session cookie in the browser (skips the login form)."""
    from django.test import Client

    def login(user):
        client = Client()
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        page.context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}]
        )
        return page

    return login


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot to var/screenshots/<name>.png (to look at, and for CI artefacts)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def screenshots_at_widths(page, name: str, widths=(1440, 390)) -> list[Path]:
    """Full-page screenshots at desktop and phone widths (`<name>-<width>.png`); the viewport is restored."""
    before = page.viewport_size
    paths = []
    for width in widths:
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(400)  # responsive charts and maps lay out again after a resize
        paths.append(screenshot(page, f"{name}-{width}"))
    page.set_viewport_size(before)
    return paths


def clustered_asset_count(page, selector: str, zones: int) -> int:
    """Assets drawn on a map without a network: single circles (interactive paths beyond the zones) plus the
    numbers on the clusters."""
    singles = page.locator(f"{selector} path.leaflet-interactive").count() - zones
    return singles + sum(int(text) for text in page.locator(f"{selector} .asset-cluster").all_inner_texts())


@pytest.fixture
def cast(transactional_db):
    """The demo's organisations and users with the grid demo (zones, networks, assets) seeded."""
    from accounts import demo as accounts_demo
    from grid import demo

    cast = accounts_demo.seed()
    demo.seed(cast)
    return cast
