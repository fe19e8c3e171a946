"""The manager's void of one redemption: what is being voided, and why.

The dialog only gathers a reason the store will take (`pos_app.core.voids`'
rules, checked here as the manager types); the report view runs the void on
the store's thread and tells the dialog how it went, so a refusal is shown
where the reason was typed and nothing typed is lost.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...core.voids import MAX_REASON, VoidError, check_reason
from ...words.i18n import N_, _, format_date, format_number, format_time
from ...words.labels import decided_name, method_name
from . import models
from ..retranslate import Retranslating
from ..theme import CAUTION, REFUSED

# Reasons a till needs most; a tap fills the field, which stays editable.
QUICK_REASONS = (N_("Customer returned the goods"), N_("Scanned by mistake"), N_("Wrong voucher"),
                 N_("Sale cancelled"))

STYLE = f"""
QLabel#voidTitle {{ font-size: 22px; font-weight: bold; }}
QLabel#voidSummaryName {{ color: #4a5561; min-height: 30px; }}
QLabel#voidSummaryValue {{ font-weight: bold; min-height: 30px; }}
QLabel#voidNote {{ color: #4a5561; }}
QPushButton#quickReason {{ min-height: 56px; }}
QPushButton#quickReason:checked {{ background: #d6e4f5; border: 2px solid #1565c0; }}
QLineEdit#voidReason {{ min-height: 56px; font-size: 20px; }}
QLabel#reasonCount {{ color: #4a5561; }}
QLabel#reasonCount[over="true"] {{ color: {REFUSED}; font-weight: bold; }}
QLabel#voidError {{ color: {REFUSED}; font-weight: bold; }}
QPushButton#confirmVoid {{ background: {CAUTION}; color: white; border: none; font-weight: bold; min-height: 56px; }}
QPushButton#confirmVoid:disabled {{ background: #d9c3a3; }}
QPushButton#cancelVoid {{ min-height: 56px; }}
"""


def void_error_text(code: str) -> str:
    """A store's refusal of a void (`VoidError.code`), in the manager's words."""
    texts = {
        VoidError.ALREADY_VOIDED: _("This redemption was voided already."),
        VoidError.NOT_ACCEPTED: _("Only an accepted redemption can be voided; refusals and conflicts gave no "
                                  "discount here."),
        VoidError.NOT_FOUND: _("This redemption is not in this till's records."),
        VoidError.INVALID_VALUE: _("The reason is not valid: one line of text, at most {n} characters.").format(
            n=format_number(MAX_REASON)),
        VoidError.FORBIDDEN: _("Only a manager or an admin may void a redemption."),
    }
    return texts.get(code) or _("The void was refused ({code}).").format(code=code)


def reason_problem(text: str) -> str | None:
    """Why this reason would be refused, in words; None when the store will take it."""
    stripped = text.strip()
    if not stripped:
        return _("Write a reason or pick one above.")
    if len(stripped) > MAX_REASON:
        return _("The reason is too long: at most {max} characters.").format(max=format_number(MAX_REASON))
    try:
        check_reason(text)
    except VoidError:  # neither empty nor too long: a character the rule refuses
        return _("One line of text, please: no line breaks or control characters.")
    return None


class VoidDialog(Retranslating, QDialog):
    """Asks for a void's reason; `confirmed(reason)` when the manager confirms. The caller runs the void
    and calls `done_ok()` (the dialog closes) or `show_error(text)` (it stays, with the reason)."""

    confirmed = Signal(str)

    def __init__(self, attempt: tuple, context: models.Context, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("voidDialog")
        self.setStyleSheet(STYLE)
        self.setModal(True)
        self.setMinimumWidth(640)
        self.attempt, self.context = attempt, context
        self.busy = False

        self.title = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="voidTitle", wordWrap=True)
        self.summary_names = {name: QLabel(textFormat=Qt.TextFormat.PlainText, objectName="voidSummaryName")
                              for name in ("time", "voucher", "cashier", "method", "decided")}
        self.summary = {name: QLabel(textFormat=Qt.TextFormat.PlainText, objectName="voidSummaryValue")
                        for name in self.summary_names}
        form = QFormLayout()
        form.setVerticalSpacing(2)
        for name, label in self.summary_names.items():
            form.addRow(label, self.summary[name])
        self.note = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="voidNote", wordWrap=True)

        self.reason_label = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="reasonLabel")
        self.quick = [QPushButton(objectName="quickReason", checkable=True, autoDefault=False)
                      for _reason in QUICK_REASONS]
        quick_grid = QGridLayout()
        quick_grid.setSpacing(8)
        for i, (button, reason) in enumerate(zip(self.quick, QUICK_REASONS, strict=True)):
            button.clicked.connect(lambda _checked=False, r=reason: self.pick(_(r)))
            quick_grid.addWidget(button, i // 2, i % 2)
        self.reason = QLineEdit(objectName="voidReason")
        self.reason.setClearButtonEnabled(True)
        self.reason.textChanged.connect(self._changed)
        self.reason.returnPressed.connect(self.confirm)
        self.reason_label.setBuddy(self.reason)
        self.count = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="reasonCount",
                            alignment=Qt.AlignmentFlag.AlignRight)
        self.problem = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="voidError", wordWrap=True)
        self.problem.hide()

        self.cancel_button = QPushButton(objectName="cancelVoid", autoDefault=False)
        self.cancel_button.clicked.connect(self.reject)
        self.confirm_button = QPushButton(objectName="confirmVoid", autoDefault=False)
        self.confirm_button.clicked.connect(self.confirm)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.confirm_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.setSpacing(10)
        layout.addWidget(self.title)
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addSpacing(4)
        layout.addWidget(self.reason_label)
        layout.addLayout(quick_grid)
        layout.addWidget(self.reason)
        layout.addWidget(self.count)
        layout.addWidget(self.problem)
        layout.addLayout(buttons)
        self.retranslate()
        self.reason.setFocus()

    @property
    def key(self) -> str:
        return self.attempt[models.KEY]

    def reason_text(self) -> str:
        """The reason as the store keeps it (stripped)."""
        return self.reason.text().strip()

    def pick(self, text: str) -> None:
        """A quick reason: into the field, where it can still be changed."""
        self.reason.setText(text)
        self.reason.setFocus()

    def confirm(self) -> None:
        if self.busy or reason_problem(self.reason.text()) is not None:
            return
        self.set_busy(True)
        self.confirmed.emit(self.reason_text())

    def set_busy(self, busy: bool) -> None:
        """While the store decides: no second confirm, and the button says why."""
        self.busy = busy
        self.reason.setReadOnly(busy)
        for button in self.quick:
            button.setEnabled(not busy)
        self._changed()

    def show_error(self, text: str) -> None:
        """The void was refused or failed: said here, the reason kept for another try."""
        self.set_busy(False)
        self.problem.setText(text)
        self.problem.show()

    def done_ok(self) -> None:
        self.busy = False
        self.accept()

    def _changed(self) -> None:
        text = self.reason.text()
        if len(text.strip()) > MAX_REASON:
            # A paste longer than the store takes is cut at the limit (counted as the store counts: in
            # characters, after stripping; Qt's maxLength counts UTF-16 units, so an emoji would count
            # twice); the counter below says the limit is reached.
            self.reason.setText(text.lstrip()[:MAX_REASON])
            return
        for button, reason in zip(self.quick, QUICK_REASONS, strict=True):
            button.setChecked(text.strip() == _(reason))
        length = len(text.strip())
        self.count.setText(_("{n} of {max} characters").format(n=format_number(length),
                                                               max=format_number(MAX_REASON)))
        self.count.setProperty("over", "true" if length >= MAX_REASON else "false")
        self.count.style().unpolish(self.count)
        self.count.style().polish(self.count)
        problem = reason_problem(text)
        if problem is not None and text.strip():
            self.problem.setText(problem)
            self.problem.show()
        elif not self.busy:
            self.problem.hide()
        self.confirm_button.setEnabled(problem is None and not self.busy)
        self.confirm_button.setText(_("Voiding…") if self.busy else _("Void redemption"))

    def retranslate(self) -> None:
        a, c = self.attempt, self.context
        self.setWindowTitle(_("Void a redemption"))
        self.title.setText(_("Void this redemption?"))
        names = {"time": _("Time"), "voucher": _("Voucher"), "cashier": _("Cashier"), "method": _("Method"),
                 "decided": _("Online / offline")}
        for name, text in names.items():
            self.summary_names[name].setText(text)
        values = {"time": _("{date}, {time}").format(date=format_date(a[models.AT], c.timezone),
                                                     time=format_time(a[models.AT], c.timezone)), "voucher": models.voucher_text(a, c),
                  "cashier": models.staff_name(a[models.STAFF_ID], c), "method": method_name(a[models.METHOD]),
                  "decided": decided_name(a[models.DECIDED])}
        for name, text in values.items():
            self.summary[name].setText(text)
        self.note.setText(_("The redemption stays in the records and its code stays used; the void takes it out "
                            "of the day's count and discounts, with your name and reason."))
        self.reason_label.setText(_("Reason"))
        for button, reason in zip(self.quick, QUICK_REASONS, strict=True):
            button.setText(_(reason))
        self.reason.setPlaceholderText(_("Why is it voided?"))
        self.cancel_button.setText(_("Cancel"))
        self._changed()
