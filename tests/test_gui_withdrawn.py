"""The window of a till the backend withdrew or gave a new token: the scan screen says so in big words
instead of verdicts, every scan or typed code says it again and decides nothing, a manager exports the
unsent outbox from there. Real widgets offscreen, the real store, the real backend in process, the device
withdrawn by the backend's own operations."""

from __future__ import annotations

import json
import os
import sqlite3
import stat

import pytest
from PySide6.QtCore import Qt

from pos_app.store import TillStore, standing
from pos_app.sync.redeem import redeem

pytestmark = pytest.mark.allow_log_warnings(r"the backend answered device_(revoked|rolled)")


def device_id(env) -> str:
    with TillStore(env.store_path) as store:
        return store.device_id


def stored_state(env) -> str | None:
    with TillStore(env.store_path) as store:
        return standing.withdrawn(store)


def decided(env) -> int:
    conn = sqlite3.connect(env.store_path)
    try:
        return conn.execute("SELECT count(*) FROM attempts WHERE state = 'done'").fetchone()[0]
    finally:
        conn.close()


def type_code(qtbot, window, text):
    window.activateWindow()
    window.entry.setFocus()
    with qtbot.waitSignal(window.verdict_shown, timeout=8000) as blocker:
        qtbot.keyClicks(window.entry, text)
        qtbot.keyClick(window.entry, Qt.Key.Key_Return)
    return blocker.args[0]


def test_a_revoked_till_shows_it_instead_of_verdicts_and_decides_nothing(qtbot, make_window, till_env):
    window = make_window(language="en", background_sync=False)
    assert type_code(qtbot, window, till_env.claim()["short_code"]).verdict.accepted
    till_env.api.backend.revoke_device(device_id(till_env))
    done = decided(till_env)
    # The redemption meets the 401: no verdict, the state instead.
    assert type_code(qtbot, window, till_env.claim(1, "other")["short_code"]) is None
    panel = window.scan_screen.withdrawn
    assert panel.isVisible() and not window.panel.isVisible()
    assert panel.headline.text() == "This till was withdrawn — call your manager"
    assert not panel.export_button.isVisible()  # a cashier's screen: calling the manager is the thing to do
    # Every input from now on gives the same, never an offline accept; nothing is decided.
    till_env.online = False
    for text in (till_env.claim(1, "third")["short_code"], "CAFE50", "garbage"):
        assert type_code(qtbot, window, text) is None
        assert panel.isVisible()
    assert decided(till_env) == done
    assert stored_state(till_env) == standing.REVOKED
    window.refresh_status()
    qtbot.waitUntil(lambda: window.status_line.online_badge.text() == "● Withdrawn", timeout=5000)
    # Its words follow the language.
    window.set_language("es")
    assert panel.headline.text() and panel.isVisible()


def test_a_till_withdrawn_before_it_starts_says_so_at_once_and_a_manager_exports(qtbot, make_window, till_env,
                                                                                 tmp_path):
    with TillStore(till_env.store_path) as store:
        redeem(store, "CAFE50", method="printed")  # queued offline, never sent
        standing.mark(store, standing.ROLLED, "test")
    window = make_window(role="manager", language="en")
    panel = window.scan_screen.withdrawn
    qtbot.waitUntil(panel.isVisible, timeout=5000)
    assert panel.headline.text() == "This till must be enrolled again"
    assert panel.export_button.isVisible()
    out = tmp_path / "outbox.json"
    window.withdrawal.export_to(str(out))
    qtbot.waitUntil(lambda: panel.note.isVisible(), timeout=5000)
    assert panel.note.text() == f"Saved 1 unsent entries to {out}."
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert json.loads(out.read_text())["withdrawn"] == standing.ROLLED
    window.withdrawal.export_to(str(out))  # never over an existing file
    qtbot.waitUntil(lambda: panel.note.text().startswith("Not exported:"), timeout=5000)
    assert "exists already" in panel.note.text()
    assert json.loads(out.read_text())["count"] == 1
    # The sync engine asks nothing of the backend for a till whose token is known bad.
    qtbot.wait(500)
    assert sum(client.requests for client in till_env.clients) == 0


def test_a_pin_change_that_meets_the_withdrawal_says_so_and_the_till_keeps_it(qtbot, make_window, till_env):
    from test_gui_window import LEGACY_PIN, pin_dialog, try_pin, type_new_pin, with_legacy_pin

    manager = with_legacy_pin(till_env)
    window = make_window(role=None, language="en", background_sync=False)
    assert try_pin(qtbot, window, manager["id"], LEGACY_PIN) == ""
    dialog = pin_dialog(qtbot, window)
    till_env.api.backend.revoke_device(device_id(till_env))
    with qtbot.waitSignal(dialog.withdrawn, timeout=10000):
        type_new_pin(dialog, "864213")
    assert dialog.message.text() == "The backend no longer accepts this till: the PIN was not changed."
    qtbot.waitUntil(window.scan_screen.withdrawn.isVisible, timeout=5000)
    qtbot.waitUntil(lambda: stored_state(till_env) == standing.REVOKED, timeout=5000)
