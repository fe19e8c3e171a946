"""Wrong PINs typed at tills, counted in the database, so a till cannot try all PINs at speed.

In the database and not in a worker's memory: every worker counts the same
tries (five are five, however many workers answer), a restart forgets none,
and admins can see who is locked out (`GET /pin-lockouts`). Bounded: a row
is kept only for a staff member who exists (unknown ids are refused without
a PIN check, so they teach nothing and cost no row), one per (till, member),
and rows whose window and lock have both passed are pruned on every write.
"""

from __future__ import annotations

from ..errors import TooMany
from .context import Context

MAX_FAILURES = 5  # wrong PINs for one staff member at one till within the window: then a lock
FAILURE_WINDOW_S = 300.0
LOCK_S = 300.0


def refuse_if_locked(ctx: Context, device_id: str, staff_id: str, now: float) -> None:
    """429 too_many_attempts while this member is locked out at this till (the PIN is not even checked)."""
    row = ctx.one("SELECT locked_until FROM pin_failures WHERE device_id = ? AND staff_id = ?",
                  (device_id, staff_id))
    if row is not None and row[0] is not None and now < row[0]:
        raise _locked(row[0], now)


def add_failure(ctx: Context, device_id: str, staff_id: str, now: float) -> None:
    """Count a wrong PIN; 429 too_many_attempts if it was the one too many (the lock starts now)."""

    def write(db) -> float | None:
        db.execute("DELETE FROM pin_failures WHERE first_at < ? AND coalesce(locked_until, 0) < ?",
                   (now - FAILURE_WINDOW_S, now))
        # One statement, in the writer's transaction: two workers' failures both count. The stored
        # row's columns are named with their table: PostgreSQL finds a bare one ambiguous beside `excluded`.
        db.execute(
            "INSERT INTO pin_failures (device_id, staff_id, failures, first_at) VALUES (?, ?, 1, ?) "
            "ON CONFLICT (device_id, staff_id) DO UPDATE SET "
            "failures = CASE WHEN pin_failures.first_at < ? THEN 1 ELSE pin_failures.failures + 1 END, "
            "first_at = CASE WHEN pin_failures.first_at < ? THEN excluded.first_at ELSE pin_failures.first_at END",
            (device_id, staff_id, now, now - FAILURE_WINDOW_S, now - FAILURE_WINDOW_S))
        # The lock's start opens a new window: the first wrong PIN after the lock counts from one again.
        db.execute("UPDATE pin_failures SET locked_until = ?, first_at = ? "
                   "WHERE device_id = ? AND staff_id = ? AND failures >= ?",
                   (now + LOCK_S, now, device_id, staff_id, MAX_FAILURES))
        row = db.execute("SELECT locked_until FROM pin_failures WHERE device_id = ? AND staff_id = ?",
                         (device_id, staff_id)).fetchone()
        return row[0] if row and row[0] is not None and row[0] > now else None
    until = ctx.storage.submit(write)
    if until is not None:
        raise _locked(until, now)


def clear(ctx: Context, device_id: str, staff_id: str) -> None:
    """A right PIN: this member's count at this till starts again (a write only if there was one)."""
    if ctx.one("SELECT 1 FROM pin_failures WHERE device_id = ? AND staff_id = ?", (device_id, staff_id)):
        ctx.storage.submit(lambda db: db.execute(
            "DELETE FROM pin_failures WHERE device_id = ? AND staff_id = ?", (device_id, staff_id)))


def lockouts(ctx: Context) -> list[dict]:
    """Every (till, member) with recent wrong PINs or a lock, newest first, for the admin."""
    now = ctx.clock()
    rows = ctx.storage.read().execute(
        "SELECT f.device_id, d.name, d.retailer_id, d.store_id, f.staff_id, s.name, f.failures, f.first_at, "
        "f.locked_until FROM pin_failures f LEFT JOIN devices d ON d.id = f.device_id "
        "LEFT JOIN staff s ON s.id = f.staff_id WHERE f.first_at >= ? OR coalesce(f.locked_until, 0) > ? "
        "ORDER BY coalesce(f.locked_until, f.first_at) DESC, f.device_id, f.staff_id",
        (now - FAILURE_WINDOW_S, now)).fetchall()
    fields = ("device_id", "till", "retailer_id", "store_id", "staff_id", "staff_name", "failures", "first_at",
              "locked_until")
    return [{**dict(zip(fields, row)), "locked": row[8] is not None and row[8] > now} for row in rows]


def _locked(until: float, now: float) -> TooMany:
    wait = max(1, int(until - now + 0.999))
    return TooMany("too_many_attempts", f"too many wrong PINs for this staff member at this till: "
                                        f"try again in {wait} seconds", {"retry_after_s": wait})
