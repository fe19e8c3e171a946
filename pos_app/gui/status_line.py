"""The window's status bar: online or not, what is left to send, the last sync, a clock off, a backend over
plain HTTP, who is logged in.

Apart from the window so the window only decides when the status changes;
this shows a status (the `sync.status.SyncStatus` the window keeps) in the
UI language.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QStatusBar

from ..sync.client import plain_http_to_another_host
from ..sync.status import SyncStatus
from ..words.i18n import _, format_number, format_when


class StatusLine:
    def __init__(self, bar: QStatusBar):
        self.online_badge = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="onlineBadge")
        self.outbox_label = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="outboxLabel")
        self.last_sync_label = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="lastSyncLabel")
        self.skew_badge = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="skewBadge")
        self.staff_status = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="staffStatus")
        self.insecure_badge = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="insecureBadge", visible=False)
        for widget in (self.online_badge, self.outbox_label, self.last_sync_label, self.skew_badge,
                       self.insecure_badge):
            bar.addWidget(widget)
        bar.addPermanentWidget(self.staff_status)

    def show(self, status: SyncStatus, staff: dict | None, timezone: str | None, now: float,
             server_url: str = "") -> None:
        """`status` in words; `timezone` the store's (for the last sync's time), `now` the till's clock;
        `server_url` the backend's, warned of when it is plain HTTP to another host (the log says it too, as
        the till's backend client is made: sync.client.client_for)."""
        plain = plain_http_to_another_host(server_url)
        # Short, as the bar is shared; the whole warning is the badge's tooltip.
        self.insecure_badge.setText(_("⚠ Not encrypted (HTTP)") if plain else "")
        self.insecure_badge.setToolTip(_("The backend is plain HTTP to another machine: device tokens and PINs "
                                         "cross the network unencrypted. Ask the operator for its https address.")
                                       if plain else "")
        self.insecure_badge.setVisible(plain)
        online = status.online and not status.withdrawn  # a withdrawn till is not "online"
        self.online_badge.setProperty("online", "true" if online else "false")
        self.online_badge.style().unpolish(self.online_badge)
        self.online_badge.style().polish(self.online_badge)
        self.online_badge.setText(_("● Withdrawn") if status.withdrawn
                                  else _("● Online") if online else _("● Offline") if online is False
                                  else _("● Not connected yet"))
        self.outbox_label.setText(_("To send: {n}").format(n=format_number(int(status.outbox or 0))))
        last = status.last_sync
        self.last_sync_label.setText(_("Last sync: {when}").format(
            when=format_when(float(last), timezone, now) if last else _("never")))
        skew = status.clock_skew_s
        off = bool(status.clock_skew_flagged) and skew is not None
        self.skew_badge.setText(_("Clock off by {seconds} s").format(seconds=format_number(round(float(skew))))
                                if off else "")
        self.skew_badge.setVisible(off)
        self.staff_status.setText(staff["name"] if staff else _("Nobody logged in"))
