"""Fixtures for the window's tests: a real backend (in process), an enrolled till, the real window.

Registered as a pytest plugin in conftest.py: tests name the fixtures (`till_env`,
`make_window`) and import only the helpers they call (`LoopGaps`, `scanner_types`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from api_fixtures import Api, copy_backend
from pos_app.words import i18n
from pos_app.sync.client import BackendClient
from pos_app.store import TillStore
from pos_app.sync.round import sync_once

class LoopGaps:
    """How long the event loop went without running a 10 ms timer, while in the `with` block."""

    def __init__(self):
        from PySide6.QtCore import QTimer

        self.gaps: list[float] = []
        self._last = time.monotonic()
        self._timer = QTimer(interval=10)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        self.gaps.append(now - self._last)
        self._last = now

    def __enter__(self) -> "LoopGaps":
        self._last = time.monotonic()
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.stop()

    @property
    def worst(self) -> float:
        return max(self.gaps, default=0.0)

    @property
    def total(self) -> float:
        return sum(self.gaps)


def scanner_types(text: str, *, gap_ms: int = 3, enter: bool = True, stall_after: int | None = None,
                  stall_s: float = 0.0, start_ms: int = 1_000_000) -> None:
    """Deliver `text` as a USB scanner's key presses, stamped by the window system `gap_ms` apart.

    The presses go straight to whatever has focus, one after another, as queued
    input does. `stall_after` keys in, the window "is busy" for `stall_s`
    (real time passes, the stamps don't): a scan must survive that.
    """
    from PySide6.QtCore import QEvent, Qt
    from PySide6.QtGui import QKeyEvent
    from PySide6.QtWidgets import QApplication

    keys = [(Qt.Key(ord(ch.upper())) if ch.isascii() else Qt.Key.Key_unknown, ch) for ch in text]
    if enter:
        keys.append((Qt.Key.Key_Return, "\r"))
    for index, (key, ch) in enumerate(keys):
        if index == stall_after:
            time.sleep(stall_s)
        event = QKeyEvent(QEvent.Type.KeyPress, key, Qt.KeyboardModifier.NoModifier, ch)
        event.setTimestamp(start_ms + index * gap_ms)
        QApplication.sendEvent(QApplication.focusWidget(), event)


class SwitchableTransport(httpx.BaseTransport):
    """The real backend app in process, or a refused connection while the test says the network is down."""

    def __init__(self, env: "TillEnv"):
        self.env = env

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not self.env.online:
            raise httpx.ConnectError("connection refused (network down in this test)", request=request)
        app = self.env.api.app
        if self.env.backend_delay_s:
            app = SlowApp(app, self.env.backend_delay_s)
        return httpx.WSGITransport(app=app).handle_request(request)


class SlowApp:
    """The real backend app behind a delay, as a slow network would give it."""

    def __init__(self, app, delay_s: float):
        self.app, self.delay_s = app, delay_s

    def __call__(self, environ, start_response):
        time.sleep(self.delay_s)
        return self.app(environ, start_response)


@dataclass
class TillEnv:
    api: Api
    store_path: Path
    staff: dict  # role -> {"id", "name", "pin", "role"}
    backend_delay_s: float = 0.0
    online: bool = True
    clients: list = field(default_factory=list)

    def open_client(self, store):
        """A backend client for the window's threads (its store thread, its sync engine)."""
        client = BackendClient("http://till-test", store.get("device_token"), timeout=5.0,
                               transport=SwitchableTransport(self))
        self.clients.append(client)
        return client

    def claim(self, n: int = 0, customer: str = "cust") -> dict:
        personal = [v for v in self.api.demo["vouchers"] if v["kind"] == "personal"]
        return self.api.backend.create_claim(personal[n]["id"], customer)

    def static_token(self) -> str:
        return self.api.backend.static_token(self.api.printed_code)


@pytest.fixture
def till_env(api_template, tmp_path) -> TillEnv:
    api = copy_backend(api_template, tmp_path / "backend")
    code = api.ok(api.client.post("/enrollment-codes", headers=api.admin, json={"store_id": api.store_id}), 201)["code"]
    transport = httpx.WSGITransport(app=api.app)
    with BackendClient("http://till-test", transport=transport) as anonymous:
        answer = anonymous.enroll(code, "Caja 1")
    store_path = tmp_path / "till" / "till.sqlite3"
    store_path.parent.mkdir()
    store = TillStore(store_path)
    try:
        store.save_enrollment(answer, "http://till-test")
        with store.transaction():  # the window's LAN service: this machine only, any free port, no mDNS
            for name, value in (("lan_bind", "127.0.0.1"), ("lan_port", 0), ("lan_discovery", "0")):
                store.write_setting(name, value)
        with BackendClient("http://till-test", answer["device_token"], transport=transport) as client:
            sync_once(store, client)
    finally:
        store.close()
    staff = {s["role"]: s for s in api.demo["staff"]}
    env = TillEnv(api, store_path, staff)
    yield env
    api.close()


@pytest.fixture
def make_window(qtbot, till_env):
    """Builds the real window on the till; logs in if asked; shuts it down after the test."""
    from pos_app.gui.app import make_application
    from pos_app.gui.main_window import TillWindow

    made = []

    def build(*, role: str | None = "cashier", camera: str | None = None, language: str = "es", **kwargs):
        make_application()
        window = TillWindow(till_env.store_path, camera=camera, sounds=False, open_client=till_env.open_client,
                            **kwargs)
        made.append(window)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(lambda: bool(window.info), timeout=5000)
        window.set_language(language)
        if role is not None:
            member = till_env.staff[role]
            window.login.reset(staff_id=member["id"])
            window.login.pin.setText(member["pin"])
            window.login.login_button.click()
            qtbot.waitUntil(lambda: window.staff is not None, timeout=5000)
        return window

    yield build
    for window in made:
        window.shutdown()
    i18n.set_language(i18n.DEFAULT_LANGUAGE)
