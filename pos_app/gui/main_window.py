"""The till's window: the scan screen a cashier lives in, behind a staff login.

Every input (camera, scanner, typed, printed, image) goes to `submit`, which
keeps the rules of the screen (repeat sightings, one redemption at a time,
a bounded queue) and hands the redemption to the store's thread. Widgets only
ever show results delivered back by signals.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QCoreApplication, QEvent, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ..words import i18n
from ..core.domain import LANGUAGES, Method
from ..core.verdict import MAX_INPUT_CHARS
from ..words.i18n import LANGUAGE_NAMES, _, format_number, format_when
from ..scan.gate import Admission, ScanGate
from ..store.settings import value
from ..sync.redeem import Outcome
from . import qt_translations
from .booklet_view import BookletView
from .camera import CameraFeed, CameraView
from .login import LoginScreen
from .printed_entry import PrintedCodeDialog
from .retranslate import Retranslating
from .scanner_input import ScannerListener
from .settings_dialog import SettingsDialog
from .sounds import VerdictSounds
from .store_thread import StoreThread
from .sync_panel import SyncPanel
from .tasks import TaskPool
from .till_info import TillInfo, backend_client, load_info, status_of
from .verdict_panel import VerdictPanel

if TYPE_CHECKING:
    from .report.view import ReportView

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
MANAGER_ROLES = ("manager", "admin")


class TillWindow(Retranslating, QMainWindow):
    """The whole till; `store_path` is an enrolled till's store file."""

    verdict_shown = Signal(object)  # the Outcome (or None for a message), once it is on screen
    status_changed = Signal(dict)
    _engine_status = Signal(dict)  # from the sync engine's thread to this one

    def __init__(self, store_path: Path, *, camera: str | None = None, camera_loop: bool = False,
                 sounds: bool = True, clock: Callable[[], float] = time.time, open_client=None,
                 background_sync: bool = True, feed_interval_s: float | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.clock = clock
        self.camera_override, self.camera_loop = camera, camera_loop
        self.staff: dict | None = None
        self.settings: dict = {}
        self.status: dict = {}
        self.info: TillInfo | None = None  # until the store's thread has read it
        self.gate = ScanGate(clock=clock)
        self.camera_feed: CameraFeed | None = None
        self.tasks = TaskPool(self)
        self._open_client = open_client or backend_client
        self._pin = ""  # the logged-in admin's PIN, kept in memory only, for the booklet's staff credentials
        self.store = StoreThread(store_path, open_client=self._open_client, parent=self)
        self.store.start()
        self.sounds = VerdictSounds(self, enabled=sounds)
        QTimer.singleShot(0, self.sounds.load)
        self.sync_engine = None
        if background_sync:
            from ..sync.engine import DEFAULT_FEED_INTERVAL_S, SyncEngine
            # Its own thread and store connection: a slow backend never delays a redemption.
            self.sync_engine = SyncEngine(store_path, client_factory=open_client, on_status=self._engine_status.emit,
                                          feed_interval_s=feed_interval_s or DEFAULT_FEED_INTERVAL_S, clock=clock)
            self._engine_status.connect(self.show_status)

        self.setObjectName("tillWindow")
        self.setAcceptDrops(True)
        self.resize(1280, 800)
        self.pages = QStackedWidget()
        self.login = LoginScreen()
        self.scan_screen = self._build_scan_screen()
        self.pages.addWidget(self.login)
        self.pages.addWidget(self.scan_screen)
        self.setCentralWidget(self.pages)
        self._build_status_bar()
        self.sync_panel = SyncPanel(self)
        self.sync_panel.sync_requested.connect(self.sync_now)
        self.report_view: ReportView | None = None

        self.scanner = ScannerListener(self)
        self.scanner.scanned.connect(self._scanned)
        QApplication.instance().installEventFilter(self.scanner)
        self.scanner.enabled = False

        self.login.submitted.connect(self._log_in)
        self.login.language_chosen.connect(self.set_language)
        self._shortcuts()
        self._status_timer = QTimer(self, interval=5000)
        self._status_timer.timeout.connect(self.refresh_status)
        self._status_timer.start()
        self.store.submit(load_info, self._info_loaded, self._store_failed)
        self.retranslate()

    # --- building -------------------------------------------------------------------

    def _build_scan_screen(self) -> QWidget:
        screen = QWidget()
        top = QFrame(objectName="topBar")
        self.till_name = QLabel(objectName="tillName")
        self.staff_name = QLabel(objectName="staffName")
        self.language = QComboBox(objectName="language")
        for code in LANGUAGES:
            self.language.addItem(LANGUAGE_NAMES[code], code)
        self.language.activated.connect(lambda i: self.set_language(self.language.itemData(i)))
        self.sync_button = _button("syncButton", self.open_sync_panel)
        self.settings_button = _button("settingsButton", self.open_settings)
        self.booklet_button = _button("bookletButton", self.open_booklet)
        self.report_button = _button("reportButton", self.open_report)
        self.lock_button = _button("lockButton", self.lock)
        bar = QHBoxLayout(top)
        bar.setContentsMargins(12, 6, 12, 6)
        bar.addWidget(self.till_name)
        bar.addStretch(1)
        for widget in (self.staff_name, self.language, self.sync_button, self.report_button, self.booklet_button,
                       self.settings_button, self.lock_button):
            bar.addWidget(widget)

        self.camera_view = CameraView()
        self.entry = QLineEdit(objectName="codeEntry", maxLength=MAX_INPUT_CHARS)
        self.entry.returnPressed.connect(self._typed)
        self.redeem_button = _button("primary", self._typed)
        self.printed_button = _button("printedButton", self.open_printed_entry)
        self.image_button = _button("imageButton", self.open_image)
        self.demo_note = QLabel(objectName="demoNote", wordWrap=True)
        self.demo_note.hide()
        entry_row = QHBoxLayout()
        entry_row.addWidget(self.entry, 1)
        entry_row.addWidget(self.redeem_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.printed_button, 1)
        buttons.addWidget(self.image_button, 1)
        left = QVBoxLayout()
        left.addWidget(self.camera_view, 1)
        left.addLayout(entry_row)
        left.addLayout(buttons)
        left.addWidget(self.demo_note)

        self.panel = VerdictPanel()
        self.panel.returned_to_ready.connect(self._ready_again)
        body = QHBoxLayout()
        body.setContentsMargins(12, 12, 12, 12)
        body.setSpacing(16)
        body.addLayout(left, 9)
        body.addWidget(self.panel, 11)
        outer = QVBoxLayout(screen)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(top)
        outer.addLayout(body, 1)
        return screen

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.online_badge = QLabel(objectName="onlineBadge")
        self.outbox_label = QLabel(objectName="outboxLabel")
        self.last_sync_label = QLabel(objectName="lastSyncLabel")
        self.skew_badge = QLabel(objectName="skewBadge")
        self.staff_status = QLabel(objectName="staffStatus")
        for widget in (self.online_badge, self.outbox_label, self.last_sync_label, self.skew_badge):
            bar.addWidget(widget)
        bar.addPermanentWidget(self.staff_status)

    def _shortcuts(self) -> None:
        for keys, action in ((QKeySequence("F2"), self.open_printed_entry),
                             (QKeySequence("Ctrl+O"), self.open_image),
                             (QKeySequence("F5"), self.open_sync_panel),
                             (QKeySequence("F6"), self.open_report),
                             (QKeySequence("Ctrl+L"), self.lock),
                             (QKeySequence("Escape"), self._escape)):
            shortcut = QShortcut(keys, self)
            shortcut.activated.connect(action)

    # --- start-up, login, lock ------------------------------------------------------

    def _info_loaded(self, info: TillInfo) -> None:
        self.info = info
        self.settings = dict(info.settings)
        self.panel.timezone = self.sync_panel.timezone = info.timezone or None
        self.panel.hold_s = value(self.settings, "verdict_hold_s")
        self.sounds.enabled = self.sounds.enabled and value(self.settings, "sound") != "0"
        self.login.set_staff(info.staff)
        self.set_language(value(self.settings, "language"), save=False)
        self.show_status(info.status)
        self.start_camera()
        if self.sync_engine is not None:
            self.sync_engine.start()

    def _store_failed(self, exc: BaseException) -> None:
        log.error("store job failed: %s", exc)

    def _log_in(self, staff_id: str, pin: str) -> None:
        def checked(member):
            self._pin = pin if member else ""
            self._logged_in(member)
        self.store.submit(lambda store: store.check_staff_pin(staff_id, pin), checked,
                          lambda exc: self.login.show_error(_("The PIN could not be checked: {error}").format(
                              error=exc)))

    def _logged_in(self, member: dict | None) -> None:
        if member is None:
            self.login.show_error(_("Wrong staff ID or PIN."))
            return
        self.staff = member
        self.pages.setCurrentWidget(self.scan_screen)
        self.scanner.enabled = True
        self.entry.setFocus()
        self.retranslate()

    def log_in_as(self, member: dict, pin: str = "") -> None:
        """Used by the demo: a staff member already checked."""
        self._pin = pin
        self._logged_in(member)

    def set_demo_note(self, text: str) -> None:
        self.demo_note.setText(text)
        self.demo_note.setVisible(bool(text))

    def lock(self) -> None:
        if self.staff is None:
            return
        self.scanner.enabled = False
        self.login.reset(locked_by=self.staff["name"], staff_id=self.staff["id"])
        self.staff = None
        self._pin = ""
        self.entry.clear()
        self.pages.setCurrentWidget(self.login)
        self.retranslate()

    # --- inputs ---------------------------------------------------------------------

    def _typed(self) -> None:
        text = self.entry.text()
        self.entry.clear()
        if text.strip():
            self.submit(text, Method.TYPED)

    def _scanned(self, text: str, ended_with_enter: bool) -> None:
        if self.pages.currentWidget() is self.scan_screen and QApplication.activeModalWidget() is None:
            self.submit(text, Method.SCANNER)

    def _camera_text(self, text: str) -> None:
        if self.staff is not None and QApplication.activeModalWidget() is None:
            self.submit(text, Method.CAMERA)

    def open_printed_entry(self) -> None:
        if self.staff is None:
            return
        dialog = PrintedCodeDialog(self)
        if dialog.exec() and dialog.text():
            self.submit(dialog.text(), Method.PRINTED)
        self.entry.setFocus()

    def open_image(self) -> None:
        if self.staff is None:
            return
        path, _filter = QFileDialog.getOpenFileName(
            self, _("Open a picture of a voucher"), "", _("Images ({patterns})").format(
                patterns=" ".join("*" + s for s in IMAGE_SUFFIXES)))
        if path:
            self.scan_image(path)

    def scan_image(self, path: str) -> None:
        """Decode a picture (a customer's screenshot) off the GUI thread, then redeem what it holds."""
        from ..scan.decoders import make_decoder
        from ..scan.pipeline import scan_image_file

        decoder_name = value(self.settings, "decoder")
        self.panel.show_working()
        self.tasks.run(lambda: scan_image_file(path, make_decoder(decoder_name)), self._image_read,
                       lambda exc: self._show_message("caution", _("Picture not readable"), str(exc)))

    def _image_read(self, texts: list[str]) -> None:
        if not texts:
            self._show_message("caution", _("No code in the picture"),
                               _("No QR code was found. Ask for a sharper picture, or type the code."))
        elif len(texts) > 1:
            self._show_message("caution", _("Several codes in the picture"),
                               _("Ask the customer to show one voucher at a time."))
        else:
            self.submit(texts[0], Method.IMAGE)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if self.staff is not None and len(urls) == 1 and urls[0].toLocalFile().lower().endswith(IMAGE_SUFFIXES):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = event.mimeData().urls()
        if urls:
            self.scan_image(urls[0].toLocalFile())
            event.acceptProposedAction()

    # --- the redemption -------------------------------------------------------------

    def submit(self, text: str, method: str) -> None:
        """Every input ends here: show a repeat, refuse a flood, or decide it on the store's thread."""
        if self.staff is None:
            return
        answer = self.gate.admit(text, method)
        if answer.admission is Admission.SHOW_AGAIN:
            # Still in view (or scanned twice): the same verdict, never a second redemption.
            if self.panel.verdict is not answer.outcome.verdict:
                self._show_outcome(answer.outcome, repeat=True)
            return
        if answer.admission is Admission.IGNORE:
            return
        if answer.admission is Admission.FLOOD:
            self._show_message("caution", _("Too many scans at once"),
                               _("Scan one voucher at a time, and wait for the verdict."))
            return
        self.panel.show_working()
        staff_id = self.staff["id"]
        store_thread = self.store
        # While the engine knows the backend is down, each scan would only wait out the timeout.
        ask_backend = self.sync_engine is None or self.sync_engine.online is not False

        def decide(store):
            from ..sync.redeem import redeem
            client = store_thread.client if ask_backend else None
            return redeem(store, text, method=method, staff_id=staff_id, client=client)

        self.store.submit(decide, lambda outcome: self._decided(text, method, outcome),
                          lambda exc: self._failed(text, exc))

    def _decided(self, text: str, method: str, outcome: Outcome) -> None:
        self.gate.decided(text, method, outcome)
        if outcome.decided == "online" or outcome.note:  # a local refusal of garbage says nothing of the network
            self.status["online"] = outcome.decided == "online"
        self._show_outcome(outcome, printed_hint=outcome.verdict.kind == "printed")
        if self.sync_engine is not None and outcome.decided == "offline":
            self.sync_engine.notify_queued()
        self.refresh_status()

    def _failed(self, text: str, exc: BaseException) -> None:
        self.gate.done(text)
        if isinstance(exc, sqlite3.Error):
            # Nothing was shown as accepted: the cashier must not give the discount.
            self._show_message("refused", _("Not recorded: do not give the discount"),
                               _("The till could not save this redemption ({error}). Free some space "
                                 "or call support; the code was not used.").format(error=exc))
        else:
            self._show_message("refused", _("Something went wrong: do not give the discount"), str(exc))

    def _show_outcome(self, outcome: Outcome, *, printed_hint: bool = False, repeat: bool = False) -> None:
        self.panel.show_verdict(outcome.verdict, decided=outcome.decided, printed_hint=printed_hint, repeat=repeat)
        if not repeat:
            self.sounds.play(outcome.verdict.accepted)
        self.verdict_shown.emit(outcome)

    def _show_message(self, severity: str, headline: str, detail: str) -> None:
        self.panel.show_message(severity, headline, detail)
        self.sounds.play(False)
        self.verdict_shown.emit(None)

    def _ready_again(self) -> None:
        if self.pages.currentWidget() is self.scan_screen and QApplication.activeModalWidget() is None:
            self.entry.setFocus()

    def _escape(self) -> None:
        self.entry.clear()
        self.panel.show_ready()

    # --- camera ---------------------------------------------------------------------

    def start_camera(self) -> None:
        self.stop_camera()
        spec = self.camera_override or value(self.settings, "camera")
        if not spec:
            self.camera_view.set_state("off")
            return
        self.camera_feed = CameraFeed(spec, decoder=value(self.settings, "decoder"), loop=self.camera_loop)
        self.camera_feed.preview.connect(self.camera_view.show_frame)
        self.camera_feed.decoded.connect(self._camera_text)
        self.camera_feed.state_changed.connect(self.camera_view.set_state)
        self.camera_feed.start()

    def stop_camera(self) -> None:
        if self.camera_feed is not None:
            self.camera_feed.stop()
            self.camera_feed = None

    # --- settings, sync, status -----------------------------------------------------

    def open_settings(self) -> None:
        if self.staff is None or self.staff["role"] not in MANAGER_ROLES:
            return
        from ..scan.frames import list_cameras
        self.tasks.run(list_cameras, self._settings_with_cameras, lambda exc: self._settings_with_cameras([]))

    def _settings_with_cameras(self, cameras: list[int]) -> None:
        dialog = SettingsDialog(self.settings, cameras, self)
        if not dialog.exec():
            return
        values = dialog.values()
        camera_changed = (values["camera"], values["decoder"]) != (self.settings.get("camera"),
                                                                   self.settings.get("decoder"))
        self.settings.update(values)
        self.panel.hold_s = float(values["verdict_hold_s"])
        self.sounds.enabled = values["sound"] == "1"
        self.sounds.load()

        def save(store):
            for key, value in values.items():
                store.set(key, value)
            if self.store.client is not None:  # the new timeout takes effect with a new client
                self.store.client.close()
                self.store.client = backend_client(store)
        self.store.submit(save)
        if camera_changed:
            self.camera_override = None
            self.start_camera()

    def open_booklet(self) -> BookletView | None:
        if self.staff is None or self.staff["role"] != "admin":
            return None
        backend = self.info.backend() if self.info else {}
        view = BookletView(lambda: self._open_client(backend), (self.staff["id"], self._pin), self)
        view.setModal(True)
        view.show()
        return view

    def open_report(self) -> ReportView | None:
        """The day report, for managers and admins; it computes on the store's thread."""
        if self.staff is None or self.staff["role"] not in MANAGER_ROLES:
            return None
        # QtCharts and the report's modules are loaded when a report is first asked for, not at start-up.
        from .report.view import ReportView

        if self.report_view is not None:
            self.report_view.close()
            self.report_view.deleteLater()
        self.report_view = ReportView(self.store, timezone=self.info.timezone if self.info else None, clock=self.clock,
                                      staff=self.staff, parent=self)
        self.report_view.voided.connect(self._voided)
        self.report_view.setModal(True)
        self.report_view.setGeometry(self.geometry())
        self.report_view.show()
        return self.report_view

    def _voided(self, _void: dict) -> None:
        """A void entered the outbox: the status bar counts it, the sync engine sends it on its next round."""
        if self.sync_engine is not None:
            self.sync_engine.notify_queued()
        self.refresh_status()

    def open_sync_panel(self) -> None:
        self.sync_panel.show_conflicts = bool(self.staff) and self.staff["role"] in MANAGER_ROLES
        self.refresh_status()
        self.sync_panel.show_status(self.status)
        self.sync_panel.show()
        self.sync_panel.raise_()

    def sync_now(self) -> None:
        if self.sync_engine is not None:
            self.sync_engine.sync_now()  # the engine's answer arrives through on_status
            return

        def run(store):
            from ..sync.round import sync_once
            if self.store.client is None:
                raise RuntimeError("this till has no backend")
            sync_once(store, self.store.client)
            return status_of(store)
        self.store.submit(run, self.show_status, lambda exc: self.show_status({**self.status, "last_error": str(exc)}))

    def refresh_status(self) -> None:
        if self.store.pending() == 0:
            self.store.submit(status_of, self.show_status)

    def show_status(self, status: dict) -> None:
        kept = {k: self.status[k] for k in ("online", "conflict_entries") if k in self.status}
        self.status = {**kept, **status}
        if self.sync_panel.isVisible():
            self.sync_panel.show_status(self.status)
        self._retranslate_status()
        self.status_changed.emit(self.status)

    # --- languages ------------------------------------------------------------------

    def set_language(self, code: str, *, save: bool = True) -> None:
        if code not in LANGUAGES:
            return
        i18n.set_language(code)
        qt_translations.install(code)
        for widget in QApplication.allWidgets():
            QCoreApplication.sendEvent(widget, QEvent(QEvent.Type.LanguageChange))
        self.language.setCurrentIndex(self.language.findData(code))
        self.login.set_language(code)
        if save:
            self.store.submit(lambda store: store.set("language", code))


    def retranslate(self) -> None:
        self.setWindowTitle(_("Pika Till"))
        device = self.info.device_name if self.info else ""
        store_name = self.info.store_name if self.info else ""
        self.till_name.setText(" · ".join(x for x in (store_name, device) if x) or _("Pika Till"))
        if self.staff:
            roles = {"cashier": _("cashier"), "manager": _("manager"), "admin": _("admin")}
            self.staff_name.setText(_("{name} ({role})").format(name=self.staff["name"],
                                                                 role=roles.get(self.staff["role"], "")))
        self.staff_name.setVisible(self.staff is not None)
        self.settings_button.setVisible(bool(self.staff) and self.staff["role"] in MANAGER_ROLES)
        self.booklet_button.setVisible(bool(self.staff) and self.staff["role"] == "admin")
        self.booklet_button.setText(_("Booklet"))
        self.report_button.setVisible(bool(self.staff) and self.staff["role"] in MANAGER_ROLES)
        self.report_button.setText(_("Report"))
        self.report_button.setToolTip(_("The day's report (F6)"))
        self.sync_button.setText(_("Sync"))
        self.settings_button.setText(_("Settings"))
        self.lock_button.setText(_("Lock"))
        self.lock_button.setToolTip(_("Lock the till (Ctrl+L)"))
        self.entry.setPlaceholderText(_("Type or scan a code"))
        self.redeem_button.setText(_("Redeem"))
        self.printed_button.setText(_("Printed voucher (F2)"))
        self.image_button.setText(_("Open picture (Ctrl+O)"))
        self.language.setToolTip(_("Language"))
        self._retranslate_status()

    def _retranslate_status(self) -> None:
        s, now = self.status, self.clock()
        online = s.get("online")
        self.online_badge.setProperty("online", "true" if online else "false")
        self.online_badge.style().unpolish(self.online_badge)
        self.online_badge.style().polish(self.online_badge)
        self.online_badge.setText(_("● Online") if online else _("● Offline") if online is False
                                  else _("● Not connected yet"))
        self.outbox_label.setText(_("To send: {n}").format(n=format_number(int(s.get("outbox") or 0))))
        last = s.get("last_sync")
        self.last_sync_label.setText(_("Last sync: {when}").format(
            when=format_when(float(last), self.panel.timezone, now) if last else _("never")))
        skew = s.get("clock_skew_s")
        off = bool(s.get("clock_skew_flagged")) and skew is not None
        self.skew_badge.setText(_("Clock off by {seconds} s").format(seconds=format_number(round(float(skew))))
                                if off else "")
        self.skew_badge.setVisible(off)
        self.staff_status.setText(self.staff["name"] if self.staff else _("Nobody logged in"))

    # --- shutting down --------------------------------------------------------------

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        self._status_timer.stop()
        QApplication.instance().removeEventFilter(self.scanner)
        self.stop_camera()
        if self.sync_engine is not None:
            self.sync_engine.stop()
            self.sync_engine = None
        self.store.stop()
        self.tasks.shutdown()


def _button(name: str, on_click) -> QPushButton:
    button = QPushButton(objectName=name)
    button.clicked.connect(on_click)
    return button
