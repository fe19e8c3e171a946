"""Where this till stands with its backend: withdrawn or not, and how long since it last heard from it.

A till the backend answered `device_revoked` (withdrawn) or `device_rolled` (its token replaced) must stop
redeeming at once and stay stopped over restarts, so the answer is kept in the store's settings, beside
the enrollment it invalidates; re-enrolling as the same device clears it. When the till last heard from
the backend decides whether it may still judge personal codes offline (the catalog's `policy.offline_days`).

These settings are written by whichever connection heard the backend (the window's store thread, the
sync engine's own): they are read from the file (`stored`), never from a connection's settings cache.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from ..core.wire import DEFAULT_OFFLINE_DAYS, OFFLINE_DAYS

log = logging.getLogger(__name__)

REVOKED, ROLLED = "device_revoked", "device_rolled"
WITHDRAWN = (REVOKED, ROLLED)  # the backend's error codes (401) that end this till's credential
STATE_KEY = "device_standing"  # {"state": REVOKED | ROLLED, "at": time, "message": text}
LAST_HEARD_KEY = "last_heard_at"  # the till's clock at the last answer the backend gave
OFFLINE_DAYS_KEY = "offline_days"  # the catalog's policy.offline_days
DAY_S = 86_400.0
MESSAGE_CHARS = 300


class Withdrawn(Exception):
    """This till may not redeem: the backend withdrew it (`device_revoked`) or replaced its token
    (`device_rolled`). Nothing was recorded for the input that met this."""

    def __init__(self, state: str):
        super().__init__({REVOKED: "this till was withdrawn by the backend: call your manager",
                          ROLLED: "this till's token was replaced: enroll it again with the operator's new code"}
                         .get(state, state))
        self.state = state


def withdrawn(store) -> str | None:
    """REVOKED or ROLLED when the backend said so (read from the file), else None."""
    standing = store.stored(STATE_KEY).get(STATE_KEY)
    state = standing.get("state") if isinstance(standing, dict) else None
    return state if state in WITHDRAWN else None


def check(store) -> None:
    """Raise Withdrawn if this till may not redeem."""
    state = withdrawn(store)
    if state is not None:
        raise Withdrawn(state)


def mark(store, state: str, message: str = "", *, now: float | None = None) -> bool:
    """Keep the backend's word that this till is withdrawn; True if it is news (then it is logged)."""
    if state not in WITHDRAWN:
        raise ValueError(f"not a withdrawal: {state!r}")
    if withdrawn(store) == state:
        return False
    at = time.time() if now is None else float(now)
    standing = {"state": state, "at": at, "message": str(message)[:MESSAGE_CHARS]}
    with store.transaction():
        store.write_setting(STATE_KEY, standing)
    store.keep_setting(STATE_KEY, standing)
    log.warning("the backend answered %s: this till stops redeeming until it is enrolled again (%s)",
                state, str(message)[:MESSAGE_CHARS])
    return True


def clear(store) -> str | None:
    """Forget a withdrawal (the till was enrolled again as the same device), inside the caller's
    transaction; returns the state forgotten (logged), if there was one."""
    state = withdrawn(store)
    store.conn.execute("DELETE FROM settings WHERE key = ?", (STATE_KEY,))
    if state is not None:
        log.warning("enrolled again as the same device: the till redeems again (it was %s)", state)
    return state


def note_heard(store, now: float | None = None) -> None:
    """The backend answered (inside the caller's transaction, or alone): the offline policy counts from here."""
    at = time.time() if now is None else float(now)
    store.keep_setting(LAST_HEARD_KEY, at)
    if store.conn.in_transaction:
        store.write_setting(LAST_HEARD_KEY, at)
        return
    with store.transaction():
        store.write_setting(LAST_HEARD_KEY, at)


def offline_days(value: Any) -> int:
    """A stored or catalog `offline_days` as the till uses it: the default unless a whole number in range."""
    low, high = OFFLINE_DAYS
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return DEFAULT_OFFLINE_DAYS
    return value


def days_unheard(store, now: float) -> int:
    """Whole days since the backend last answered, when that is longer than the policy allows; else 0.

    A store older than this rule counts from its last successful sync round.
    """
    stored = store.stored(LAST_HEARD_KEY, OFFLINE_DAYS_KEY, "last_sync")
    last = stored.get(LAST_HEARD_KEY, stored.get("last_sync"))
    if isinstance(last, bool) or not isinstance(last, (int, float)) or not math.isfinite(last):
        return 0
    silent = now - float(last)
    if silent <= offline_days(stored.get(OFFLINE_DAYS_KEY)) * DAY_S:
        return 0
    return max(1, int(silent // DAY_S))
