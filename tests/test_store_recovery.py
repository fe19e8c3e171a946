"""A till store that is damaged or cannot be read at start: the damaged file kept byte for byte
beside a fresh store, its unsynced redemptions exported, the unreadable one left alone; said as the
CLI's JSON error and in the window's dialog."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pos_app.words import i18n
from pos_app.core import tokens
from pos_app.store import TillStore
from pos_app.store.recovery import StoreProblem, open_store

ROOT = Path(__file__).resolve().parents[1]
NOW = 1_790_000_000
SERVER = "http://127.0.0.1:9"  # nothing listens there: syncs fail at once, offline verdicts decide


@pytest.fixture(scope="module")
def key():
    return tokens.generate_private_key()


def catalog(key) -> dict:
    voucher = {"id": "v-print", "retailer_id": "ret-1", "kind": "printed", "status": "published",
               "discount": {"kind": "percent", "value": 10, "currency": "PYG"},
               "texts": {"es": {"title": "Café"}}, "valid_from": NOW - 86_400 * 30,
               "valid_until": NOW + 86_400 * 30, "total_limit": None, "store_day_limit": None,
               "retailer_name": "Café Pika"}
    return {"retailer": {"id": "ret-1", "name": "Café Pika"},
            "store": {"id": "store-1", "name": "Centro", "timezone": "America/Asuncion"},
            "keys": [{"kid": tokens.key_id(key.public_key()), "pem": tokens.public_pem(key.public_key())}],
            "vouchers": [voucher], "printed_codes": [{"code": "CAFE10", "voucher_id": "v-print"}],
            "claims": [], "staff": [], "revoked": [], "server_time": NOW}


def real_store(path: Path, key, unsynced: int = 3) -> list[str]:
    """An enrolled till with `unsynced` offline redemptions in its outbox; their keys."""
    with TillStore(path, device_name="Caja 1", asset_keys_dir=None) as store:
        store.save_enrollment({"device_id": "dev-1", "device_token": "device-secret", "retailer_id": "ret-1",
                               "store_id": "store-1", "keys": catalog(key)["keys"]}, SERVER)
        store.apply_catalog(catalog(key))
        store.set("language", "gn")  # the till's own choice, from its settings dialog
        for i in range(unsynced):
            verdict, _ = store.redeem_offline("CAFE10", method="printed", now=NOW + 120 * i)
            assert verdict.accepted
        return [entry["key"] for entry in store.outbox_batch()]


def damage_page(path: Path, table: str) -> None:
    """A bad sector: one page of the file (the root page of `table`) overwritten with noise."""
    conn = sqlite3.connect(path)
    page_size, = conn.execute("PRAGMA page_size").fetchone()
    root, = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    conn.close()
    data = bytearray(path.read_bytes())
    data[(root - 1) * page_size:root * page_size] = os.urandom(page_size)
    path.write_bytes(bytes(data))


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.suffix != ".log"}


def kept_files(problem: StoreProblem) -> dict[str, Path]:
    return {suffix: Path(f"{problem.kept}{suffix}") for suffix in ("", "-wal", "-shm")
            if Path(f"{problem.kept}{suffix}").exists()}


def english(problem: StoreProblem) -> str:
    with i18n.using("en"):
        return problem.message()


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "pos_app", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env)


# --- the module ------------------------------------------------------------------------------------


@pytest.mark.allow_log_warnings(r"^the till's store .* was damaged \(",
                                r"^reading the damaged store's outbox stopped after \d+ entries: ")
def test_garbage_is_kept_byte_for_byte_with_its_companions_and_a_fresh_store_starts(tmp_path):
    path = tmp_path / "till.sqlite3"
    original = {"": os.urandom(20_000), "-wal": os.urandom(8_000), "-shm": os.urandom(32_768)}
    for suffix, data in original.items():
        Path(f"{path}{suffix}").write_bytes(data)
    store, problem = open_store(path)
    try:
        assert store.outbox_size() == 0 and not store.enrolled  # a fresh, working store
        store.set("probe", 1)
    finally:
        store.close()
    assert problem.code == "store_damaged" and "not a database" in problem.reason
    assert problem.kept.parent == tmp_path and problem.kept.name.startswith("till.sqlite3.damaged-2")
    kept = kept_files(problem)
    assert {suffix: p.read_bytes() for suffix, p in kept.items()} == original
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in kept.values())
    assert problem.outbox is None and problem.exported is None and not problem.enrolled
    text = english(problem)
    assert str(problem.kept) in text and "could not be read" in text and "manager" in text
    assert "enrolled again" in text
    # Nothing else appeared or went: the kept three, the fresh store, no scratch copies.
    assert {p.name for p in tmp_path.iterdir()} <= {path.name, f"{path.name}-wal", f"{path.name}-shm",
                                                     *(p.name for p in kept.values())}


@pytest.mark.allow_log_warnings(r"^the till's store .* was damaged \(",
                                r"^reading the damaged store's outbox stopped after \d+ entries: ")
def test_a_store_cut_to_half_is_kept_and_says_its_outbox_could_not_be_read(tmp_path, key):
    path = tmp_path / "till.sqlite3"
    real_store(path, key, unsynced=4)
    whole = path.read_bytes()
    path.write_bytes(whole[:len(whole) // 2])
    half = path.read_bytes()
    store, problem = open_store(path)
    store.close()
    assert problem.code == "store_damaged" and "malformed" in problem.reason
    assert problem.kept.read_bytes() == half
    assert problem.exported is None and "could not be read" in english(problem)


@pytest.mark.allow_log_warnings(r"^the till's store .* was damaged \(",
                                r"^reading the damaged store's outbox stopped after \d+ entries: ")
def test_a_bad_sector_keeps_the_outbox_readable_exported_and_the_enrollment(tmp_path, key):
    path = tmp_path / "till.sqlite3"
    unsynced = real_store(path, key, unsynced=3)
    damage_page(path, "idx_attempts_at")
    damaged = path.read_bytes()
    store, problem = open_store(path, asset_keys_dir=None)
    try:
        # The fresh store is this till still: it can sync and, once it has, sell.
        assert store.enrolled and store.device_id == "dev-1" and store.device_token == "device-secret"
        assert store.server_url == SERVER and store.device_name == "Caja 1" and store.get("language") == "gn"
        # Its unsent redemptions are back in its outbox, keys and all, and their uses counted.
        assert [entry["key"] for entry in store.outbox_batch()] == unsynced
        assert store.printed_uses("v-print", "store-1", "2026-09-21")[1] == 3
    finally:
        store.close()
    assert problem.code == "store_damaged" and problem.reason.startswith("quick_check")
    assert problem.kept.read_bytes() == damaged
    exported = json.loads(problem.outbox.read_text())
    assert [entry["key"] for entry in exported["entries"]] == unsynced and exported["complete"] is True
    assert all(entry["payload"]["code"] == "CAFE10" and entry["payload"]["accepted"] for entry in exported["entries"])
    assert stat.S_IMODE(problem.outbox.stat().st_mode) == 0o600
    assert problem.exported == 3 and problem.enrolled and problem.requeued == 3
    text = english(problem)
    assert f"Redemptions not yet sent to the backend: 3, saved to {problem.outbox}." in text
    assert "go to the backend at its next sync" in text
    assert "still enrolled" in text


def test_requeued_entries_are_sent_as_they_were_and_their_codes_stay_used(tmp_path, key):
    store = TillStore(tmp_path / "fresh.sqlite3", device_name="Caja 1", asset_keys_dir=None)
    try:
        good = {"key": "k" * 32, "at": NOW, "accepted": True, "reason": None, "kind": "personal",
                "voucher_id": "v1", "jti": "j-used-before", "code": None, "method": "camera",
                "staff_id": None, "decided": "offline"}
        void = {"type": "void", "key": "v" * 32, "at": NOW + 5, "redemption_key": "k" * 32,
                "void_reason": "error", "staff_id": "s1"}
        hostile = [None, "text", {"payload": "text"}, {"payload": {**good, "key": "x"}},
                   {"payload": {**good, "key": "h" * 32, "extra": 1}},
                   {"payload": {**good, "key": "n" * 32, "at": float("nan")}},
                   {"payload": {**void, "key": "w" * 32, "redemption_key": 5}}]
        assert store.requeue([{"payload": good}, {"payload": void}, *hostile, {"payload": good}]) == 2
        assert store.outbox_batch() == [good, void]
        assert store.used("j-used-before") is not None  # refused offline until the backend has it
    finally:
        store.close()


@pytest.mark.allow_log_warnings(r"^the till's store .* was damaged \(",
                                r"^reading the damaged store's outbox stopped after \d+ entries: ")
def test_an_outbox_read_up_to_a_damaged_page_is_exported_as_incomplete(tmp_path, key):
    path = tmp_path / "till.sqlite3"
    unsynced = real_store(path, key, unsynced=60)
    conn = sqlite3.connect(path)
    pages = conn.execute("SELECT pageno FROM dbstat WHERE name = 'outbox' AND pagetype = 'leaf' ORDER BY path").fetchall()
    page_size, = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    assert len(pages) > 2
    last, = pages[-1]
    data = bytearray(path.read_bytes())
    data[(last - 1) * page_size:last * page_size] = os.urandom(page_size)
    path.write_bytes(bytes(data))
    store, problem = open_store(path)
    store.close()
    exported = json.loads(problem.outbox.read_text())
    keys = [entry["key"] for entry in exported["entries"]]
    assert exported["complete"] is False and 0 < len(keys) < 60 and keys == unsynced[:len(keys)]
    assert problem.exported == len(keys)


@pytest.mark.allow_log_warnings(r"^the till's store .* was damaged \(",
                                r"^reading the damaged store's outbox stopped after \d+ entries: ")
def test_damage_twice_in_one_second_keeps_both(tmp_path):
    path = tmp_path / "till.sqlite3"
    kept = []
    for n in range(2):
        path.write_bytes(b"not a database %d " % n * 500)
        store, problem = open_store(path)
        store.close()
        kept.append(problem.kept)
    assert kept[0] != kept[1]
    assert [p.read_bytes()[:17] for p in kept] == [b"not a database 0 ", b"not a database 1 "]


def test_a_healthy_store_in_use_elsewhere_is_never_moved(tmp_path, key):
    path = tmp_path / "till.sqlite3"
    real_store(path, key)
    with TillStore(path, asset_keys_dir=None) as other:  # the window's store, with its -wal open
        other.redeem_offline("CAFE10", method="printed", now=NOW + 10)
        assert Path(f"{path}-wal").stat().st_size > 0
        store, problem = open_store(path)
        store.close()
        assert problem is None and other.outbox_size() == 4
    assert not [p for p in tmp_path.iterdir() if "damaged" in p.name]


@pytest.mark.allow_log_warnings(r"^the till's store .* cannot be opened: ")
def test_a_directory_in_the_files_place_is_unreadable_and_left_alone(tmp_path):
    path = tmp_path / "till.sqlite3"
    path.mkdir()
    (path / "something").write_text("kept")
    with pytest.raises(StoreProblem) as raised:
        open_store(path)
    problem = raised.value
    assert problem.code == "store_unreadable" and problem.kept is None and problem.outbox is None
    assert str(path) in english(problem) and "Nothing was moved" in english(problem)
    assert [p.name for p in tmp_path.iterdir()] == ["till.sqlite3"] and (path / "something").read_text() == "kept"


@pytest.mark.allow_log_warnings(r"^the till's store .* cannot be opened: ")
def test_a_folder_under_a_file_is_unreadable(tmp_path):
    (tmp_path / "data").write_text("a file, not a folder")
    with pytest.raises(StoreProblem) as raised:
        open_store(tmp_path / "data" / "till.sqlite3")
    assert raised.value.code == "store_unreadable"
    assert (tmp_path / "data").read_text() == "a file, not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_a_file_the_till_may_not_read_is_unreadable_and_left_alone(tmp_path, key):
    path = tmp_path / "till.sqlite3"
    real_store(path, key)
    before = path.read_bytes()
    path.chmod(0)
    try:
        with pytest.raises(StoreProblem) as raised:
            open_store(path)
    finally:
        path.chmod(0o600)
    assert raised.value.code == "store_unreadable" and path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["till.sqlite3"]


# --- the CLI ---------------------------------------------------------------------------------------


def test_cli_on_a_damaged_enrolled_till_says_so_once_and_sells_with_the_fresh_store(tmp_path, key):
    data = tmp_path / "till"
    data.mkdir()
    real_store(data / "till.sqlite3", key)
    damage_page(data / "till.sqlite3", "idx_attempts_at")
    first = run_cli("status", "--data", str(data))
    assert first.returncode == 0, first.stderr
    assert first.stderr.count("warning: The till's data file was damaged") == 1
    assert "not yet sent to the backend: 3, saved to" in first.stderr and "Traceback" not in first.stderr
    assert json.loads(first.stdout)["enrolled"] is True
    [kept] = [p for p in data.iterdir() if p.name.startswith("till.sqlite3.damaged-") and "." not in p.name[13:]]
    assert str(kept) in first.stderr
    assert "damaged" in (data / "till.log").read_text()
    again = run_cli("status", "--data", str(data))
    assert again.returncode == 0 and again.stderr == ""  # said once: the fresh store is sound


def test_cli_json_error_when_the_fresh_store_could_not_keep_the_enrollment(tmp_path):
    data = tmp_path / "till"
    data.mkdir()
    garbage = os.urandom(10_000)
    (data / "till.sqlite3").write_bytes(garbage)
    result = run_cli("redeem", "--data", str(data), "--offline", "CAFE10")
    assert result.returncode == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "store_damaged" and error["outbox"] is None
    assert Path(error["kept"]).read_bytes() == garbage and Path(error["kept"]).parent == data
    assert "enrolled again" in error["message"] and error["kept"] in error["message"]
    assert "Traceback" not in result.stderr and result.stderr.startswith("error: ")


def test_cli_json_error_and_exit_code_for_an_unreadable_store(tmp_path):
    data = tmp_path / "till"
    (data / "till.sqlite3").mkdir(parents=True)
    for command in (["status"], ["sync"], ["redeem", "--offline", "CAFE10"]):
        result = run_cli(*command, "--data", str(data))
        assert result.returncode == 1, (command, result.stderr)
        error = json.loads(result.stdout)["error"]
        assert error["code"] == "store_unreadable" and error["kept"] is None and error["outbox"] is None
        assert str(data / "till.sqlite3") in error["message"]
    assert [p.name for p in data.iterdir() if p.name != "till.log"] == ["till.sqlite3"]
    under_a_file = tmp_path / "file"
    under_a_file.write_text("x")
    result = run_cli("status", "--data", str(under_a_file / "till"))
    assert result.returncode == 1 and json.loads(result.stdout)["error"]["code"] == "store_unreadable"


# --- the window ------------------------------------------------------------------------------------


def visible_store_dialogs():
    from PySide6.QtWidgets import QApplication, QMessageBox

    return [w for w in QApplication.topLevelWidgets()
            if isinstance(w, QMessageBox) and w.objectName() == "storeDialog" and w.isVisible()]


@pytest.mark.parametrize("language", ["es", "gn", "pt"])
@pytest.mark.allow_log_warnings(r"^the till's store .* was damaged \(",
                                r"^reading the damaged store's outbox stopped after \d+ entries: ",
                                r"^store dialog shown \(store_damaged\)$")
def test_the_store_dialog_says_it_in_the_tills_language(qtbot, tmp_path, key, language):
    from pos_app.gui.app import store_dialog

    path = tmp_path / "till.sqlite3"
    real_store(path, key)
    damage_page(path, "idx_attempts_at")
    store, problem = open_store(path, asset_keys_dir=None)
    store.close()
    with i18n.using(language):
        box = store_dialog(problem)
        expected = problem.message()
    assert expected != english(problem)  # translated, with the same paths in it
    qtbot.waitUntil(lambda: len(visible_store_dialogs()) == 1, timeout=3000)
    [shown] = visible_store_dialogs()
    assert shown is box and shown.text() == expected
    assert str(problem.kept) in shown.text() and str(problem.outbox) in shown.text()
    assert "store_damaged" in shown.detailedText()
    shown.close()
    qtbot.waitUntil(lambda: not visible_store_dialogs(), timeout=3000)


# the window in a process of its own: no fixture says it is a gui test
@pytest.mark.gui
def test_the_window_ends_non_zero_after_saying_its_store_cannot_be_read(tmp_path):
    data = tmp_path / "till"
    (data / "till.sqlite3").mkdir(parents=True)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = run_cli("--data", str(data), "--quit-after", "1", env=env)
    assert result.returncode == 1, result.stderr
    assert "cannot open its data file" in result.stderr and "Traceback" not in result.stderr
    assert "store dialog shown (store_unreadable)" in (data / "till.log").read_text()


# the window in a process of its own: no fixture says it is a gui test
@pytest.mark.gui
def test_the_window_still_appears_on_a_fresh_store_when_the_old_one_was_damaged(tmp_path, key):
    data = tmp_path / "till"
    data.mkdir()
    real_store(data / "till.sqlite3", key)
    damage_page(data / "till.sqlite3", "idx_attempts_at")
    shot = tmp_path / "window.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = run_cli("--data", str(data), "--quit-after", "3", "--screenshot", str(shot), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("warning: The till's data file was damaged") == 1
    assert shot.exists() and shot.stat().st_size > 0  # the window was drawn
    assert "store dialog shown (store_damaged)" in (data / "till.log").read_text()  # and the dialog over it
    assert [p for p in data.iterdir() if p.name.endswith(".outbox.json")]


@pytest.mark.allow_log_warnings(r"^the till's store .* was damaged \(",
                                r"^reading the damaged store's outbox stopped after \d+ entries: ",
                                r"^store dialog shown \(store_damaged\)$")
def test_the_store_dialog_follows_the_language_the_window_reads_from_its_store(qtbot, tmp_path):
    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QApplication

    from pos_app.gui.app import store_dialog

    path = tmp_path / "till.sqlite3"
    path.write_bytes(b"garbage " * 1000)
    store, problem = open_store(path)
    store.close()
    before = i18n.language()
    try:
        i18n.set_language("es")
        box = store_dialog(problem)
        qtbot.waitUntil(lambda: len(visible_store_dialogs()) == 1, timeout=3000)
        with i18n.using("es"):
            assert box.text() == problem.message()
        # What TillWindow.set_language does once the store's settings are in.
        i18n.set_language("pt")
        for widget in QApplication.allWidgets():
            QCoreApplication.sendEvent(widget, QEvent(QEvent.Type.LanguageChange))
        with i18n.using("pt"):
            assert box.text() == problem.message() and box.windowTitle() == i18n._("The till's data file")
        assert "arquivo de dados" in box.text()
        box.close()
    finally:
        i18n.set_language(before)
