"""The cashier's window, driven as a cashier would: real widgets, real store, real backend in process."""

from __future__ import annotations

import sqlite3

import pytest
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtWidgets import QApplication, QLabel

from gui_fixtures import LoopGaps, scanner_types
from pos_app.core import pins
from pos_app.core.domain import Method, Reason
from pos_app.gui.pin_change import PinChangeDialog
from pos_app.scan.gate import MAX_WAITING
from pos_app.store import TillStore
from pos_app.store.pin_lockout import LOCK_AFTER, LOCK_S
from pos_app.words.i18n import format_time


def wait_verdict(qtbot, window, timeout=5000):
    with qtbot.waitSignal(window.verdict_shown, timeout=timeout) as blocker:
        pass
    return blocker.args[0]


def attempts(env, sql="SELECT method, status, staff_id, decided FROM attempts ORDER BY rowid"):
    conn = sqlite3.connect(env.store_path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def focus_entry(qtbot, window):
    window.activateWindow()
    window.entry.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.entry, timeout=2000)


def type_and_wait(qtbot, window, text, *, delay_ms=-1, enter=True):
    with qtbot.waitSignal(window.verdict_shown, timeout=8000) as blocker:
        qtbot.keyClicks(QApplication.focusWidget(), text, delay=delay_ms)
        if enter:
            qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
    return blocker.args[0]


def visible_texts(widget) -> list[str]:
    return [label.text() for label in widget.findChildren(QLabel) if label.isVisible() and label.text()]


def test_typed_short_code_is_accepted_then_already_redeemed_with_when_and_where(qtbot, make_window, till_env):
    window = make_window()
    claim = till_env.claim()
    focus_entry(qtbot, window)
    outcome = type_and_wait(qtbot, window, claim["short_code"].lower().replace("-", " "), delay_ms=60)
    assert outcome.verdict.accepted and outcome.decided == "online"
    assert window.panel.state == "accepted"
    assert window.panel.headline.text() == "Aceptado: dé el descuento"
    assert window.panel.discount.text() == "Gs.\xa012.000"
    assert window.panel.title.text() == "Café gratis con tu desayuno"
    assert window.entry.text() == ""

    outcome = type_and_wait(qtbot, window, claim["short_code"], delay_ms=60)
    assert outcome.verdict.reason == Reason.ALREADY_REDEEMED
    assert window.panel.state == "refused"
    assert "Caja 1" in window.panel.details.text()
    rows = attempts(till_env)
    assert [r[0] for r in rows] == [Method.TYPED, Method.TYPED]
    assert all(r[2] == till_env.staff["cashier"]["id"] for r in rows)  # stamped with the cashier


def scan_and_wait(qtbot, window, text, **scanner):
    with qtbot.waitSignal(window.verdict_shown, timeout=8000) as blocker:
        scanner_types(text, **scanner)
    return blocker.args[0]


@pytest.mark.parametrize("layout_damage", [False, True])
def test_usb_scanner_burst_is_recognised_anywhere_and_repaired(qtbot, make_window, till_env, layout_damage):
    window = make_window()
    token = till_env.claim(customer=f"scan-{layout_damage}")["token"]
    typed = token.replace("-", "'").replace("_", "?") if layout_damage else token
    # Focus on a button, not the entry: a scan must still be caught.
    window.activateWindow()
    window.printed_button.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.printed_button, timeout=2000)
    outcome = scan_and_wait(qtbot, window, typed)
    assert outcome.verdict.accepted, outcome.verdict
    assert attempts(till_env)[-1][0] == Method.SCANNER
    assert window.entry.text() == ""


def test_scan_into_the_entry_leaves_no_characters_behind(qtbot, make_window, till_env):
    window = make_window()
    token = till_env.claim(customer="into-entry")["token"]
    focus_entry(qtbot, window)
    outcome = scan_and_wait(qtbot, window, token)
    assert outcome.verdict.accepted
    assert attempts(till_env)[-1][0] == Method.SCANNER
    assert window.entry.text() == ""


def test_scanner_without_enter_is_still_recognised(qtbot, make_window, till_env):
    window = make_window()
    token = till_env.claim(customer="no-enter")["token"]
    focus_entry(qtbot, window)
    outcome = scan_and_wait(qtbot, window, token, enter=False)
    assert outcome.verdict.accepted
    assert attempts(till_env)[-1][0] == Method.SCANNER


