"""Log in (and the lock screen): staff id and PIN, checked offline against the catalog's hashes.

The PIN check (PBKDF2) runs on the store's thread; a touch keypad sits
beside the fields so a tablet needs no on-screen keyboard. After wrong PINs
the store makes the next try wait, then locks the id (store/pin_lockout.py):
the screen says how long, plainly.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..core.domain import LANGUAGES
from ..store.pin_lockout import LOCKED, WAIT, PinCheck
from ..words.i18n import LANGUAGE_NAMES, _, format_time, ngettext
from .retranslate import Retranslating

MAX_ID, MAX_PIN = 64, 32


class LoginScreen(Retranslating, QWidget):
    """Asks for staff id and PIN; emits `submitted(staff_id, pin)`; the window answers."""

    submitted = Signal(str, str)
    language_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.locked_by: str | None = None  # the staff name shown when the screen is a lock
        self.title = QLabel(objectName="screenTitle", alignment=Qt.AlignmentFlag.AlignCenter)
        self.subtitle = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.staff_label = QLabel()
        # Names to pick on a touch screen; an id can be typed too.
        self.staff_id = QComboBox(objectName="staffId", editable=True)
        self.staff_id.lineEdit().setMaxLength(MAX_ID)
        self.staff_id.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.pin_label = QLabel()
        self.pin = QLineEdit(objectName="pin", maxLength=MAX_PIN, echoMode=QLineEdit.EchoMode.Password)
        self.staff_label.setBuddy(self.staff_id)
        self.pin_label.setBuddy(self.pin)
        self.error = QLabel(objectName="loginError", alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        for label in (self.title, self.subtitle, self.staff_label, self.pin_label, self.error):
            label.setTextFormat(Qt.TextFormat.PlainText)  # names are data: text, never markup
        self.login_button = QPushButton(objectName="primary")
        self.language = QComboBox(objectName="loginLanguage")
        for code in LANGUAGES:
            self.language.addItem(LANGUAGE_NAMES[code], code)

        form = QVBoxLayout()
        for widget in (self.staff_label, self.staff_id, self.pin_label, self.pin, self.error, self.login_button):
            form.addWidget(widget)
        form.addStretch(1)
        form.addWidget(self.language)

        keypad = QGridLayout()
        self.keys: list[QPushButton] = []
        for index, key in enumerate("123456789⌫0✓"):
            button = QPushButton(key, objectName="keypad")
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the fields keep the keyboard
            button.clicked.connect(lambda _=False, k=key: self._keypad(k))
            keypad.addWidget(button, index // 3, index % 3)
            self.keys.append(button)

        columns = QHBoxLayout()
        columns.addStretch(1)
        columns.addLayout(form, 3)
        columns.addSpacing(32)
        columns.addLayout(keypad, 2)
        columns.addStretch(1)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        outer.addWidget(self.title)
        outer.addWidget(self.subtitle)
        outer.addSpacing(24)
        outer.addLayout(columns)
        outer.addStretch(2)

        self.staff_id.lineEdit().returnPressed.connect(self.pin.setFocus)
        self.pin.returnPressed.connect(self._submit)
        self.login_button.clicked.connect(self._submit)
        self.language.activated.connect(lambda i: self.language_chosen.emit(self.language.itemData(i)))
        self.retranslate()

    def set_staff(self, members: list[dict]) -> None:
        typed = self.staff_id.currentText()
        self.staff_id.clear()
        for member in members:
            self.staff_id.addItem(member["name"], member["id"])
        self.staff_id.setEditText(typed)

    def chosen_staff_id(self) -> str:
        text = self.staff_id.currentText().strip()
        index = self.staff_id.findText(text)
        return self.staff_id.itemData(index) if index >= 0 else text

    def set_language(self, code: str) -> None:
        self.language.setCurrentIndex(max(0, self.language.findData(code)))

    def reset(self, *, locked_by: str | None = None, staff_id: str = "") -> None:
        self.locked_by = locked_by
        index = self.staff_id.findData(staff_id)
        if index >= 0:
            self.staff_id.setCurrentIndex(index)
        else:
            self.staff_id.setEditText(staff_id)
        self.pin.clear()
        self.error.clear()
        self.set_busy(False)
        self.retranslate()
        (self.pin if staff_id else self.staff_id).setFocus()

    def set_busy(self, busy: bool) -> None:
        self.login_button.setEnabled(not busy)

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.pin.clear()
        self.pin.setFocus()
        self.set_busy(False)

    def show_refusal(self, check: PinCheck, timezone: str | None = None) -> None:
        """Why a login did not happen: a wrong PIN, or how long the lockout makes the next try wait."""
        self.show_error(refusal_text(check, timezone))

    def _keypad(self, key: str) -> None:
        field = self.staff_id.lineEdit() if self.staff_id.hasFocus() else self.pin
        if key == "⌫":
            field.backspace()
        elif key == "✓":
            self._submit()
        else:
            field.insert(key)

    def _submit(self) -> None:
        staff_id, pin = self.chosen_staff_id(), self.pin.text()
        if not staff_id:
            self.error.setText(_("Enter your staff ID."))
            self.staff_id.setFocus()
            return
        if not pin:
            self.error.setText(_("Enter your PIN."))
            self.pin.setFocus()
            return
        self.set_busy(True)
        self.error.clear()
        self.submitted.emit(staff_id, pin)

    def retranslate(self) -> None:
        if self.locked_by:
            self.title.setText(_("Till locked"))
            self.subtitle.setText(_("Locked by {name}. Log in to continue.").format(name=self.locked_by))
        else:
            self.title.setText(_("Pika Till"))
            self.subtitle.setText(_("Log in with your staff ID and PIN."))
        self.staff_label.setText(_("Staff ID"))
        self.pin_label.setText(_("PIN"))
        self.login_button.setText(_("Log in"))
        self.language.setToolTip(_("Language"))
        self.keys[9].setToolTip(_("Delete"))
        self.keys[11].setToolTip(_("Log in"))


def refusal_text(check: PinCheck, timezone: str | None = None) -> str:
    if check.refused == LOCKED and check.retry_at is not None:
        return _("Too many wrong PINs. This staff ID is locked until {time}.").format(
            time=format_time(check.retry_at, timezone))
    if check.refused == WAIT:
        return ngettext("Too many wrong PINs. Try again in {seconds} second.",
                        "Too many wrong PINs. Try again in {seconds} seconds.", check.wait_s).format(
            seconds=check.wait_s)
    if check.wait_s > 0:  # wrong, and the next try waits already
        return ngettext("Wrong staff ID or PIN. Try again in {seconds} second.",
                        "Wrong staff ID or PIN. Try again in {seconds} seconds.", check.wait_s).format(
            seconds=check.wait_s)
    return _("Wrong staff ID or PIN.")
