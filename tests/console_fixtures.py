"""The web console's fixtures: a backend on a loopback port, Debian's Chromium driven by Playwright, and
an HTTP client that signs in and fills forms as a browser would (its cookies, the form's token).

The browser is the system's (/usr/bin/chromium, installed by packaging/install.sh), never one
Playwright downloads; each test gets a fresh, empty browser context. The client speaks to the same
WSGI application in process, for the many bad-input cases where a browser adds only time.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import tempfile
from pathlib import Path

import httpx
import pytest

from server_stub.serving import EmbeddedServer

from api_fixtures import Api, copy_backend, drop_backend

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As the machine's notes say: no background traffic (this network refuses it), no sandbox as root.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Where tests leave the screenshots they take of pages, for a person to look at (never in the repository).
SHOTS_ROOT = Path(os.environ.get("PIKA_SHOTS") or tempfile.gettempdir()) / "pika-console-shots"
_TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


class ConsoleClient:
    """A browser-like client of the console: keeps cookies, reads each page's form token."""

    def __init__(self, api: Api):
        self.api = api
        self.http = httpx.Client(transport=httpx.WSGITransport(app=api.app), base_url="http://console.test",
                                 follow_redirects=False)
        self.last: httpx.Response | None = None

    def get(self, path: str, **kwargs) -> httpx.Response:
        self.last = self.http.get(path, **kwargs)
        return self.last

    def token(self, path: str | None = None) -> str:
        """A form token from `path` (fetched now) or the last page."""
        page = self.get(path) if path else self.last
        found = _TOKEN.findall(page.text)
        assert found, f"no form on {page.request.url}: {page.status_code} {page.text[:300]}"
        return html.unescape(found[-1])

    def post(self, path: str, data: dict, *, token_from: str | None = None, token: str | None = None,
             **kwargs) -> httpx.Response:
        """POST a form with a fresh token from `token_from` (default: `path` itself, as a browser would)."""
        if token is None and "csrf" not in data:
            token = self.token(token_from or path)
        body = {**data, **({"csrf": token} if token is not None else {})}
        self.last = self.http.post(path, data=body, **kwargs)
        return self.last

    def sign_in_operator(self, token: str | None = None) -> httpx.Response:
        response = self.post("/console/sign-in", {"how": "token", "token": token or self.api.admin_token},
                             token_from="/console/sign-in")
        assert response.status_code == 303, response.text[:500]
        return response

    def sign_in_staff(self, staff_id: str, pin: str) -> httpx.Response:
        return self.post("/console/sign-in", {"how": "staff", "staff_id": staff_id, "pin": pin},
                         token_from="/console/sign-in")

    def close(self) -> None:
        self.http.close()


def demo_staff(api: Api, role: str) -> dict:
    return next(s for s in api.demo["staff"] if s["role"] == role)


@pytest.fixture
def console_api(api_template, tmp_path) -> Api:
    """A backend of its own with the demo chain (SQLite)."""
    api = copy_backend(api_template, tmp_path / "backend")
    yield api
    drop_backend(api)


@pytest.fixture
def console(console_api) -> ConsoleClient:
    client = ConsoleClient(console_api)
    yield client
    client.close()


@pytest.fixture
def live_console(console_api):
    """The same backend on a loopback port, for a real browser: (url, api)."""
    server = EmbeddedServer(console_api.app).start()
    yield server.url, console_api
    server.stop()


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium under Playwright, headless: one browser for the session."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: packaging/install.sh installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium):
    """A fresh browser context (no cookies) at desktop width, and its page."""
    context = chromium.new_context(viewport=DESKTOP, locale="es-PY")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def sign_in_operator_in(page, url: str, token: str) -> None:
    page.goto(f"{url}/console/sign-in")
    page.fill("#operator-sign-in [name=token]", token)
    page.click("#operator-sign-in button[type=submit]")
    page.wait_for_url(f"{url}/console/")


def sign_in_staff_in(page, url: str, staff_id: str, pin: str) -> None:
    page.goto(f"{url}/console/sign-in")
    page.fill("#staff-sign-in [name=staff_id]", staff_id)
    page.fill("#staff-sign-in [name=pin]", pin)
    page.click("#staff-sign-in button[type=submit]")


# What every form's fields are tried with (tests/test_console_*.py): each must be a message on the page, and
# nothing written. Raw bytes that are no UTF-8 are sent as a body of their own (`post_raw`).
HOSTILE_TEXTS = {
    "empty": "",
    "spaces": "   ",
    "oversize": "x" * 5000,
    "script": "<script>alert(1)</script>",
    "attribute": '"><img src=x onerror=alert(1)>',
    "bidi": "Caja\u202e1 ajaC",
    "nul": "Caja\x00 1",
    "private_use": "Caja \ue000",
}
SCRIPT_MARKERS = ("<script>alert(1)</script>", "<img src=x onerror")


def assert_escaped(response: httpx.Response) -> None:
    """No hostile text comes back as markup: only escaped."""
    for marker in SCRIPT_MARKERS:
        assert marker not in response.text, f"unescaped {marker!r} in {response.request.url}"


def post_raw(client: ConsoleClient, path: str, body: bytes) -> httpx.Response:
    """A form body as bytes (a lone surrogate's or a broken UTF-8 sequence's), with a valid token."""
    token = client.token(path)
    return client.http.post(path, content=b"csrf=" + token.encode() + b"&" + body,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})


def unchanged(api: Api, action) -> httpx.Response:
    """Run `action`, and assert no row of the chain's tables changed (console sessions aside)."""
    before = api.snapshot()
    response = action()
    assert api.snapshot() == before, f"{response.request.url} wrote something: {response.status_code}"
    return response
