"""The till's login slows down and then locks after wrong PINs, kept in the store so a restart resets nothing.

A stolen or borrowed till holds every PIN hash of its staff, so guessing at
the login screen must cost time: after `FREE_TRIES` wrong PINs for a staff
id each further try waits (2, 4, 8… seconds since the last wrong one, up to
`MAX_WAIT_S`), and from `LOCK_AFTER` wrong PINs on the id is locked for
`LOCK_S`. A try made while waiting or locked is refused before the PIN is
looked at, so it teaches nothing. A right PIN clears the count.

Ids no staff member has share one row (`UNKNOWN`): random ids are throttled
like a real one, and the table never holds more rows than the staff plus one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..core import pins

FREE_TRIES = 3
MAX_WAIT_S = 60.0
LOCK_AFTER = 10
LOCK_S = 15 * 60.0
# Wrong PINs this long ago (and no lock in force) are forgotten: yesterday's typo is not today's attack.
FORGET_S = 60 * 60.0
UNKNOWN = ""  # the row of every id no staff member has (a staff id is never empty: core/wire.py)

WRONG, WAIT, LOCKED = "wrong", "wait", "locked"


@dataclass(frozen=True)
class PinCheck:
    """A login's answer: the member logged in, or why not.

    `refused` is None (logged in), WRONG, WAIT (`retry_at` is when the next try
    may be made) or LOCKED (until `retry_at`); `wait_s` is the whole seconds
    left then. `pin_change` asks a manager or admin whose PIN is shorter than
    their role's fewest digits to choose a new one.
    """

    member: dict | None
    refused: str | None = None
    retry_at: float | None = None
    wait_s: int = 0
    pin_change: bool = False


def check(store, staff_id: str, pin: str, now: float) -> PinCheck:
    """Check `pin` for `staff_id` at `now` (the till's clock), counting a wrong one."""
    row = store.conn.execute("SELECT pin_hash FROM staff WHERE id = ?", (staff_id,)).fetchone() \
        if isinstance(staff_id, str) and staff_id else None
    slot = staff_id if row is not None else UNKNOWN
    refusal = _refusal(store, slot, now)
    if refusal is not None:
        return refusal
    if row is None or not pins.check_pin(pin, row[0] or ""):
        return _wrong(store, slot, now)
    if store.conn.execute("SELECT 1 FROM pin_failures WHERE staff_id = ?", (slot,)).fetchone():
        with store.transaction():
            store.conn.execute("DELETE FROM pin_failures WHERE staff_id = ?", (slot,))
    member = store.staff_member(staff_id)
    return PinCheck(member, pin_change=len(pin) < pins.min_digits(member["role"]))


def _refusal(store, slot: str, now: float) -> PinCheck | None:
    row = store.conn.execute("SELECT failures, last_at, locked_until FROM pin_failures WHERE staff_id = ?",
                             (slot,)).fetchone()
    if row is None:
        return None
    failures, last_at, locked_until = row
    if last_at > now:
        # The clock was set back: count the waits from now, or a wrong PIN "tomorrow" would lock for a day.
        last_at = now
        locked_until = None if locked_until is None else min(locked_until, now + LOCK_S)
        with store.transaction():
            store.conn.execute("UPDATE pin_failures SET last_at = ?, locked_until = ? WHERE staff_id = ?",
                               (last_at, locked_until, slot))
    if locked_until is not None and now < locked_until:
        return PinCheck(None, LOCKED, locked_until, math.ceil(locked_until - now))
    retry_at = last_at + _wait_after(failures)
    if now < retry_at:
        return PinCheck(None, WAIT, retry_at, math.ceil(retry_at - now))
    return None


def _wrong(store, slot: str, now: float) -> PinCheck:
    with store.transaction():
        # Bounded: rows of ids that left the staff, and old counts with no lock in force, go.
        store.conn.execute(
            "DELETE FROM pin_failures WHERE (staff_id <> ? AND staff_id NOT IN (SELECT id FROM staff))"
            " OR (last_at < ? AND (locked_until IS NULL OR locked_until <= ?))", (UNKNOWN, now - FORGET_S, now))
        row = store.conn.execute("SELECT failures FROM pin_failures WHERE staff_id = ?", (slot,)).fetchone()
        failures = (row[0] if row else 0) + 1
        locked_until = now + LOCK_S if failures >= LOCK_AFTER else None
        store.conn.execute(
            "INSERT OR REPLACE INTO pin_failures (staff_id, failures, last_at, locked_until) VALUES (?, ?, ?, ?)",
            (slot, failures, now, locked_until))
    if locked_until is not None:
        return PinCheck(None, LOCKED, locked_until, math.ceil(LOCK_S))
    wait = _wait_after(failures)
    return PinCheck(None, WRONG, now + wait if wait else None, math.ceil(wait))


def _wait_after(failures: int) -> float:
    """How long after the last of `failures` wrong PINs the next try may be made."""
    if failures < FREE_TRIES:
        return 0.0
    return min(2.0 ** (failures - FREE_TRIES + 1), MAX_WAIT_S)
