"""The printed booklet code's own entry point (e.g. CAFE50), apart from personal codes.

Printed codes are shared by everyone who holds the booklet, so they are typed
here on purpose, never taken for a mistyped personal short code.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from ..words.i18n import _
from .retranslate import Retranslating

MAX_CODE = 64


class PrintedCodeDialog(Retranslating, QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("printedCodeDialog")
        self.setModal(True)
        self.setMinimumWidth(520)
        self.explain = QLabel(textFormat=Qt.TextFormat.PlainText, wordWrap=True)
        self.code = QLineEdit(objectName="printedCode", maxLength=MAX_CODE)
        self.code.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.explain)
        layout.addWidget(self.code)
        layout.addWidget(self.buttons)
        self.retranslate()

    def text(self) -> str:
        return self.code.text().strip()

    def _accept(self) -> None:
        if self.text():
            self.accept()
        else:
            self.code.setFocus()

    def retranslate(self) -> None:
        self.setWindowTitle(_("Printed voucher"))
        self.explain.setText(_("Type the code printed in the voucher booklet (for example CAFE50), "
                               "or scan the booklet's QR code on the main screen."))
        self.code.setPlaceholderText(_("Printed code"))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(_("Redeem"))

