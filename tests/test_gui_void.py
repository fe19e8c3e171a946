"""A manager voids a redemption from the report view: real window, real store, real backend in process.

The void runs on the store's thread, the report on screen follows, the void
waits in the outbox (the status bar counts it) until the sync engine's next
round, and the backend's report then agrees with the till's. The attempt row
itself never changes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from datetime import date

import pytest
from PySide6.QtWidgets import QApplication
from shiboken6 import isValid

from pos_app.words import i18n
from pos_app.core import pins
from pos_app.core.domain import Method
from pos_app.core.voids import MAX_REASON, VoidError
from pos_app.gui.report import models
from pos_app.gui.report.view import REDEMPTIONS_TAB, ReportView
from pos_app.gui.report.void_dialog import QUICK_REASONS, void_error_text
from pos_app.store import TillStore
from pos_app.store.report import day_report

COFFEE = 12_000  # the demo's personal voucher, in guaraníes
TILL_ONLY = ("processing_ms_p50", "processing_ms_p95", "sync_success_rate")
STATUS = 6  # the redemptions table's Status column


# --- helpers ------------------------------------------------------------------------------------


def redeem(qtbot, window, text: str, method: str = Method.CAMERA):
    with qtbot.waitSignal(window.verdict_shown, timeout=10000) as blocker:
        window.submit(text, method)
    return blocker.args[0]


def open_report(qtbot, window) -> ReportView:
    """The report, on its redemptions tab (a tap away from the chart it opens on)."""
    view = window.open_report()
    assert view is not None
    wait_settled(qtbot, view)
    view.tabs.setCurrentIndex(REDEMPTIONS_TAB)
    return view


def wait_settled(qtbot, view) -> None:
    qtbot.waitUntil(lambda: view.report is not None and view.state.text() == "", timeout=10000)


def key_where(view, **wanted) -> str:
    """The key of the one attempt on screen whose fields have these values (e.g. decided="offline")."""
    fields = {"decided": models.DECIDED, "status": models.STATUS, "method": models.METHOD}
    found = [a[models.KEY] for a in view.attempts.records
             if all(a[fields[name]] == value for name, value in wanted.items())]
    assert len(found) == 1, (wanted, view.attempts.records)
    return found[0]


def dialog_for(view, **wanted):
    """Select the one attempt with these field values and open the void dialog on it: (its key, the dialog)."""
    key = key_where(view, **wanted)
    assert view.select_attempt(key)
    dialog = view.open_void_dialog()
    assert dialog is not None
    return key, dialog


def row_of(view, key: str) -> int:
    return next(i for i, a in enumerate(view.attempts.records) if a[models.KEY] == key)


def status_cell(view, key: str) -> str:
    return view.attempts.index(row_of(view, key), STATUS).data()


def void_through_dialog(qtbot, view, key: str, reason: str | None = None, quick: int | None = None) -> dict:
    """Select the row, tap Void…, give the reason, confirm; returns the store's void once the report shows it."""
    assert view.select_attempt(key)
    assert view.void_button.isVisible() and view.void_button.isEnabled()
    view.void_button.click()
    dialog = view.void_dialog
    assert dialog is not None and dialog.isVisible() and dialog.key == key
    if quick is not None:
        dialog.quick[quick].click()
    else:
        dialog.reason.setText(reason)
    assert dialog.confirm_button.isEnabled()
    with (qtbot.waitSignals([dialog.accepted, view.voided, view.report_shown], timeout=10000, order="strict"),
          qtbot.waitSignal(view.voided, timeout=10000) as blocker):
        dialog.confirm_button.click()
    assert view.void_dialog is None  # closed once the store kept the void
    return blocker.args[0]


