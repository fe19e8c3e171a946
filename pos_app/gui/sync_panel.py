"""The sync panel: what waits to be sent, when the till last reached the backend, what went wrong.

It only shows a `sync.status.SyncStatus` (the engine's, or the window's view
of the store's figures) and asks for a sync; the work happens off the GUI thread.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..sync.status import SyncStatus
from ..words.i18n import _, format_number, format_share, format_when, ngettext
from .retranslate import Retranslating


class SyncPanel(Retranslating, QDialog):
    sync_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("syncPanel")
        self.setMinimumSize(640, 480)
        self.status = SyncStatus()
        self.timezone: str | None = None
        self.rows = {name: (QLabel(), QLabel(objectName=f"sync_{name}", wordWrap=True))
                     for name in ("online", "outbox", "last_sync", "last_error", "clock_skew", "conflicts",
                                  "success_rate", "delay", "offline_share", "feed_parked")}
        form = QFormLayout()
        for label, value in self.rows.values():
            label.setTextFormat(Qt.TextFormat.PlainText)  # errors and names are data: text, never markup
            value.setTextFormat(Qt.TextFormat.PlainText)
            form.addRow(label, value)
        self.parked_title = QLabel()
        self.parked_title.setTextFormat(Qt.TextFormat.PlainText)
        self.parked = QTableWidget(0, 3, objectName="parkedTable")
        self.parked.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.parked.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.conflicts_title = QLabel()
        self.conflicts_title.setTextFormat(Qt.TextFormat.PlainText)
        self.conflicts = QTableWidget(0, 4, objectName="conflictsTable")
        self.conflicts.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.conflicts.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.show_conflicts = False  # the list is for managers; a cashier sees the count
        self.sync_now = QPushButton(objectName="primary")
        self.sync_now.clicked.connect(self._ask)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.buttons.rejected.connect(self.reject)
        self.buttons.addButton(self.sync_now, QDialogButtonBox.ButtonRole.ActionRole)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.parked_title)
        layout.addWidget(self.parked, 1)
        layout.addWidget(self.conflicts_title)
        layout.addWidget(self.conflicts, 1)
        layout.addWidget(self.buttons)
        self.retranslate()

    def _ask(self) -> None:
        self.sync_now.setEnabled(False)
        self.sync_requested.emit()

    def show_status(self, status: SyncStatus) -> None:
        self.status = status
        self.sync_now.setEnabled(True)
        self.retranslate()

    def retranslate(self) -> None:
        s, now = self.status, time.time()
        self.setWindowTitle(_("Sync"))
        labels = {"online": _("Backend"), "outbox": _("Waiting to be sent"), "last_sync": _("Last successful sync"),
                  "last_error": _("Last error"), "clock_skew": _("Clock difference"), "conflicts": _("Conflicts"),
                  "success_rate": _("Successful syncs"), "delay": _("Delay to the backend (median / 95 %)"),
                  "offline_share": _("Decided offline"), "feed_parked": _("Feed events set aside")}
        for name, text in labels.items():
            self.rows[name][0].setText(text)
        online = s.online
        self.rows["online"][1].setText(_("online") if online else _("offline") if online is False
                                       else _("not tried yet"))
        self.rows["outbox"][1].setText(format_number(int(s.outbox or 0)))
        last = s.last_sync
        self.rows["last_sync"][1].setText(format_when(float(last), self.timezone, now) if last else _("never"))
        self.rows["last_error"][1].setText(self._error_text(now))
        skew = s.clock_skew_s
        if skew is None:
            skew_text = _("unknown")
        elif s.clock_skew_flagged:
            skew_text = _("This till's clock is off by {seconds} s: ask a manager to set it.").format(
                seconds=format_number(round(float(skew))))
        else:
            skew_text = _("{seconds} s").format(seconds=format_number(round(float(skew), 1)))
        self.rows["clock_skew"][1].setText(skew_text)
        conflicts = int(s.conflicts or 0)
        self.rows["conflicts"][1].setText(_("{n} ({share} of accepted)").format(
            n=format_number(conflicts), share=format_share(s.conflict_rate)))
        self.rows["success_rate"][1].setText(format_share(s.sync_success_rate))
        p50, p95 = s.delay_p50_s, s.delay_p95_s
        self.rows["delay"][1].setText(_("{p50} s / {p95} s").format(p50=format_number(round(p50, 1)),
                                                                    p95=format_number(round(p95, 1)))
                                      if p50 is not None and p95 is not None else "—")
        self.rows["offline_share"][1].setText(format_share(s.offline_share))
        self.rows["feed_parked"][1].setText(self._feed_parked_text())
        parked = s.parked_entries or []
        self.parked_title.setText(_("Set aside (refused by the backend, kept for the manager): {n}").format(
            n=format_number(len(parked))))
        self.parked.setHorizontalHeaderLabels([_("When"), _("Key"), _("Reason")])
        self.parked.setRowCount(len(parked))
        for row, entry in enumerate(parked):
            at = entry.get("at") or entry.get("created_at")
            values = [format_when(float(at), self.timezone, now) if at else "", str(entry.get("key", "")),
                      str(entry.get("reason") or entry.get("parked_reason") or "")]
            for col, value in enumerate(values):
                self.parked.setItem(row, col, QTableWidgetItem(value))
        entries = s.conflict_entries or []
        self.conflicts_title.setText(_("Redeemed first at another till (kept here, marked as conflicts): {n}").format(
            n=format_number(len(entries))))
        self.conflicts.setHorizontalHeaderLabels([_("When"), _("Voucher"), _("Won by"), _("Won at")])
        self.conflicts.setRowCount(len(entries))
        for row, entry in enumerate(entries):
            winner = entry.get("winner") or {}
            values = [format_when(float(entry["at"]), self.timezone, now) if entry.get("at") else "",
                      str(entry.get("voucher") or entry.get("voucher_id") or ""), str(winner.get("till") or ""),
                      format_when(float(winner["at"]), self.timezone, now) if winner.get("at") else ""]
            for col, value in enumerate(values):
                self.conflicts.setItem(row, col, QTableWidgetItem(value))
        for widget in (self.conflicts_title, self.conflicts):
            widget.setVisible(self.show_conflicts)
        self.sync_now.setText(_("Sync now"))

    def _feed_parked_text(self) -> str:
        """Feed events this till could not apply: it moved past them, and a manager should know why."""
        n = int(self.status.feed_parked or 0)
        if not n:
            return _("none")
        return ngettext("{n} feed event could not be applied: {reason}",
                        "{n} feed events could not be applied: {reason}", n).format(
            n=format_number(n), reason=self.status.feed_parked_reason or "")

    def _error_text(self, now: float) -> str:
        last = self.status.last_error
        if isinstance(last, dict) and last.get("error"):
            at = last.get("at")
            when = format_when(float(at), self.timezone, now) if isinstance(at, (int, float)) else ""
            return f"{last['error']} ({when})" if when else str(last["error"])
        return str(self.status.error or last or _("none"))

