"""Enrollment codes against guessing: failed enrollments counted per client address, in the database.

An enrollment code is 40 random bits, which holds only while guesses are few.
After LIMIT failures within WINDOW_S an address is refused (`429
too_many_attempts`) for LOCK_S, a right code included. The counts live in the
`enrollment_failures` table, so every worker process and a restarted backend
see the same ones; stale rows are pruned and the table never holds more than
MAX_ROWS addresses.

The address is the web layer's `http.client_address`: the connection's own
(WSGI REMOTE_ADDR), or the X-Real-IP of a trusted proxy (the config's
`trusted_proxies`, loopback by default: the shipped nginx front overwrites
it), never X-Forwarded-For, which any client may write.
"""

from __future__ import annotations

import logging
import math

from ..errors import TooMany

log = logging.getLogger(__name__)

LIMIT = 10  # failures per address within the window before the lock
WINDOW_S = 600
LOCK_S = 600
MAX_ROWS = 10_000  # addresses remembered at once; the oldest go first


def refuse_if_locked(db, address: str, now: float) -> None:
    """TooMany if the address is locked out now (run in the writer, before the code is looked at)."""
    row = db.execute("SELECT locked_until FROM enrollment_failures WHERE address = ?", (address,)).fetchone()
    if row is not None and row[0] is not None and row[0] > now:
        wait = math.ceil(row[0] - now)
        raise TooMany("too_many_attempts", "too many wrong enrollment codes from this address; try again later",
                      {"retry_after_s": wait})


def record_failure(db, address: str, now: float) -> int:
    """Count one failed enrollment of the address; the failures within its window so far."""
    row = db.execute("SELECT failures, first_at FROM enrollment_failures WHERE address = ?", (address,)).fetchone()
    if row is not None and row[1] > now - WINDOW_S:
        failures, first_at = row[0] + 1, row[1]
    else:
        if row is None:
            _make_room(db, now)
        failures, first_at = 1, now
    locked_until = now + LOCK_S if failures >= LIMIT else None
    # Every column but the key is set anew: what REPLACE did, in the upsert both engines speak.
    db.execute("INSERT INTO enrollment_failures (address, failures, first_at, locked_until) VALUES (?, ?, ?, ?) "
               "ON CONFLICT (address) DO UPDATE SET failures = excluded.failures, first_at = excluded.first_at, "
               "locked_until = excluded.locked_until", (address, failures, first_at, locked_until))
    return failures


def forget(db, address: str) -> None:
    """A right code: the address's earlier typos no longer count."""
    db.execute("DELETE FROM enrollment_failures WHERE address = ?", (address,))


def log_failure(address: str, failures: int) -> None:
    # The address, never the code: a log line must not help the next guess.
    if failures >= LIMIT:
        log.warning("enrollment refused from %s: %d wrong codes in %d s, locked for %d s",
                    address, failures, WINDOW_S, LOCK_S)
    else:
        log.warning("enrollment refused from %s: wrong code (%d of %d)", address, failures, LIMIT)


def _make_room(db, now: float) -> None:
    """Before a new address's row: drop rows past their window and lock, then the oldest beyond MAX_ROWS."""
    db.execute("DELETE FROM enrollment_failures WHERE first_at <= ? AND (locked_until IS NULL OR locked_until <= ?)",
               (now - WINDOW_S, now))
    (count,) = db.execute("SELECT COUNT(*) FROM enrollment_failures").fetchone()
    if count >= MAX_ROWS:
        db.execute("DELETE FROM enrollment_failures WHERE address IN "
                   "(SELECT address FROM enrollment_failures ORDER BY first_at LIMIT ?)", (count - MAX_ROWS + 1,))