def test_a_scan_that_queued_up_while_the_window_was_busy_is_still_one_scan(qtbot, make_window, till_env):
    # Keys 3 ms apart by the window system's clock, but a 120 ms stall mid-code
    # before the rest are processed: by the processing clock that is two bursts.
    window = make_window()
    token = till_env.claim(customer="stalled")["token"]
    focus_entry(qtbot, window)
    outcome = scan_and_wait(qtbot, window, token, stall_after=len(token) // 2, stall_s=0.12)
    assert outcome.verdict.accepted, outcome.verdict
    assert attempts(till_env)[-1][0] == Method.SCANNER
    assert window.entry.text() == ""


def test_a_person_typing_quickly_by_the_window_systems_clock_keeps_every_key(qtbot, make_window, till_env):
    window = make_window()
    focus_entry(qtbot, window)
    scanner_types("ab", gap_ms=5, enter=False, start_ms=5_000)  # a two-key roll...
    scanner_types("cdE", gap_ms=5, enter=False, start_ms=5_300)  # ...a pause, and another
    qtbot.wait(300)
    assert window.entry.text() == "abcdE"
    assert attempts(till_env) == []


def test_a_person_typing_fast_keeps_every_key(qtbot, make_window, till_env):
    window = make_window()
    focus_entry(qtbot, window)
    qtbot.keyClicks(window.entry, "ab", delay=5)  # a quick two-key roll, then a pause
    qtbot.wait(300)
    qtbot.keyClicks(window.entry, "cdE", delay=5)
    qtbot.wait(300)
    assert window.entry.text() == "abcdE"


def test_printed_code_through_its_own_entry_point_shows_the_app_hint(qtbot, make_window, till_env):
    window = make_window()

    def fill_dialog():
        dialog = QApplication.activeModalWidget()
        dialog.code.setText("cafe50")
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()

    QTimer.singleShot(200, fill_dialog)
    with qtbot.waitSignal(window.verdict_shown, timeout=8000) as blocker:
        window.open_printed_entry()
    outcome = blocker.args[0]
    assert outcome.verdict.accepted and outcome.verdict.kind == "printed"
    assert window.panel.hint.isVisible() and "app" in window.panel.hint.text()
    assert attempts(till_env)[-1][0] == Method.PRINTED


def test_camera_frames_with_a_real_qr_give_one_redemption_however_long_it_stays(qtbot, make_window, till_env,
                                                                                   tmp_path):
    from pos_app.scan.sample_feed import write_sample_feed

    token = till_env.claim(customer="camera")["token"]
    feed = write_sample_feed([token], tmp_path / "feed", frames_per_code=40, blank_frames=2)
    window = make_window(camera=feed)
    outcome = wait_verdict(qtbot, window, timeout=10000)
    assert outcome.verdict.accepted
    shown = []
    window.verdict_shown.connect(shown.append)
    qtbot.waitUntil(lambda: window.camera_feed is None or window.camera_feed.state == "ended", timeout=15000)
    assert all(o.verdict.accepted for o in shown if o is not None)  # never a false already_redeemed
    assert [r[0] for r in attempts(till_env)] == [Method.CAMERA]  # and never a second redemption


def test_language_switch_retranslates_the_whole_window(qtbot, make_window, till_env):
    window = make_window(role="manager")
    texts = {}
    for lang in ("es", "gn", "en", "pt"):
        window.set_language(lang)
        texts[lang] = visible_texts(window) + [b.text() for b in (window.sync_button, window.settings_button,
                                                                  window.lock_button, window.redeem_button,
                                                                  window.printed_button, window.image_button)]
        texts[lang].append(window.entry.placeholderText())
    names = ("Caja 1", "Bruno", "Café Pika")
    for lang, source in (("es", "en"), ("gn", "en"), ("pt", "en"), ("gn", "es")):
        same = [t for t, u in zip(texts[lang], texts[source]) if t == u]
        # Only names and numbers may read the same as the source language.
        assert all(not any(c.isalpha() for c in t) or any(n in t for n in names) for t in same), (lang, same)
    window.set_language("gn")
    assert window.panel.headline.text() != texts["es"][0]


def test_login_roles_and_lock(qtbot, make_window, till_env):
    window = make_window(role=None)
    assert window.pages.currentWidget() is window.login
    cashier = till_env.staff["cashier"]
    window.login.reset(staff_id=cashier["id"])
    window.login.pin.setText("0000")
    window.login.login_button.click()
    qtbot.waitUntil(lambda: bool(window.login.error.text()), timeout=5000)
    assert window.staff is None and window.login.error.text() == "ID de personal o PIN incorrecto."
    # Picked by name from the list, PIN on the keypad.
    window.login.staff_id.setCurrentIndex(window.login.staff_id.findData(cashier["id"]))
    window.login.pin.setFocus()
    for digit in cashier["pin"]:
        window.login.keys["123456789⌫0✓".index(digit)].click()
    window.login.keys[11].click()
    qtbot.waitUntil(lambda: window.staff is not None, timeout=5000)
    assert window.staff["role"] == "cashier"
    assert not window.settings_button.isVisible()
    window.open_settings()  # refused for a cashier: nothing opens
    assert QApplication.activeModalWidget() is None

    window.lock()
    assert window.pages.currentWidget() is window.login and window.staff is None
    assert cashier["name"] in window.login.subtitle.text()
    manager = till_env.staff["manager"]
    window.login.reset(staff_id=manager["id"])
    window.login.pin.setText(manager["pin"])
    window.login.login_button.click()
    qtbot.waitUntil(lambda: window.staff is not None, timeout=5000)
    assert window.settings_button.isVisible()


class Clock:
    """The window's clock, moved on by the test (the lockout's waits are counted on it)."""

    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def try_pin(qtbot, window, staff_id: str, pin: str) -> str:
    """Log in through the screen; the screen's error once the store answered ("" when logged in)."""
    window.login.reset(staff_id=staff_id)
    window.login.pin.setText(pin)
    window.login.login_button.click()
    qtbot.waitUntil(lambda: window.login.login_button.isEnabled() or window.staff is not None, timeout=5000)
    return window.login.error.text()


def test_wrong_pins_make_the_login_wait_then_lock_and_it_says_so(qtbot, make_window, till_env):
    clock = Clock(1_760_000_000.0)
    window = make_window(role=None, language="en", clock=clock, background_sync=False)
    cashier = till_env.staff["cashier"]
    assert try_pin(qtbot, window, cashier["id"], "0000") == "Wrong staff ID or PIN."
    assert try_pin(qtbot, window, cashier["id"], "0001") == "Wrong staff ID or PIN."
    assert try_pin(qtbot, window, cashier["id"], "0002") == "Wrong staff ID or PIN. Try again in 2 seconds."
    clock.t += 1
    # Waiting: even the right PIN is refused, unchecked.
    assert try_pin(qtbot, window, cashier["id"], cashier["pin"]) == "Too many wrong PINs. Try again in 1 second."
    assert window.staff is None
    for _ in range(4, LOCK_AFTER + 1):
        clock.t += 60
        said = try_pin(qtbot, window, cashier["id"], "0000")
    locked_until = format_time(clock.t + LOCK_S, window.panel.timezone)
    assert said == f"Too many wrong PINs. This staff ID is locked until {locked_until}."
    clock.t += LOCK_S - 60
    assert try_pin(qtbot, window, cashier["id"], cashier["pin"]) == said
    clock.t += 60
    assert try_pin(qtbot, window, cashier["id"], cashier["pin"]) == ""
    assert window.staff["id"] == cashier["id"]


LEGACY_PIN = "2468"


def with_legacy_pin(env, role: str = "manager") -> dict:
    """A manager made before six digits were asked for: the backend and the till hold a 4-digit PIN."""
    member = dict(env.staff[role], pin=LEGACY_PIN)
    salt = pins.new_proof_salt()
    for path, sql, params in (
            (env.api.db_path, "UPDATE staff SET pin_hash = ?, proof_salt = ?, proof_key = ? WHERE id = ?",
             (pins.hash_pin(LEGACY_PIN), salt, pins.encode_key(pins.proof_key(LEGACY_PIN, salt)), member["id"])),
            (env.store_path, "UPDATE staff SET pin_hash = ?, proof_salt = ? WHERE id = ?",
             (pins.hash_pin(LEGACY_PIN), salt, member["id"]))):
        conn = sqlite3.connect(path)
        try:
            with conn:
                assert conn.execute(sql, params).rowcount == 1
        finally:
            conn.close()
    return member


def pin_dialog(qtbot, window) -> PinChangeDialog:
    """The PIN change prompt on screen (an earlier one closed may wait to be deleted)."""
    shown = lambda: [d for d in window.findChildren(PinChangeDialog) if d.isVisible()]  # noqa: E731
    qtbot.waitUntil(lambda: len(shown()) == 1, timeout=5000)
    return shown()[0]


def type_new_pin(dialog, pin: str, again: str | None = None) -> None:
    dialog.new_pin.setText(pin)
    dialog.repeat_pin.setText(pin if again is None else again)
    dialog.change_button.click()


def test_a_short_manager_pin_is_asked_to_change_after_login_and_later_asks_again(qtbot, make_window, till_env):
    manager = with_legacy_pin(till_env)
    window = make_window(role=None, language="en")
    assert try_pin(qtbot, window, manager["id"], LEGACY_PIN) == ""
    assert window.staff["id"] == manager["id"]  # logged in: the prompt comes after
    dialog = pin_dialog(qtbot, window)
    assert QApplication.activeModalWidget() is dialog
    type_new_pin(dialog, "13579")
    assert dialog.message.text() == "A PIN is 6 to 12 digits."
    type_new_pin(dialog, "135790", "135799")
    assert dialog.message.text() == "The two PINs are not the same."
    till_env.online = False
    type_new_pin(dialog, "135790")
    qtbot.waitUntil(lambda: dialog.change_button.isEnabled(), timeout=5000)
    assert dialog.message.text() == "Could not reach the backend. You will be asked again next time you log in."
    dialog.later_button.click()
    qtbot.waitUntil(lambda: QApplication.activeModalWidget() is None, timeout=5000)
    assert window.staff["id"] == manager["id"] and window.report_button.isVisible()  # the window keeps working
    window.lock()
    assert try_pin(qtbot, window, manager["id"], LEGACY_PIN) == ""
    assert pin_dialog(qtbot, window).isVisible()


def test_a_new_pin_goes_to_the_backend_and_works_at_the_till_at_once(qtbot, make_window, till_env):
    manager = with_legacy_pin(till_env)
    window = make_window(role=None, language="en")
    try_pin(qtbot, window, manager["id"], LEGACY_PIN)
    dialog = pin_dialog(qtbot, window)
    with qtbot.waitSignal(dialog.changed, timeout=10000) as blocker:
        type_new_pin(dialog, "864213")
    assert blocker.args == ["864213"] and window._pin == "864213"
    qtbot.waitUntil(lambda: QApplication.activeModalWidget() is None, timeout=5000)
    with TillStore(till_env.store_path) as store:
        token = store.get("device_token")
    staff_me = lambda pin: till_env.api.client.get(  # noqa: E731
        "/staff/me", headers={"Authorization": f"Bearer {token}", "X-Pika-Staff": manager["id"], "X-Pika-Pin": pin})
    me = staff_me("864213")
    assert me.status_code == 200 and me.json()["pin_change_required"] is False
    assert staff_me(LEGACY_PIN).status_code == 401
    # At the till (offline too): the new PIN logs in, with nothing more to ask; the old one is wrong.
    till_env.online = False
    window.lock()
    assert try_pin(qtbot, window, manager["id"], LEGACY_PIN) == "Wrong staff ID or PIN."
    assert try_pin(qtbot, window, manager["id"], "864213") == ""
    qtbot.wait(200)
    assert not any(d.isVisible() for d in window.findChildren(PinChangeDialog))
    assert QApplication.activeModalWidget() is None
    # And its voids are proven again: the till's proof salt is the new PIN's (from the backend's answer).
    with TillStore(till_env.store_path) as store:
        (salt,) = store.conn.execute("SELECT proof_salt FROM staff WHERE id = ?", (manager["id"],)).fetchone()
    ((proof_key,),) = till_env.api.rows("SELECT proof_key FROM staff WHERE id = ?", (manager["id"],))
    assert pins.encode_key(pins.proof_key("864213", salt)) == proof_key


def test_window_stays_responsive_while_a_slow_backend_answers(qtbot, make_window, till_env):
    till_env.backend_delay_s = 2.0
    window = make_window()
    claim = till_env.claim(customer="slow")
    with LoopGaps() as loop, qtbot.waitSignal(window.verdict_shown, timeout=10000) as blocker:
        window.submit(claim["short_code"], Method.TYPED)
        assert window.panel.state == "working"
    assert blocker.args[0].verdict.accepted
    assert loop.total >= 1.9
    assert loop.worst < 0.15, f"event loop blocked for {loop.worst * 1000:.0f} ms"


def test_offline_decides_locally_and_counts_the_outbox(qtbot, make_window, till_env):
    till_env.online = False
    window = make_window()
    claim = till_env.claim(customer="offline")
    with qtbot.waitSignal(window.verdict_shown, timeout=8000) as blocker:
        window.submit(claim["token"], Method.CAMERA)
    outcome = blocker.args[0]
    assert outcome.verdict.accepted and outcome.decided == "offline"
    assert "sin conexión" in window.panel.details.text()
    qtbot.waitUntil(lambda: window.status.outbox == 1, timeout=5000)
    assert window.online_badge.text() == "● Sin conexión"
    assert window.outbox_label.text() == "Por enviar: 1"


def test_a_flood_of_scans_is_bounded_and_the_window_survives(qtbot, make_window, till_env):
    window = make_window()
    shown = []
    window.verdict_shown.connect(shown.append)
    for i in range(50):
        window.submit(f"NOT-A-CODE-{i:03d}-XXXXXXXXXXXX", Method.SCANNER)
    qtbot.waitUntil(lambda: not window.gate.in_flight, timeout=10000)
    decided = [o for o in shown if o is not None]
    assert len(decided) <= MAX_WAITING + 1
    assert any(o is None for o in shown)  # the cashier was told to slow down
    assert len(attempts(till_env)) == len(decided)


@pytest.mark.parametrize("text", ["x" * 10_000, "🎟️🎟️ 😀", "\x00\x1b[2J", "'; DROP TABLE attempts; --"])
def test_hostile_typed_text_is_refused_plainly(qtbot, make_window, till_env, text):
    window = make_window()
    window.entry.setText(text)
    with qtbot.waitSignal(window.verdict_shown, timeout=8000) as blocker:
        window.entry.returnPressed.emit()
    outcome = blocker.args[0]
    assert not outcome.verdict.accepted
    assert outcome.verdict.reason in (Reason.MALFORMED, Reason.MISTYPED, Reason.UNKNOWN_CODE)
    assert window.panel.state in ("caution", "refused")


def test_a_picture_of_a_code_is_redeemed_and_a_picture_without_one_is_explained(qtbot, make_window, till_env,
                                                                                 tmp_path):
    import cv2
    import numpy as np
    import zxingcpp

    token = till_env.claim(customer="picture")["token"]
    image = np.asarray(zxingcpp.create_barcode(token, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
                       .to_image(scale=6, add_quiet_zones=True))
    cv2.imwrite(str(tmp_path / "shot.png"), image)
    cv2.imwrite(str(tmp_path / "blank.png"), np.full((200, 200), 255, np.uint8))
    (tmp_path / "fake.png").write_text("not a picture")
    window = make_window()
    with qtbot.waitSignal(window.verdict_shown, timeout=8000) as blocker:
        window.scan_image(str(tmp_path / "shot.png"))
    assert blocker.args[0].verdict.accepted
    assert attempts(till_env)[-1][0] == Method.IMAGE
    for name in ("blank.png", "fake.png", "missing.png"):
        with qtbot.waitSignal(window.verdict_shown, timeout=8000) as blocker:
            window.scan_image(str(tmp_path / name))
        assert blocker.args[0] is None and window.panel.state == "caution"


def test_a_camera_that_is_missing_is_said_plainly(qtbot, make_window, till_env):
    window = make_window(camera="7")
    qtbot.waitUntil(lambda: window.camera_view.text() != "" and window.camera_feed.state == "unavailable",
                    timeout=8000)
    assert "cámara" in window.camera_view.text().lower()


# the read-only store's NotRecorded is logged
@pytest.mark.allow_log_warnings(r"^store job failed$")
def test_a_store_that_cannot_write_is_told_before_anything_is_shown_accepted(qtbot, make_window, till_env):
    """A full disk or a failing card: the till's write fails, so nothing may be shown as accepted.

    (The store's own tests fill a real file to SQLite's page limit; here the
    window's store connection is made to refuse writes, the same error class.)
    """
    window = make_window()
    claim = till_env.claim(customer="full-disk")
    window.store.submit(lambda store: store._conn.execute("PRAGMA query_only = ON"))
    with qtbot.waitSignal(window.verdict_shown, timeout=8000) as blocker:
        window.submit(claim["short_code"], Method.TYPED)
    assert blocker.args[0] is None
    assert window.panel.state == "refused"
    assert "no dé el descuento" in window.panel.headline.text().lower()
    assert attempts(till_env) == []


def test_sync_panel_shows_the_queue_and_sync_now_empties_it(qtbot, make_window, till_env):
    till_env.online = False
    window = make_window()
    with qtbot.waitSignal(window.verdict_shown, timeout=8000):
        window.submit(till_env.claim(customer="queued")["token"], Method.CAMERA)
    window.refresh_status()
    qtbot.waitUntil(lambda: window.status.outbox == 1, timeout=5000)
    window.open_sync_panel()
    assert window.sync_panel.rows["outbox"][1].text() == "1"
    till_env.online = True
    with qtbot.waitSignal(window.status_changed, timeout=8000,
                          check_params_cb=lambda s: s.outbox == 0):
        window.sync_panel.sync_now.click()
    assert window.sync_panel.rows["outbox"][1].text() == "0"
    assert window.sync_panel.rows["last_sync"][1].text() not in ("", "nunca")


def test_language_change_reaches_widgets_through_qt(qtbot, make_window, till_env):
    window = make_window()
    window.set_language("en")
    assert window.lock_button.text() == "Lock"
    QApplication.sendEvent(window, QEvent(QEvent.Type.LanguageChange))
    assert window.lock_button.text() == "Lock"


def test_a_manager_changes_settings_and_they_are_kept(qtbot, make_window, till_env, tmp_path):
    from pos_app.scan.sample_feed import write_sample_feed

    feed = write_sample_feed(["https://example.com/x"], tmp_path / "feed", frames_per_code=2, blank_frames=1)
    window = make_window(role="manager")

    def fill():
        dialog = QApplication.activeModalWidget()
        assert dialog.objectName() == "settingsDialog"
        dialog.camera_path.setText(feed)
        dialog.decoder.setCurrentIndex(dialog.decoder.findData("zbar"))
        dialog.timeout.setValue(99)  # clamped to the allowed range
        dialog.hold.setValue(3.5)
        dialog.sound.setChecked(False)
        dialog.buttons.button(dialog.buttons.StandardButton.Save).click()

    QTimer.singleShot(300, fill)
    window.open_settings()
    qtbot.waitUntil(lambda: window.settings.get("decoder") == "zbar", timeout=5000)
    qtbot.waitUntil(lambda: window.camera_feed is not None and window.camera_feed.decoder_name == "zbar",
                    timeout=5000)
    assert window.panel.hold_s == 3.5 and not window.sounds.enabled
    window.shutdown()
    with TillStore(till_env.store_path) as store:
        assert store.get("camera") == feed and store.get("decoder") == "zbar"
        assert float(store.get("online_timeout_s")) == 10.0 and float(store.get("verdict_hold_s")) == 3.5


def test_a_conflict_is_shown_to_the_manager_with_the_winner(qtbot, make_window, till_env):
    claim = till_env.claim(customer="raced")
    other = till_env.api.enroll("Caja 2")
    assert till_env.api.redeem(other, claim["token"]).status_code == 201  # till 2 wins, online
    till_env.online = False
    window = make_window(role="manager")
    with qtbot.waitSignal(window.verdict_shown, timeout=8000) as blocker:
        window.submit(claim["token"], Method.CAMERA)
    assert blocker.args[0].verdict.accepted and blocker.args[0].decided == "offline"
    till_env.online = True
    window.sync_now()
    qtbot.waitUntil(lambda: window.status.conflicts == 1, timeout=10000)
    window.open_sync_panel()
    qtbot.waitUntil(lambda: window.sync_panel.conflicts.rowCount() == 1, timeout=5000)
    assert window.sync_panel.conflicts.isVisible()
    assert window.sync_panel.conflicts.item(0, 2).text() == "Caja 2"
    assert window.sync_panel.conflicts.item(0, 1).text() == "Café gratis con tu desayuno"
