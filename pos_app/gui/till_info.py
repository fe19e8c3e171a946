"""What the window reads of its store when it starts, and the till's status, both made on the store's thread.

Qt-free: the store's thread makes a `TillInfo` and the GUI thread only reads
it, so it is a frozen record rather than a dict of strings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..store import settings as till_settings
from ..sync.client import client_for
from ..sync.status import StoreFigures, store_status


@dataclass(frozen=True)
class TillInfo:
    device_name: str
    server_url: str  # "" when the till is not enrolled
    device_token: str  # "" when the till is not enrolled
    store_name: str
    timezone: str | None
    staff: list  # the store's staff members, for the login screen
    settings: dict  # the till's preferences as stored (settings.PREFERENCES), read through settings.value()
    status: StoreFigures  # with the conflicts to show (status_of)
    ca_file: str = ""  # the setting: the authorities the till trusts for its backend ("" the system's)

    def backend(self) -> dict:
        """What a backend client made off the store's thread needs (`client_for` reads it)."""
        backend = {"server_url": self.server_url, "device_token": self.device_token}
        return {**backend, "ca_file": self.ca_file} if self.ca_file else backend


def backend_client(store):
    """The window's backend client, or None when the till has no backend.

    `store` is a TillStore (on its own thread) or a `TillInfo.backend()` mapping.
    """
    if not store.get("device_token"):
        return None
    return client_for(store)


def status_of(store) -> StoreFigures:
    """The store's sync figures with the conflicts the sync panel lists (a voucher's title in the UI language)."""
    from ..words.i18n import language

    figures = store_status(store)
    entries = store.conflicts(50)
    for entry in entries:
        voucher = store.voucher(entry["voucher_id"]) if entry.get("voucher_id") else None
        entry["voucher"] = voucher.text("title", language()) if voucher else entry.get("voucher_id")
    return replace(figures, conflict_entries=entries)


def load_info(store) -> TillInfo:
    return TillInfo(
        device_name=store.device_name,
        server_url=store.server_url if store.enrolled else "",
        device_token=store.device_token if store.enrolled else "",
        store_name=store.get("store_name") or "",
        timezone=store.store_timezone,
        staff=store.staff_members(),
        settings={k: store.get(k) for k in till_settings.PREFERENCES if store.get(k) is not None},
        status=status_of(store),
        ca_file=till_settings.value(store, "ca_file"),
    )
