"""Run by test_gui_scanner_x11 in its own process, under xcb on a private Xvfb: real X key events."""

from __future__ import annotations

import os
import sqlite3
import subprocess

import pytest
from PySide6.QtWidgets import QApplication



def xdo(*args: str) -> None:
    # The window judges a burst by the X server's key timestamps, so a stall of xdotool itself (the
    # machine busy elsewhere) would split a scan that a real scanner, a device with its own clock, never
    # splits: xdotool runs ahead of the rest when it may (root may raise a priority).
    nice = ["nice", "-n", "-15"] if os.geteuid() == 0 else []
    subprocess.run([*nice, "xdotool", *args], check=True, env=os.environ)


def methods(env) -> list[str]:
    with sqlite3.connect(env.store_path) as db:
        return [row[0] for row in db.execute("SELECT method FROM attempts ORDER BY rowid")]


def shown(qtbot, make_window, layout: str):
    subprocess.run(["setxkbmap", "-display", os.environ["DISPLAY"], layout], check=True)
    window = make_window()
    window.move(0, 0)
    window.activateWindow()
    xdo("mousemove", "200", "200")
    qtbot.waitUntil(lambda: QApplication.focusWindow() is not None, timeout=5000)
    return window


@pytest.mark.parametrize("layout", ["us", "es", "latam"])
@pytest.mark.parametrize("enter", [True, False])
def test_a_mixed_case_token_from_a_scanner_is_a_scan(qtbot, make_window, till_env, layout, enter):
    token = till_env.claim(customer=f"x11-{layout}-{enter}")["token"]
    assert token != token.lower()
    shown(qtbot, make_window, layout)
    if layout == "us":
        xdo("type", "--delay", "3", token)
    else:
        # A US-mode scanner sends US key positions; this layout maps them ('-' → "'", '_' → '?').
        us_keys = {"-": "minus", "_": "shift+minus", ".": "period"}
        keys = [us_keys.get(ch) or (f"shift+{ch.lower()}" if ch.isupper() else ch) for ch in token]
        xdo("key", "--delay", "3", *keys)
    if enter:
        xdo("key", "Return")
    qtbot.waitUntil(lambda: methods(till_env) != [], timeout=8000)
    assert methods(till_env) == ["scanner"]


def test_a_person_typing_a_short_code_with_shift_stays_typed(qtbot, make_window, till_env):
    window = shown(qtbot, make_window, "us")
    window.entry.setFocus()
    qtbot.waitUntil(lambda: window.entry.hasFocus(), timeout=3000)
    xdo("type", "--delay", "120", "Ab3-Xy")
    xdo("key", "Return")
    qtbot.waitUntil(lambda: methods(till_env) != [], timeout=8000)
    assert methods(till_env) == ["typed"]
