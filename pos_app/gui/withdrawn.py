"""The scan screen of a till the backend withdrew or gave a new token: one big, steady state instead of verdicts.

The store keeps the backend's word (store/standing.py); the window learns it from a redemption that met
it, from the store's figures (the sync engine's round, the status timer) and from a PIN change. From then
on every scan or typed code shows this state again and nothing is decided. A manager can export what the
backend never confirmed (store/outbox_export.py) from here, for the operator.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QFrame, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from ..store import standing
from ..words.i18n import N_, _, format_number
from .retranslate import Retranslating
from .theme import REFUSED

REFUSAL_SOUND_S = 2.0
TOLD = (standing.Withdrawn,)  # a redemption's failure that is the backend's word, not a fault to log in full

_STYLE = f"""
QFrame#withdrawnPanel {{ border-radius: 14px; background: {REFUSED}; }}
QFrame#withdrawnPanel QLabel {{ color: white; }}
QLabel#withdrawnSymbol {{ font-size: 96px; font-weight: bold; }}
QLabel#withdrawnHeadline {{ font-size: 40px; font-weight: bold; }}
QLabel#withdrawnDetails {{ font-size: 22px; }}
QLabel#withdrawnNote {{ font-size: 20px; background: rgba(255, 255, 255, 0.18); border-radius: 8px; padding: 8px; }}
"""


class WithdrawnPanel(Retranslating, QFrame):
    """Shown where the verdict panel is, for as long as the till is withdrawn (`state`)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("withdrawnPanel")
        self.setStyleSheet(_STYLE)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.state: str | None = None
        self._note = ("", {})
        self.symbol = QLabel("✕", objectName="withdrawnSymbol", alignment=Qt.AlignmentFlag.AlignCenter)
        self.headline = QLabel(objectName="withdrawnHeadline", alignment=Qt.AlignmentFlag.AlignCenter)
        self.details = QLabel(objectName="withdrawnDetails", alignment=Qt.AlignmentFlag.AlignCenter)
        self.note = QLabel(objectName="withdrawnNote", alignment=Qt.AlignmentFlag.AlignCenter)
        for label in (self.symbol, self.headline, self.details, self.note):
            label.setWordWrap(True)
            label.setTextFormat(Qt.TextFormat.PlainText)  # a file's path is data, never markup
        self.export_button = QPushButton(objectName="exportOutboxButton")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        layout.addStretch(1)
        for widget in (self.symbol, self.headline, self.details, self.note):
            layout.addWidget(widget)
        layout.addWidget(self.export_button, 0, Qt.AlignmentFlag.AlignCenter)
        layout.addStretch(1)
        self.note.hide()
        self.retranslate()

    def show_state(self, state: str) -> None:
        """`state` (standing.REVOKED or ROLLED); the export button is the scan screen's to show (managers')."""
        self.state = state
        self.retranslate()

    def show_note(self, text: str, **values) -> None:
        """A line under the state (an export's result): kept as its untranslated text, so it follows the language."""
        self._note = (text, values)
        self.retranslate()

    def retranslate(self) -> None:
        if self.state == standing.ROLLED:
            self.headline.setText(_("This till must be enrolled again"))
            self.details.setText(_("Its access to the backend was replaced. The manager enrolls it again with the "
                                   "new code the operator was given; until then it redeems nothing."))
        else:
            self.headline.setText(_("This till was withdrawn — call your manager"))
            self.details.setText(_("The backend no longer accepts this till: it redeems nothing, online or "
                                   "offline. Its records are kept."))
        text, values = self._note
        self.note.setText(_(text).format(**values) if text else "")
        self.note.setVisible(bool(text))
        self.export_button.setText(_("Export unsent redemptions…"))


class Withdrawal:
    """The withdrawn state of `window` (a TillWindow): shown, kept, and what it still lets a manager do."""

    def __init__(self, window):
        self.window = window
        self.state: str | None = None
        self._sounded = 0.0  # a code held before the camera comes back many times a second: one sound

    @property
    def panel(self) -> WithdrawnPanel:
        return self.window.scan_screen.withdrawn

    def follow(self, status) -> None:
        """The store's figures (through the engine or the status timer) say whether the till is withdrawn."""
        state = getattr(status, "withdrawn", None)
        if state in standing.WITHDRAWN and state != self.state:
            self.show(state)

    def show(self, state: str) -> None:
        self.state = state
        self.panel.show_state(state)
        self.window.scan_screen.panel.hide()
        self.panel.show()

    def refuses(self) -> bool:
        """True (and the state shown again) when the till may not redeem: the input is not decided."""
        if self.state is None:
            return False
        self.show(self.state)
        if time.monotonic() - self._sounded > REFUSAL_SOUND_S:
            self._sounded = time.monotonic()
            self.window.sounds.play(False)
        self.window.verdict_shown.emit(None)
        return True

    def took(self, exc: BaseException) -> bool:
        """True when a redemption's failure was the backend's withdrawal (then it is shown)."""
        if not isinstance(exc, standing.Withdrawn):
            return False
        self.show(exc.state)
        self.window.verdict_shown.emit(None)
        return True

    def told(self, state: str, message: str = "") -> None:
        """A call off the store's thread met the withdrawal (a PIN change): kept in the store, then shown."""
        if state in standing.WITHDRAWN:
            self.window.store.submit(lambda store: standing.mark(store, state, message))
            self.show(state)

    def choose_export(self) -> None:
        path, _filter = QFileDialog.getSaveFileName(self.window, _("Export unsent redemptions"),
                                                    "pika-outbox.json", "JSON (*.json)",
                                                    options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            self.export_to(path)

    def export_to(self, path: str) -> None:
        """Write the unsent outbox to `path` on the store's thread; the result is said under the state."""
        from ..store.outbox_export import ExportError, export_outbox

        self.window.store.submit(
            lambda store: export_outbox(store, path),
            lambda summary: self.panel.show_note(N_("Saved {count} unsent entries to {file}."),
                                                 count=format_number(summary["count"]), file=summary["file"]),
            lambda exc: self.panel.show_note(N_("Not exported: {error}"), error=str(exc)), told=(ExportError,))


def install(window) -> Withdrawal:
    """The withdrawal's controller for `window`, its panel's export button wired."""
    withdrawal = Withdrawal(window)
    withdrawal.panel.export_button.clicked.connect(withdrawal.choose_export)
    return withdrawal