def store_rows(env, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{env.store_path}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def attempt_rows(env) -> list[dict]:
    """Every attempt row as stored, without the sync stamp (the only column a sync may set)."""
    with TillStore(env.store_path) as store:
        return [{k: v for k, v in a.items() if k != "synced_at"} for a in store.attempts()]


def till_report(env, day: date) -> dict:
    with TillStore(env.store_path) as store:
        return day_report(store, day, language="es")


def same_report(shown: dict, stored: dict) -> bool:
    """The view's report is the store's, but for the share of good sync rounds (the engine keeps trying)."""
    def without_sync_rate(report):
        return {**report, "kpis": {k: v for k, v in report["kpis"].items() if k != "sync_success_rate"}}
    return without_sync_rate(shown) == without_sync_rate(stored)


# An online redemption is timed by the backend's clock when it arrived (the backend's clock decides), the
# till's copy by its own when it asked: they differ by the request's latency, so times are compared apart.
_TIMES = ("at", "local_time")


def comparable(report: dict) -> dict:
    """Without the till's own figures, nor what only the backend finds (disputes, whether a void proved its
    manager), nor the void items' times (see `same_times`)."""
    voids = {**report["voids"], "items": [{k: v for k, v in item.items() if k != "verified" and k not in _TIMES}
                                          for item in report["voids"]["items"]]}
    return {**{k: v for k, v in report.items() if k != "disputes"}, "scope": None, "voids": voids,
            "kpis": {k: v for k, v in report["kpis"].items() if k not in TILL_ONLY}}


def same_times(till: dict, backend: dict) -> bool:
    """The void items' times agree within a request's latency."""
    return all(abs(a["at"] - b["at"]) < 2.0 for a, b in zip(till["voids"]["items"], backend["voids"]["items"]))


def backend_report(env, day: date) -> dict:
    with TillStore(env.store_path) as store:
        token = store.device_token
    manager = env.staff["manager"]
    answer = env.api.client.get("/reports/daily", params={"date": day.isoformat()}, headers={
        "Authorization": f"Bearer {token}", "X-Pika-Staff": manager["id"], "X-Pika-Pin": manager["pin"]})
    assert answer.status_code == 200, answer.text
    return answer.json()


def tile(view, name: str) -> str:
    return view.tiles[name][0].text()


@pytest.fixture
def two_redemptions(qtbot, make_window, till_env):
    """A manager's window with one coffee decided online and one decided offline (the network then down)."""
    window = make_window(role="manager")
    online = redeem(qtbot, window, till_env.claim(customer="online")["token"])
    assert online.verdict.accepted and online.decided == "online"
    till_env.online = False
    offline = redeem(qtbot, window, till_env.claim(customer="offline")["token"])
    assert offline.verdict.accepted and offline.decided == "offline"
    return window


# --- the void, end to end -----------------------------------------------------------------------


def test_a_manager_voids_an_offline_and_an_online_redemption_and_the_backend_agrees(qtbot, two_redemptions,
                                                                                     till_env):
    window = two_redemptions
    view = open_report(qtbot, window)
    day = view.first
    assert view.void_button.isVisible() and not view.void_button.isEnabled()  # nothing selected yet
    assert view.void_hint.text() == "Seleccione un canje aceptado para anularlo."
    before = view.report
    assert same_report(before, till_report(till_env, day))
    assert before["count"] == 2 and before["discount_total"]["amount"] == 2 * COFFEE and before["voids"]["count"] == 0
    original = attempt_rows(till_env)
    offline_key, online_key = key_where(view, decided="offline"), key_where(view, decided="online")

    # The offline one, with a quick reason.
    assert view.select_attempt(offline_key)
    view.void_button.click()
    dialog = view.void_dialog
    manager = till_env.staff["manager"]
    assert dialog.summary["voucher"].text() == "Café gratis con tu desayuno"
    assert dialog.summary["cashier"].text() == manager["name"]
    assert dialog.summary["method"].text() == "Cámara" and dialog.summary["decided"].text() == "Sin conexión"
    assert dialog.summary["time"].text().endswith(i18n.format_time(
        view.attempts.records[row_of(view, offline_key)][models.AT], view.attempts.context.timezone))
    assert not dialog.confirm_button.isEnabled()  # a reason is required
    dialog.reject()
    void = void_through_dialog(qtbot, view, offline_key, quick=0)
    reason = i18n._(QUICK_REASONS[0])
    assert reason == "El cliente devolvió la mercadería"
    assert (void["redemption_key"], void["reason"], void["staff_id"], void["state"]) == (
        offline_key, reason, manager["id"], "queued")

    shown = view.report
    assert same_report(shown, till_report(till_env, day))  # the view shows the store's report, exactly
    assert shown["count"] == 1 and shown["discount_total"]["amount"] == COFFEE
    assert shown["attempts"] == 2 and shown["voids"]["count"] == 1
    assert tile(view, "count") == "1" and tile(view, "voids") == "1" and tile(view, "discount") == "Gs.\xa012.000"
    assert sum(shown["by_hour"]) == 1 and shown["by_cashier"][0]["count"] == 1
    item = shown["voids"]["items"][0]
    assert (item["key"], item["void_reason"], item["void_staff_id"], item["void_at"]) == (
        offline_key, reason, manager["id"], void["at"])
    voids_row = [view.voids.index(0, c).data() for c in range(view.voids.columnCount())]
    assert voids_row[3:6] == [manager["name"], i18n.format_time(void["at"], view.attempts.context.timezone), reason]
    assert item["proof"] == "pending"  # made with the manager's PIN: its proof awaits the backend's check
    # The row stays, says it is voided, and is still the one selected; it cannot be voided again.
    assert view.attempts.rowCount() == 2 and view.selected_attempt_key() == offline_key
    assert status_cell(view, offline_key) == f"Anulado: {reason}"
    assert not view.void_button.isEnabled() and view.void_hint.text() == "Este canje está anulado."
    assert "Canje anulado" in view.message.text()

    # The status bar's "to send" counts it: the offline redemption and its void wait for the network.
    qtbot.waitUntil(lambda: window.status.outbox == 2, timeout=10000)
    assert window.outbox_label.text() == "Por enviar: 2"
    with TillStore(till_env.store_path) as store:
        assert [(e.get("type"), e.get("redemption_key")) for e in store.outbox_batch()] == [
            (None, None), ("void", offline_key)]  # the redemption goes first

    # The online one, with a reason typed by hand (emoji welcome).
    typed = "  Escaneado dos veces 🧉👨‍👩‍👧  "
    void2 = void_through_dialog(qtbot, view, online_key, reason=typed)
    assert void2["reason"] == typed.strip()
    shown = view.report
    assert same_report(shown, till_report(till_env, day))
    assert shown["count"] == 0 and shown["discount_total"]["amount"] == 0 and shown["voids"]["count"] == 2
    assert [i["key"] for i in shown["voids"]["items"]] == [online_key, offline_key]  # in the order they happened
    assert tile(view, "count") == "0" and tile(view, "voids") == "2"
    qtbot.waitUntil(lambda: window.status.outbox == 3, timeout=10000)
    assert window.outbox_label.text() == "Por enviar: 3"
    assert attempt_rows(till_env) == original  # voiding never touched an attempt

    # The network comes back: the sync engine's next round takes the voids to the backend.
    till_env.online = True
    with qtbot.waitSignal(window.status_changed, timeout=15000, check_params_cb=lambda s: s.outbox == 0):
        window.sync_now()
    assert window.outbox_label.text() == "Por enviar: 0"
    assert store_rows(till_env, "SELECT count(*) FROM outbox") == [(0,)]
    assert {row[0] for row in store_rows(till_env, "SELECT synced_at FROM voids")} != {None}
    backend_voids = till_env.api.rows(
        "SELECT a.key, v.reason, v.staff_id, v.at FROM voids v JOIN attempts a ON a.id = v.attempt_id ORDER BY v.at")
    assert backend_voids == [(offline_key, reason, manager["id"], void["at"]),
                             (online_key, typed.strip(), manager["id"], void2["at"])]
    backend = backend_report(till_env, day)
    assert backend["count"] == 0 and backend["voids"]["count"] == 2
    assert comparable(backend) == comparable(till_report(till_env, day))
    assert same_times(till_report(till_env, day), backend)
    assert attempt_rows(till_env) == original


def test_a_void_from_the_report_proves_its_manager_and_the_backend_records_it_verified(qtbot, two_redemptions,
                                                                                       till_env):
    window = two_redemptions
    view = open_report(qtbot, window)
    key = key_where(view, decided="offline")
    void = void_through_dialog(qtbot, view, key, reason="  venta anulada  ")
    ((payload,),) = store_rows(till_env, "SELECT payload FROM outbox WHERE key = ?", (void["id"],))
    entry = json.loads(payload)
    manager = till_env.staff["manager"]
    # Made with the PIN the manager logged in with: the backend's proof key (tills never get it) checks it.
    ((proof_key,),) = till_env.api.rows("SELECT proof_key FROM staff WHERE id = ?", (manager["id"],))
    assert pins.check_void_proof(pins.decode_key(proof_key), entry["staff_proof"], void_key=void["id"],
                                 redemption_key=key, staff_id=manager["id"], at=void["at"], reason="venta anulada")
    till_env.online = True
    with qtbot.waitSignal(window.status_changed, timeout=15000, check_params_cb=lambda s: s.outbox == 0):
        window.sync_now()
    assert till_env.api.rows("SELECT staff_id, verified FROM voids WHERE key = ?", (void["id"],)) == [
        (manager["id"], 1)]


def test_voiding_twice_is_told_as_already_voided_and_the_reason_is_kept(qtbot, two_redemptions, till_env):
    window = two_redemptions
    view = open_report(qtbot, window)
    key, dialog = dialog_for(view, decided="online")
    dialog.reason.setText("venta cancelada")
    # Meanwhile the same redemption is voided elsewhere (another manager on the store's records).
    with TillStore(till_env.store_path) as store:
        store.void(key, reason="primero", staff_id=till_env.staff["admin"]["id"])
    with (qtbot.waitSignal(view.report_shown, timeout=10000),
          qtbot.waitSignal(view.void_refused, timeout=10000) as blocker):
        dialog.confirm_button.click()
    assert blocker.args == [VoidError.ALREADY_VOIDED]
    assert dialog.isVisible() and dialog.problem.isVisible()
    assert dialog.problem.text() == "Este canje ya fue anulado."
    assert dialog.reason.text() == "venta cancelada" and dialog.confirm_button.isEnabled()  # nothing typed is lost
    # The report behind shows what happened: voided once, with the first reason.
    assert view.report["voids"]["count"] == 1 and view.report["voids"]["items"][0]["void_reason"] == "primero"
    assert status_cell(view, key) == "Anulado: primero" and not view.void_button.isEnabled()
    dialog.reject()
    assert store_rows(till_env, "SELECT reason FROM voids") == [("primero",)]

    # Asked straight (no button: it is disabled), the store still says no, in words.
    with qtbot.waitSignal(view.void_refused, timeout=10000) as blocker:
        view.void(key, "otra vez")
    assert blocker.args == [VoidError.ALREADY_VOIDED] and view.message.text() == "Este canje ya fue anulado."
    assert store_rows(till_env, "SELECT count(*) FROM voids") == [(1,)]


# --- hostile reasons ----------------------------------------------------------------------------


def test_hostile_reasons_are_limited_or_refused_plainly_and_emoji_are_fine(qtbot, two_redemptions, till_env):
    window = two_redemptions
    view = open_report(qtbot, window)
    key, dialog = dialog_for(view, decided="offline")

    dialog.reason.setText("x" * 10_000)  # a paste gone wrong: cut at the limit, and the counter says so
    assert len(dialog.reason.text()) == MAX_REASON
    assert dialog.count.text() == "200 de 200 caracteres" and dialog.confirm_button.isEnabled()
    dialog.reason.setText("   " + "z" * 300)  # leading blanks are not counted, nor do they cost real characters
    assert dialog.reason.text() == "z" * MAX_REASON

    for text in ("venta\x00anulada", "venta\x1banulada", "línea uno\u2028línea dos", "bell\x07"):
        dialog.reason.setText(text)
        assert dialog.reason.text() == text
        assert not dialog.confirm_button.isEnabled(), repr(text)
        assert dialog.problem.isVisible()
        assert dialog.problem.text() == "Una sola línea de texto, por favor: sin saltos de línea ni caracteres de control."
        dialog.reason.returnPressed.emit()  # Enter does not get round it
    for blank in ("", "   "):
        dialog.reason.setText(blank)
        assert not dialog.confirm_button.isEnabled()
    assert store_rows(till_env, "SELECT count(*) FROM voids") == [(0,)]
    dialog.reject()

    # What the dialog would not send, the store refuses too (a reason from anywhere else): invalid_value, in words.
    invalid = void_error_text(VoidError.INVALID_VALUE)
    assert invalid == "El motivo no es válido: una sola línea de texto, de 200 caracteres como máximo."
    for text in ("y" * 10_000, "a\nb", "\x00", "   "):
        with qtbot.waitSignal(view.void_refused, timeout=10000) as blocker:
            view.void(key, text)
        assert blocker.args == [VoidError.INVALID_VALUE] and view.message.text() == invalid
    assert store_rows(till_env, "SELECT count(*) FROM voids") == [(0,)]

    # Exactly at the limit, with emoji and a family joined by zero-width joiners: kept as typed.
    reason = ("Devolvió 🧉👨‍👩‍👧 " * 20)[:MAX_REASON - 1] + "é"
    void = void_through_dialog(qtbot, view, key, reason=reason)
    assert void["reason"] == reason.strip() and len(void["reason"]) <= MAX_REASON
    assert store_rows(till_env, "SELECT reason FROM voids") == [(reason.strip(),)]
    assert view.report["voids"]["items"][0]["void_reason"] == reason.strip()


# --- who may, what may be voided --------------------------------------------------------------------


def test_a_cashier_has_no_void_action(qtbot, make_window, till_env):
    window = make_window(role="cashier")
    assert redeem(qtbot, window, till_env.claim(customer="c")["token"]).verdict.accepted
    assert not window.report_button.isVisible() and window.open_report() is None
    # Even a report view made for a cashier (none is: the window opens it for managers) has no action.
    cashier = till_env.staff["cashier"]
    view = ReportView(window.store, timezone=window.info.timezone, staff={k: cashier[k] for k in ("id", "name", "role")},
                      parent=window)
    qtbot.addWidget(view)
    view.show()
    wait_settled(qtbot, view)
    view.tabs.setCurrentIndex(REDEMPTIONS_TAB)
    key = key_where(view, status="accepted")
    assert view.select_attempt(key)
    assert not view.can_void and not view.void_button.isVisible() and not view.void_hint.isVisible()
    assert view.open_void_dialog() is None
    view.void(key, "no debería")
    qtbot.wait(200)
    assert store_rows(till_env, "SELECT count(*) FROM voids") == [(0,)]
    view.done(0)


def test_a_manager_demoted_since_login_is_refused_by_the_store(qtbot, make_window, till_env):
    window = make_window(role="manager")
    assert redeem(qtbot, window, till_env.claim(customer="c")["token"]).verdict.accepted
    # The window believes a manager is logged in, but the store knows this person as a cashier.
    cashier = till_env.staff["cashier"]
    view = ReportView(window.store, timezone=window.info.timezone, staff={"id": cashier["id"],
                      "name": cashier["name"], "role": "manager"}, parent=window)
    qtbot.addWidget(view)
    view.show()
    wait_settled(qtbot, view)
    view.tabs.setCurrentIndex(REDEMPTIONS_TAB)
    key, dialog = dialog_for(view, status="accepted")
    dialog.quick[1].click()
    with qtbot.waitSignal(view.void_refused, timeout=10000) as blocker:
        dialog.confirm_button.click()
    assert blocker.args == [VoidError.FORBIDDEN]
    assert dialog.problem.text() == "Solo un encargado o un administrador puede anular un canje."
    assert store_rows(till_env, "SELECT count(*) FROM voids") == [(0,)]
    view.done(0)


def test_refused_and_conflict_rows_cannot_be_voided(qtbot, make_window, till_env):
    claim = till_env.claim(customer="raced")
    other = till_env.api.enroll("Caja 2")
    assert till_env.api.redeem(other, claim["token"]).status_code == 201  # Caja 2 redeems it first, online
    till_env.online = False  # before the window's first sync round could hear of it
    window = make_window(role="manager")
    raced = redeem(qtbot, window, claim["token"])
    assert raced.verdict.accepted and raced.decided == "offline"  # this till cannot know
    till_env.online = True
    window.sync_now()
    qtbot.waitUntil(lambda: window.status.conflicts == 1, timeout=15000)
    refused = redeem(qtbot, window, "no es un código", Method.TYPED)
    assert not refused.verdict.accepted
    view = open_report(qtbot, window)
    for status in ("refused", "conflict"):
        key = key_where(view, status=status)
        assert view.select_attempt(key)
        assert view.void_button.isVisible() and not view.void_button.isEnabled()
        assert view.void_hint.text() == "Solo se puede anular un canje aceptado."
        assert view.open_void_dialog() is None
        menu = view.attempt_menu()
        action = menu.actions()[0]
        assert action.text() == "Anular…" and not action.isEnabled()
        menu.close()
    # Asked straight anyway: not an accepted redemption, in words, and nothing written.
    with qtbot.waitSignal(view.void_refused, timeout=10000) as blocker:
        view.void(key_where(view, status="refused"), "error")
    assert blocker.args == [VoidError.NOT_ACCEPTED]
    assert view.message.text() == void_error_text(VoidError.NOT_ACCEPTED)
    assert store_rows(till_env, "SELECT count(*) FROM voids") == [(0,)]


def test_cancel_does_nothing(qtbot, two_redemptions, till_env):
    window = two_redemptions
    view = open_report(qtbot, window)
    report, outbox = view.report, store_rows(till_env, "SELECT key FROM outbox ORDER BY seq")
    key = key_where(view, decided="online")
    assert view.select_attempt(key)
    menu = view.attempt_menu()  # the context menu says the same as the button
    action = menu.actions()[0]
    assert action.text() == "Anular…" and action.isEnabled()
    action.trigger()
    dialog = view.void_dialog
    assert dialog is not None and dialog.isVisible() and QApplication.activeModalWidget() is dialog
    dialog.quick[2].click()
    assert dialog.reason.text() == "Cupón equivocado" and dialog.quick[2].isChecked()
    arrived = []
    view.report_shown.connect(arrived.append)
    view.voided.connect(arrived.append)
    dialog.cancel_button.click()
    assert not dialog.isVisible() and view.void_dialog is None
    qtbot.wait(300)
    assert arrived == []
    assert view.report is report and view.selected_attempt_key() == key and view.void_button.isEnabled()
    assert store_rows(till_env, "SELECT count(*) FROM voids") == [(0,)]
    assert store_rows(till_env, "SELECT key FROM outbox ORDER BY seq") == outbox
    assert status_cell(view, key) == "Aceptado"


def test_the_dialog_follows_the_language(qtbot, two_redemptions, till_env):
    window = two_redemptions
    view = open_report(qtbot, window)
    _, dialog = dialog_for(view, decided="offline")
    texts = {}
    for language in ("es", "gn", "pt", "en"):
        window.set_language(language)
        texts[language] = (dialog.windowTitle(), dialog.confirm_button.text(), dialog.quick[0].text(),
                           dialog.summary["method"].text(), view.void_button.text())
    assert texts["en"] == ("Void a redemption", "Void redemption", "Customer returned the goods", "Camera", "Void…")
    for a in ("es", "gn", "pt"):
        assert all(x != y for x, y in zip(texts[a], texts["en"], strict=True)), a
    dialog.reject()


def test_a_void_answered_after_its_view_was_closed_and_replaced_is_kept_quietly(qtbot, two_redemptions, till_env):
    window = two_redemptions
    view = open_report(qtbot, window)
    key, dialog = dialog_for(view, decided="offline")
    gate = threading.Event()
    window.store.submit(lambda store: gate.wait(10))  # the store's thread busy, as with a slow disk
    dialog.reason.setText("Venta cancelada")
    dialog.confirm()
    dialog.reject()  # the manager gives up waiting,
    newer = window.open_report()  # and opens the report again: the first view is deleted
    qtbot.waitUntil(lambda: not isValid(view), timeout=5000)
    gate.set()
    wait_settled(qtbot, newer)  # no error from the late answer; the void is kept all the same
    with TillStore(till_env.store_path) as store:
        [void] = store.voids(0, time.time() + 3600)
    assert (void["redemption_key"], void["reason"]) == (key, "Venta cancelada")
