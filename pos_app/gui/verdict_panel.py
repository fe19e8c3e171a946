"""The large panel that tells the cashier, at a glance, whether to give the discount.

Colour, a symbol and a headline say the same thing three ways (colour-blind
cashiers, glare on the screen); the panel returns to "ready" by itself.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QVBoxLayout, QWidget

from ..core.domain import Verdict
from ..store.settings import SETTINGS
from ..words import reasons
from ..words.i18n import _, format_discount
from .retranslate import Retranslating

SYMBOLS = {"ready": "", "working": "…", "accepted": "✓", "caution": "!", "refused": "✕"}


class VerdictPanel(Retranslating, QFrame):
    """Shows one verdict (or ready / checking) in the UI language, re-read on a language switch."""

    returned_to_ready = Signal()

    def __init__(self, parent: QWidget | None = None, *, hold_s: float = SETTINGS["verdict_hold_s"].default):
        super().__init__(parent)
        self.setObjectName("verdictPanel")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.hold_s = hold_s
        self.timezone: str | None = None
        self._verdict: Verdict | None = None
        self._decided = ""
        self._hint = False
        self._state = "ready"
        self._repeat = False
        self._message = ("", "")
        self._showing_message = False

        self.symbol = QLabel(objectName="verdictSymbol", alignment=Qt.AlignmentFlag.AlignCenter)
        self.headline = QLabel(objectName="verdictHeadline", alignment=Qt.AlignmentFlag.AlignCenter)
        self.discount = QLabel(objectName="verdictDiscount", alignment=Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel(objectName="verdictTitle", alignment=Qt.AlignmentFlag.AlignCenter)
        self.details = QLabel(objectName="verdictDetails", alignment=Qt.AlignmentFlag.AlignCenter)
        self.hint = QLabel(objectName="verdictHint", alignment=Qt.AlignmentFlag.AlignCenter)
        for label in (self.headline, self.title, self.details, self.hint):
            label.setWordWrap(True)
        for label in (self.symbol, self.headline, self.discount, self.title, self.details, self.hint):
            label.setTextFormat(Qt.TextFormat.PlainText)  # a till's or voucher's name is data, never markup
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        layout.addStretch(1)
        for widget in (self.symbol, self.headline, self.discount, self.title, self.details, self.hint):
            layout.addWidget(widget)
        layout.addStretch(1)

        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self.show_ready)
        self.show_ready()

    @property
    def state(self) -> str:
        return self._state

    @property
    def verdict(self) -> Verdict | None:
        return self._verdict

    def show_ready(self) -> None:
        was_ready = self._state == "ready"
        self._verdict, self._hint, self._repeat = None, False, False
        self._set_state("ready")
        if not was_ready:
            self.returned_to_ready.emit()

    def show_working(self) -> None:
        self._timer.stop()
        self._verdict = None
        self._set_state("working")

    def show_message(self, severity: str, headline: str, detail: str = "") -> None:
        """A refusal that never reached the verdict (too many scans at once, a full disk)."""
        self._verdict, self._hint, self._repeat = None, False, False
        self._message = (headline, detail)
        self._set_state(severity, message=True)
        self._timer.start(int(self.hold_s * 1000))

    def show_verdict(self, verdict: Verdict, *, decided: str = "", printed_hint: bool = False,
                     repeat: bool = False) -> None:
        self._verdict, self._decided, self._hint, self._repeat = verdict, decided, printed_hint, repeat
        self._set_state(reasons.severity(verdict))
        self._timer.start(int(self.hold_s * 1000))

    def _set_state(self, state: str, *, message: bool = False) -> None:
        self._state = state
        self._showing_message = message
        self.setProperty("state", state)
        self.style().unpolish(self)
        self.style().polish(self)
        for child in self.findChildren(QLabel):
            child.style().unpolish(child)
            child.style().polish(child)
        self.retranslate()

    def retranslate(self) -> None:
        v, state = self._verdict, self._state
        self.symbol.setText(SYMBOLS.get(state, ""))
        texts = {"headline": "", "discount": "", "title": "", "details": "", "hint": ""}
        if state == "ready":
            texts["headline"] = _("Ready to scan")
            texts["details"] = _("Show the voucher's QR code to the camera, scan it, or type its code.")
        elif state == "working":
            texts["headline"] = _("Checking…")
        elif self._showing_message:
            texts["headline"], texts["details"] = self._message
        elif v is not None:
            from ..words.i18n import language
            lang = language()
            if v.accepted:
                texts["headline"] = _("Accepted: give the discount")
            else:
                texts["headline"] = reasons.headline(v.reason)
            if v.voucher is not None:
                texts["title"] = v.voucher.text("title", lang)
                if v.accepted:
                    texts["discount"] = format_discount(v.voucher.discount)
            if v.accepted:
                lines = []
                if v.voucher is not None:
                    if terms := v.voucher.text("terms", lang):
                        lines.append(terms)
                    if v.voucher.retailer_name:
                        lines.append(v.voucher.retailer_name)
                if self._decided == "offline":
                    lines.append(_("Decided at this till (offline); it will be synced."))
                texts["details"] = "\n".join(lines)
            else:
                texts["details"] = reasons.advice(v, timezone=self.timezone, now=time.time())
            if self._repeat:
                texts["headline"] = _("Seen again: {verdict}").format(verdict=texts["headline"])
            if self._hint and v.accepted:
                texts["hint"] = _("Tell the customer: get the Pika app for more deals.")
        for name, text in texts.items():
            label = getattr(self, name)
            label.setText(text)
            label.setVisible(bool(text))

