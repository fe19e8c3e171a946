"""The report view's void action: which attempt may be voided, the dialog, and the void on the store's thread.

Apart from the view so the view only shows a report; this controller owns
the void dialog that is open and tells the view's message line, its void
hint and its signals (`voided`, `void_refused`) what became of a void. The
void carries the manager's proof, made with the PIN they logged in with
(kept by the window that opened the report).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMenu
from shiboken6 import isValid

from ...core.voids import VOID_ROLES, VoidError
from ...words.i18n import _
from . import models
from .void_dialog import VoidDialog, void_error_text


class VoidController:
    """Voids on `view` (the ReportView) for `staff` logged in, if a manager or an admin (a cashier never sees
    the action)."""

    def __init__(self, view, staff: dict | None):
        self.view = view
        self.staff = staff
        self.allowed = bool(staff) and staff.get("role") in VOID_ROLES
        self.dialog: VoidDialog | None = None

    def voidable_attempt(self) -> tuple | None:
        """The selected attempt if a void may be asked for it: an accepted redemption not voided yet.

        Every row is this till's own attempt (the till reports from its own store); a conflict's loser stays
        the conflict it is, and a refusal gave nothing.
        """
        attempt = self.view.selected_attempt()
        if attempt is None or attempt[models.STATUS] != "accepted" or attempt[models.VOIDED]:
            return None
        return attempt

    def show_action(self) -> None:
        """The void button and its hint, for the attempt selected now."""
        view = self.view
        attempt = view.selected_attempt()
        view.void_button.setEnabled(self.allowed and self.voidable_attempt() is not None)
        if attempt is None:
            hint = _("Select an accepted redemption to void it.")
        elif attempt[models.VOIDED] and attempt[models.STATUS] == "accepted":
            hint = _("This redemption is voided.")
        elif attempt[models.STATUS] != "accepted":
            hint = _("Only an accepted redemption can be voided.")
        else:
            hint = ""
        view.void_hint.setText(hint)

    def attempt_menu(self) -> QMenu:
        """The redemptions table's context menu for the selected row."""
        menu = QMenu(self.view)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        action = menu.addAction(_("Void…"))
        action.setObjectName("voidAction")
        action.setEnabled(self.voidable_attempt() is not None)
        action.triggered.connect(lambda: self.open_dialog())
        return menu

    def menu_requested(self, pos) -> None:
        table = self.view.attempts_table
        index = table.indexAt(pos)
        if not self.allowed or not index.isValid():
            return
        table.selectRow(index.row())
        self.attempt_menu().popup(table.viewport().mapToGlobal(pos))

    def open_dialog(self) -> VoidDialog | None:
        """The void dialog for the selected redemption (window-modal; returns at once), or None."""
        attempt = self.voidable_attempt() if self.allowed else None
        if attempt is None:
            return None
        dialog = VoidDialog(attempt, self.view.attempts.context, self.view)
        dialog.confirmed.connect(lambda reason: self.void(attempt[models.KEY], reason, dialog))
        dialog.finished.connect(lambda _result: self._dialog_closed(dialog))
        self.dialog = dialog
        dialog.open()
        return dialog

    def void(self, key: str, reason: str, dialog: VoidDialog | None = None) -> None:
        """Void the attempt `key` as the logged-in manager, on the store's thread; the report follows."""
        if not self.allowed:
            return
        staff_id, now, pin = self.staff["id"], self.view.clock(), logged_in_pin(self.view)

        def job(store):
            try:
                return store.void(key, reason=reason, staff_id=staff_id, now=now, pin=pin)
            except VoidError as exc:  # a refusal the manager is told of, not a bug to log
                return exc
        self.view.store.submit(job, lambda result: self._answered(key, result, dialog),
                               lambda exc: self._failed(exc, dialog))

    def _answered(self, key: str, result, dialog: VoidDialog | None) -> None:
        view = self.view
        if not isValid(view):
            # The view was closed and replaced while the store worked: the void is kept and queued all the
            # same, and the sync engine's next round sends it; there is nothing left here to show it on.
            return
        if isinstance(result, VoidError):
            if result.code in (VoidError.ALREADY_VOIDED, VoidError.NOT_ACCEPTED, VoidError.NOT_FOUND):
                view.refresh(select=key)  # the row changed since it was shown (another manager, a sync)
            self._tell(void_error_text(result.code), dialog)
            view.void_refused.emit(result.code)
            return
        if dialog is not None and dialog is self.dialog:
            dialog.done_ok()
        view.refresh(select=key)
        view.message.setText(_("Redemption voided. It goes to the backend with the next sync."))
        view.voided.emit(result)

    def _failed(self, exc: BaseException, dialog: VoidDialog | None) -> None:
        if not isValid(self.view):  # closed and replaced meanwhile; the store's thread logged the failure
            return
        self._tell(_("The void could not be saved: {error}").format(error=exc), dialog)
        self.view.void_refused.emit("error")

    def _tell(self, text: str, dialog: VoidDialog | None) -> None:
        if dialog is not None and dialog is self.dialog:
            dialog.show_error(text)  # the reason stays typed for another try
        else:
            self.view.message.setText(text)

    def _dialog_closed(self, dialog: VoidDialog) -> None:
        if dialog is self.dialog:
            self.dialog = None
        dialog.deleteLater()


def logged_in_pin(view) -> str:
    """The PIN the manager logged in with, which the till's window keeps in memory (TillWindow._pin) for as long
    as they are logged in; "" for a view no window opened (its voids then go unproven)."""
    pin = getattr(view.parentWidget(), "_pin", "")
    return pin if isinstance(pin, str) else ""
