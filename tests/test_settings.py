"""The settings registry: one default and one rule per setting, each documented."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from pos_app.store import TillStore
from pos_app.store.settings import PREFERENCES, SETTINGS, value

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented_with_its_default():
    text = (ROOT / "docs" / "data-folder.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| `([^`]*)` \|", text, re.M))
    assert set(rows) == set(SETTINGS)
    for name, setting in SETTINGS.items():
        shown = f'"{setting.default}"' if isinstance(setting.default, str) else repr(setting.default)
        assert rows[name] == shown, name
    assert set(PREFERENCES) <= set(SETTINGS)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_garbage_reads_as_the_default(name):
    setting = SETTINGS[name]
    assert setting.accepts(setting.default)
    for garbage in (None, True, [], {}, "x" * 5000, -1e308, math.inf, math.nan, "\u202e\x00", 1e9):
        got = value({name: garbage}, name)
        assert got == setting.default or setting.accepts(garbage), (name, garbage)


def test_values_in_bounds_are_kept_and_out_of_bounds_are_not(tmp_path):
    store = TillStore(tmp_path / "till.sqlite3")
    try:
        store.set("online_timeout_s", 0.3)
        store.set("verdict_hold_s", 600)
        store.set("velocity_limit", 2.5)
        store.set("decoder", "zbar")
        store.set("language", "xx")
        assert value(store, "online_timeout_s") == 0.3
        assert value(store, "verdict_hold_s") == SETTINGS["verdict_hold_s"].default
        assert value(store, "velocity_limit") == SETTINGS["velocity_limit"].default
        assert value(store, "decoder") == "zbar"
        assert value(store, "language") == SETTINGS["language"].default
        assert value(store, "camera") == ""
    finally:
        store.close()


def test_no_module_reads_a_setting_past_the_registry():
    """A setting read as `x.get("name")` anywhere but the registry would carry a default of its own."""
    import ast

    found = []
    for path in (ROOT / "pos_app").rglob("*.py"):
        if path.name == "settings.py" and path.parent.name == "store":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                    and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value in SETTINGS):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.args[0].value}")
    assert found == []
