"""The screen a cashier lives in, as widgets: the top bar, the camera's picture, the code entry, the verdict.

Apart from the window so the window holds what the screen does (its inputs,
the redemption, the flows a manager opens) and this module only what it
looks like and says: the window connects these widgets and tells the screen
who is logged in.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFrame, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from ..core.domain import LANGUAGES
from ..core.verdict import MAX_INPUT_CHARS
from ..words.i18n import LANGUAGE_NAMES, _
from .camera import CameraView
from .verdict_panel import VerdictPanel
from .withdrawn import WithdrawnPanel

MANAGER_ROLES = ("manager", "admin")


class ScanScreen(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        top = QFrame(objectName="topBar")
        self.till_name = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="tillName")
        self.staff_name = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="staffName")
        self.language = QComboBox(objectName="language")
        for code in LANGUAGES:
            self.language.addItem(LANGUAGE_NAMES[code], code)
        self.sync_button = QPushButton(objectName="syncButton")
        self.settings_button = QPushButton(objectName="settingsButton")
        self.booklet_button = QPushButton(objectName="bookletButton")
        self.report_button = QPushButton(objectName="reportButton")
        self.lock_button = QPushButton(objectName="lockButton")
        bar = QHBoxLayout(top)
        bar.setContentsMargins(12, 6, 12, 6)
        bar.addWidget(self.till_name)
        bar.addStretch(1)
        for widget in (self.staff_name, self.language, self.sync_button, self.report_button, self.booklet_button,
                       self.settings_button, self.lock_button):
            bar.addWidget(widget)

        self.camera_view = CameraView()
        self.entry = QLineEdit(objectName="codeEntry", maxLength=MAX_INPUT_CHARS)
        self.redeem_button = QPushButton(objectName="primary")
        self.printed_button = QPushButton(objectName="printedButton")
        self.image_button = QPushButton(objectName="imageButton")
        self.demo_note = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="demoNote", wordWrap=True)
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
        self.withdrawn = WithdrawnPanel()  # instead of the verdicts, once the backend withdrew the till
        self.withdrawn.hide()
        body = QHBoxLayout()
        body.setContentsMargins(12, 12, 12, 12)
        body.setSpacing(16)
        body.addLayout(left, 9)
        body.addWidget(self.panel, 11)
        body.addWidget(self.withdrawn, 11)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(top)
        outer.addLayout(body, 1)

    def retranslate(self, staff: dict | None, till_name: str) -> None:
        """The screen's words, for `staff` logged in (or nobody): a cashier sees no manager's buttons."""
        self.till_name.setText(till_name or _("Pika Till"))
        if staff:
            roles = {"cashier": _("cashier"), "manager": _("manager"), "admin": _("admin")}
            self.staff_name.setText(_("{name} ({role})").format(name=staff["name"], role=roles.get(staff["role"], "")))
        self.staff_name.setVisible(staff is not None)
        self.settings_button.setVisible(bool(staff) and staff["role"] in MANAGER_ROLES)
        self.booklet_button.setVisible(bool(staff) and staff["role"] == "admin")
        self.withdrawn.export_button.setVisible(bool(staff) and staff["role"] in MANAGER_ROLES)
        self.booklet_button.setText(_("Booklet"))
        self.report_button.setVisible(bool(staff) and staff["role"] in MANAGER_ROLES)
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
