"""A manager or admin whose PIN is too short chooses a new one, and the backend takes it.

Managers and admins need at least `pins.min_digits(role)` digits (a short
PIN falls quickly to anyone holding a till's hashes); one made before that
rule is asked to change at login. The change goes to the backend
(`POST /staff/me/pin`) on the window's task pool, never on the GUI thread;
offline, the prompt says so and comes back at the next login.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget
from shiboken6 import isValid

from ..core import pins
from ..sync.client import Refused, Unreachable
from ..words.i18n import _
from .retranslate import Retranslating


class PinChangeDialog(Retranslating, QDialog):
    """Asks `member` (logged in with `pin`) for a new PIN twice; emits `changed(new_pin)` once the backend took it.

    `open_client()` gives a fresh BackendClient (or None when the till has no backend); `tasks` is the
    window's TaskPool. After `changed`, `proof_salt` is the new proof salt if the backend's answer gave one.
    """

    changed = Signal(str)
    withdrawn = Signal(str, str)  # the backend's device_revoked / device_rolled, and its message

    def __init__(self, member: dict, pin: str, open_client: Callable, tasks, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("pinChangeDialog")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumWidth(480)
        self.member, self._pin, self._open_client, self._tasks = member, pin, open_client, tasks
        self.digits = pins.min_digits(member.get("role"))
        self.proof_salt: str | None = None
        self.explain = QLabel(wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self.new_label = QLabel(textFormat=Qt.TextFormat.PlainText)
        self.repeat_label = QLabel(textFormat=Qt.TextFormat.PlainText)
        self.new_pin = QLineEdit(objectName="newPin", maxLength=pins.MAX_DIGITS,
                                 echoMode=QLineEdit.EchoMode.Password)
        self.repeat_pin = QLineEdit(objectName="repeatPin", maxLength=pins.MAX_DIGITS,
                                    echoMode=QLineEdit.EchoMode.Password)
        self.new_label.setBuddy(self.new_pin)
        self.repeat_label.setBuddy(self.repeat_pin)
        self.message = QLabel(objectName="pinChangeMessage", wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self.change_button = QPushButton(objectName="primary")
        self.later_button = QPushButton(objectName="pinChangeLater")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.later_button)
        buttons.addWidget(self.change_button)
        layout = QVBoxLayout(self)
        for widget in (self.explain, self.new_label, self.new_pin, self.repeat_label, self.repeat_pin, self.message):
            layout.addWidget(widget)
        layout.addLayout(buttons)
        self.new_pin.returnPressed.connect(self.repeat_pin.setFocus)
        self.repeat_pin.returnPressed.connect(self.submit)
        self.change_button.clicked.connect(self.submit)
        self.later_button.clicked.connect(self.reject)
        self.finished.connect(lambda _result: self.deleteLater())
        self.retranslate()

    def problem(self) -> str | None:
        """What is wrong with the PINs typed, or None when they may go to the backend."""
        new, again = self.new_pin.text(), self.repeat_pin.text()
        if not pins.valid_pin_for_role(new, self.member.get("role")):
            return _("A PIN is {fewest} to {most} digits.").format(fewest=self.digits, most=pins.MAX_DIGITS)
        if new != again:
            return _("The two PINs are not the same.")
        if new == self._pin:
            return _("Choose a PIN other than your current one.")
        return None

    def submit(self) -> None:
        problem = self.problem()
        if problem is not None:
            self._tell(problem)
            return
        new_pin, staff_id, pin, open_client = self.new_pin.text(), self.member["id"], self._pin, self._open_client

        def change() -> dict:
            client = open_client()
            if client is None:
                raise Unreachable("this till has no backend")
            try:
                return client.change_pin(staff_id, pin, new_pin)
            finally:
                client.close()
        self.change_button.setEnabled(False)
        self.message.setText(_("Changing your PIN…"))
        self._tasks.run(change, lambda answer: self._done(new_pin, answer), self._failed, told=(Refused, Unreachable))

    def _done(self, new_pin: str, answer: dict) -> None:
        if not isValid(self):
            return  # closed meanwhile ("Later"): the backend has the new PIN, and the feed brings it here
        salt = answer.get("proof_salt") if isinstance(answer, dict) else None
        self.proof_salt = salt if isinstance(salt, str) and salt else None
        self.changed.emit(new_pin)
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        if not isValid(self):
            return
        if isinstance(exc, Unreachable):
            self._tell(_("Could not reach the backend. You will be asked again next time you log in."))
        elif isinstance(exc, Refused) and exc.withdrawal:
            self._tell(_("The backend no longer accepts this till: the PIN was not changed."))
            self.withdrawn.emit(exc.withdrawal, str(exc))
        elif isinstance(exc, Refused) and exc.code == "too_many_attempts":
            self._tell(_("Too many wrong PINs at the backend. Try again later."))
        elif isinstance(exc, Refused) and exc.status == 401:
            self._tell(_("The backend did not accept your current PIN. Log in again and retry."))
        elif isinstance(exc, Refused):
            self._tell(_("The backend refused the new PIN: {reason}").format(reason=exc.code))
        else:
            self._tell(_("The PIN could not be changed: {error}").format(error=exc))

    def _tell(self, text: str) -> None:
        self.message.setText(text)
        self.change_button.setEnabled(True)
        self.new_pin.setFocus()

    def retranslate(self) -> None:
        self.setWindowTitle(_("Choose a new PIN"))
        self.explain.setText(_("Managers and admins need a PIN of at least {digits} digits, and yours is shorter. "
                               "Choose a new one: it works at every till from now on.").format(digits=self.digits))
        self.new_label.setText(_("New PIN"))
        self.repeat_label.setText(_("New PIN again"))
        self.change_button.setText(_("Change PIN"))
        self.later_button.setText(_("Later"))
