"""The till's window: the scan screen a cashier lives in, behind a staff login.

Every input (camera, scanner, typed, printed, image) goes to `submit`, which
asks the screen's gate (`scan/gate.py`: repeats, one redemption at a time, a
bounded queue) and hands what it admits to the store's thread. Widgets only
show results delivered back by signals. This module wires the screen's parts
(scan_screen, status_line, pictures, settings_flow) and holds what it does.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QCoreApplication, QEvent, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication, QMainWindow, QStackedWidget, QWidget

from ..words import i18n
from ..core.domain import LANGUAGES, Method
from ..words.i18n import _
from ..scan.gate import Admission, ScanGate
from ..store.settings import value
from ..sync.redeem import Outcome
from ..sync.status import StoreFigures, SyncStatus
from . import qt_translations, staff_login, withdrawn
from .booklet_view import BookletView
from .camera import CameraFeed
from .login import LoginScreen
from .pictures import Pictures
from .printed_entry import PrintedCodeDialog
from .retranslate import Retranslating
from .scan_screen import MANAGER_ROLES, ScanScreen
from .scanner_input import ScannerListener
from .settings_flow import SettingsFlow
from .sounds import VerdictSounds
from .status_line import StatusLine
from .store_thread import StoreThread
from .sync_panel import SyncPanel
from .tasks import TaskPool
from .till_info import TillInfo, backend_client, load_info, status_of

if TYPE_CHECKING:
    from .report.view import ReportView

log = logging.getLogger(__name__)


class TillWindow(Retranslating, QMainWindow):
    """The whole till; `store_path` is an enrolled till's store file."""

    verdict_shown = Signal(object)  # the Outcome (or None for a message), once it is on screen
    status_changed = Signal(object)  # the SyncStatus shown
    _engine_status = Signal(object)  # from the sync engine's thread to this one

    def __init__(self, store_path: Path, *, camera: str | None = None, camera_loop: bool = False,
                 sounds: bool = True, clock: Callable[[], float] = time.time, open_client=None,
                 background_sync: bool = True, feed_interval_s: float | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.clock = clock
        self.camera_override, self.camera_loop = camera, camera_loop
        self.staff: dict | None = None
        self.settings: dict = {}
        self.status = SyncStatus()
        self.info: TillInfo | None = None  # until the store's thread has read it
        self.gate = ScanGate(clock=clock)
        self.camera_feed: CameraFeed | None = None
        self.tasks = TaskPool(self)
        self.pictures, self.settings_flow = Pictures(self), SettingsFlow(self)
        self._open_client = open_client or backend_client
        self._pin = ""  # the logged-in member's PIN, in memory only: staff credentials, void proofs, a PIN change
        self.store = StoreThread(store_path, open_client=self._open_client, parent=self)
        self.store.start()
        self.sounds = VerdictSounds(self, enabled=sounds)
        QTimer.singleShot(0, self.sounds.load)
        self.sync_engine = self.lan_service = None
        if background_sync:
            from ..sync.engine import DEFAULT_FEED_INTERVAL_S, SyncEngine
            # Its own thread and store connection: a slow backend never delays a redemption.
            self.sync_engine = SyncEngine(store_path, client_factory=open_client, on_status=self._engine_status.emit,
                                          feed_interval_s=feed_interval_s or DEFAULT_FEED_INTERVAL_S, clock=clock)
            self._engine_status.connect(self.show_status)
            from ..lan.service import LanService
            self.lan_service = LanService(store_path, clock=clock)  # the store's other tills: threads of its own

        self.setObjectName("tillWindow")
        self.setAcceptDrops(True)
        self.resize(1280, 800)
        self.pages = QStackedWidget()
        self.login = LoginScreen()
        self.scan_screen = self._build_scan_screen()
        self.pages.addWidget(self.login)
        self.pages.addWidget(self.scan_screen)
        self.setCentralWidget(self.pages)
        self.withdrawal = withdrawn.install(self)  # the backend withdrew the till: store/standing.py
        self.status_line = StatusLine(self.statusBar())
        self.online_badge, self.outbox_label = self.status_line.online_badge, self.status_line.outbox_label
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

    def _build_scan_screen(self) -> ScanScreen:
        screen = ScanScreen()
        self.language, self.entry, self.panel, self.camera_view = (screen.language, screen.entry, screen.panel,
                                                                   screen.camera_view)
        self.sync_button, self.settings_button, self.booklet_button, self.report_button, self.lock_button = (
            screen.sync_button, screen.settings_button, screen.booklet_button, screen.report_button,
            screen.lock_button)
        self.redeem_button, self.printed_button, self.image_button, self.demo_note = (
            screen.redeem_button, screen.printed_button, screen.image_button, screen.demo_note)
        self.language.activated.connect(lambda i: self.set_language(self.language.itemData(i)))
        for button, action in ((self.sync_button, self.open_sync_panel), (self.settings_button, self.open_settings),
                               (self.booklet_button, self.open_booklet), (self.report_button, self.open_report),
                               (self.lock_button, self.lock)):
            button.clicked.connect(action)
        self.entry.returnPressed.connect(self._typed)
        for button, action in ((self.redeem_button, self._typed), (self.printed_button, self.open_printed_entry),
                               (self.image_button, self.open_image)):
            button.clicked.connect(action)
        self.panel.returned_to_ready.connect(self._ready_again)
        return screen

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
        for worker in filter(None, (self.sync_engine, self.lan_service)):  # the LAN's: docs/sync.md
            worker.start()

    def _store_failed(self, exc: BaseException) -> None:
        log.error("store job failed: %s", exc)

    def _log_in(self, staff_id: str, pin: str) -> None:
        staff_login.log_in(self, staff_id, pin)  # the lockout's refusals, a short PIN's change: staff_login.py

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

    def camera_text(self, text: str) -> None:
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
        if self.staff is not None:
            self.pictures.choose()

    def scan_image(self, path: str) -> None:
        """Decode a picture (a customer's screenshot) off the GUI thread, then redeem what it holds."""
        self.pictures.scan(path)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.staff is not None and self.pictures.accepts([u.toLocalFile() for u in event.mimeData().urls()]):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = event.mimeData().urls()
        if urls:
            self.scan_image(urls[0].toLocalFile())
            event.acceptProposedAction()

    # --- the redemption -------------------------------------------------------------

    def submit(self, text: str, method: str) -> None:
        """Every input ends here: show a repeat, refuse a flood, or decide it on the store's thread."""
        if self.staff is None or self.withdrawal.refuses():
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
            self.show_message("caution", _("Too many scans at once"),
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
                          lambda exc: self._failed(text, exc), told=withdrawn.TOLD)

    def _decided(self, text: str, method: str, outcome: Outcome) -> None:
        self.gate.decided(text, method, outcome)
        if outcome.decided == "online" or outcome.note:  # a local refusal of garbage says nothing of the network
            self.status = replace(self.status, online=outcome.decided == "online")
        self._show_outcome(outcome, printed_hint=outcome.verdict.kind == "printed")
        if self.sync_engine is not None and outcome.decided == "offline":
            self.sync_engine.notify_queued()
        self.refresh_status()

    def _failed(self, text: str, exc: BaseException) -> None:
        self.gate.done(text)
        if self.withdrawal.took(exc):
            return
        if isinstance(exc, sqlite3.Error):
            # Nothing was shown as accepted: the cashier must not give the discount.
            self.show_message("refused", _("Not recorded: do not give the discount"),
                               _("The till could not save this redemption ({error}). Free some space "
                                 "or call support; the code was not used.").format(error=exc))
        else:
            self.show_message("refused", _("Something went wrong: do not give the discount"), str(exc))

    def _show_outcome(self, outcome: Outcome, *, printed_hint: bool = False, repeat: bool = False) -> None:
        self.panel.show_verdict(outcome.verdict, decided=outcome.decided, printed_hint=printed_hint, repeat=repeat)
        if not repeat:
            self.sounds.play(outcome.verdict.accepted)
        self.verdict_shown.emit(outcome)

    def show_message(self, severity: str, headline: str, detail: str) -> None:
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
        self.camera_feed.decoded.connect(self.camera_text)
        self.camera_feed.state_changed.connect(self.camera_view.set_state)
        self.camera_feed.start()

    def stop_camera(self) -> None:
        if self.camera_feed is not None:
            self.camera_feed.stop()
            self.camera_feed = None

    # --- settings, sync, status -----------------------------------------------------

    def open_settings(self) -> None:
        if self.staff is not None and self.staff["role"] in MANAGER_ROLES:
            self.settings_flow.open()

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
        self.store.submit(run, self.show_status, lambda exc: self.show_status(self.status.with_figures(last_error=str(exc))))

    def refresh_status(self) -> None:
        if self.store.pending() == 0:
            self.store.submit(status_of, self.show_status)
            staff_login.check_still_here(self)  # a member the operator disabled is locked out here too

    def show_status(self, status: SyncStatus | StoreFigures) -> None:
        self.status = self.status.updated_by(status)
        self.withdrawal.follow(self.status)
        if self.sync_panel.isVisible():
            self.sync_panel.show_status(self.status)
        self._show_status_line()
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
        names = (self.info.store_name, self.info.device_name) if self.info else ()
        self.scan_screen.retranslate(self.staff, " · ".join(x for x in names if x))
        self._show_status_line()

    def _show_status_line(self) -> None:
        self.status_line.show(self.status, self.staff, self.panel.timezone, self.clock(),
                              server_url=self.info.server_url if self.info else "")

    # --- shutting down --------------------------------------------------------------

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        self._status_timer.stop()
        QApplication.instance().removeEventFilter(self.scanner)
        self.stop_camera()
        for worker in filter(None, (self.lan_service, self.sync_engine)):
            worker.stop()
        self.lan_service = self.sync_engine = None
        self.store.stop()
        self.tasks.shutdown()
