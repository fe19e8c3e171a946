"""The login's answer at the window: the member in, or why not told plainly, and a short PIN asked to change.

Apart from the window, which only hands the login screen's staff id and PIN
here. The PIN is checked on the store's thread (a slow hash, and the
lockout's rows: store/pin_lockout.py); a manager or admin whose PIN is
shorter than their role's fewest digits is logged in, then asked for a new
one (pin_change.py).
"""

from __future__ import annotations

import logging

from ..store.pin_lockout import PinCheck
from ..words.i18n import _
from .pin_change import PinChangeDialog

log = logging.getLogger(__name__)


def log_in(window, staff_id: str, pin: str) -> None:
    """Check `pin` for `staff_id` at the window's clock; the window logs them in or the screen says why not."""
    now = window.clock()
    window.store.submit(lambda store: store.staff_login(staff_id, pin, now=now),
                        lambda check: _checked(window, check, pin),
                        lambda exc: window.login.show_error(_("The PIN could not be checked: {error}").format(
                            error=exc)))


def check_still_here(window) -> None:
    """The member logged in is still one of the till's staff (the feed removes one the operator disabled
    or moved to another store, through the sync engine's connection): if not, the till locks, and the
    login then refuses them as it refuses anyone unknown here."""
    member = window.staff
    if member is None:
        return
    staff_id = member["id"]

    def still(store) -> bool:
        return store.staff_member(staff_id) is not None

    def seen(present: bool) -> None:
        if not present and window.staff is not None and window.staff["id"] == staff_id:
            log.warning("staff member %s is no longer one of this till's staff (disabled or moved): locked",
                        staff_id)
            window.lock()
    window.store.submit(still, seen)


def _checked(window, check: PinCheck, pin: str) -> None:
    if check.member is None:
        window._pin = ""
        window.login.show_refusal(check, window.panel.timezone)
        return
    window._pin = pin  # kept in memory only: the booklet's staff credentials, a void's proof
    window._logged_in(check.member)
    if check.pin_change:
        ask_new_pin(window, check.member, pin)


def ask_new_pin(window, member: dict, pin: str) -> PinChangeDialog:
    """The window-modal prompt for a new PIN (it returns at once; "Later" closes it, asked again next login)."""
    backend = window.info.backend() if window.info else {}
    dialog = PinChangeDialog(member, pin, lambda: window._open_client(backend), window.tasks, window)
    dialog.changed.connect(lambda new_pin: _changed(window, member["id"], new_pin, dialog.proof_salt))
    dialog.withdrawn.connect(window.withdrawal.told)
    dialog.open()
    return dialog


def _changed(window, staff_id: str, new_pin: str, proof_salt: str | None) -> None:
    """The backend took the new PIN: it works at this till at once, and is what the window now holds."""
    if window.staff is not None and window.staff["id"] == staff_id:
        window._pin = new_pin
    window.store.submit(lambda store: store.own_pin_changed(staff_id, new_pin, proof_salt))
    if window.sync_engine is not None:  # the backend's staff event (its hash, the new proof salt) is in the feed
        window.sync_engine.sync_now()
