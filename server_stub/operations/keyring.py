"""A process's view of the signing keys: which one signs now, which tills are given, which the backend trusts.

Rotation (operations/signing_keys.py) only writes rows; every process, on one
host or several, re-reads `signing_keys` at most `ttl_s` after its last look,
so a rotation reaches every granian worker within seconds without a restart.
What a row means, by its times (no process has to wake up at a boundary):

- it SIGNS while not retired (`retired_at` unset or still ahead); of two such
  rows the one being retired (`active` 0) signs: the new key (`active` 1)
  waits, published, until the old one's `retired_at` (a rotation's lead time,
  so every till has it first). `active`, not creation times, says which is
  newer: a clock set back must not make the new key look older;
- it is PUBLISHED (catalog, enrollment: what tills verify with) until
  `expires_at`, the end of the last token it can have signed;
- the backend itself keeps VERIFYING with a key that expired naturally for
  `SYNC_GRACE_S` more: a till that was offline may still send a redemption it
  accepted before the token ended (its own expiry refuses any new use). A key
  WITHDRAWN (a leak: `expires_at` no later than `retired_at`) is trusted by no one.

The hot path (every redemption asks for `trust`) costs a clock read and a
comparison: the derived state is rebuilt only when the rows change or the
next of their boundaries passes.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

from pos_app.core import tokens

from ..errors import Busy

REFRESH_S = 2.0  # how stale a process's rows may be: a rotation is seen everywhere within this
SYNC_GRACE_S = 45 * 24 * 3600  # longer than a till keeps unsent entries before it must stop (offline policy)


class KeyRow(NamedTuple):
    kid: str
    pem: str
    active: int  # 1: the newest key (signing, or waiting to); 0: being retired or retired
    created_at: float
    retired_at: float | None
    expires_at: float | None

    @property
    def withdrawn(self) -> bool:
        return self.retired_at is not None and self.expires_at is not None and self.expires_at <= self.retired_at


# Retired and retiring keys first (oldest first), then the newest: the first that still signs is the signer.
SELECT_ROWS = ("SELECT kid, public_pem, active, created_at, retired_at, expires_at FROM signing_keys "
               "ORDER BY active, created_at, kid")


def read_rows(db) -> list[KeyRow]:
    return [KeyRow(kid, pem, 1 if active else 0, float(created or 0), retired, expires)
            for kid, pem, active, created, retired, expires in db.execute(SELECT_ROWS).fetchall()]


def signs(row: KeyRow, now: float) -> bool:
    return row.retired_at is None or row.retired_at > now


def published(row: KeyRow, now: float) -> bool:
    return row.expires_at is None or row.expires_at > now


def verifies(row: KeyRow, now: float) -> bool:
    """What the backend trusts: the published keys, and for a while the naturally expired ones."""
    return published(row, now) or (not row.withdrawn and row.expires_at + SYNC_GRACE_S > now)


def signer_of(rows: list[KeyRow], now: float) -> KeyRow | None:
    return next((row for row in rows if signs(row, now)), None)  # rows come in SELECT_ROWS's order


@dataclass(frozen=True)
class KeyState:
    kid: str | None  # the key that signs now (None: none does, a damaged table)
    not_after: float | None  # tokens it signs end by then (its expires_at), or no bound
    public_keys: list[dict]  # [{kid, pem}] for tills: the published keys
    trust: tokens.TrustSet  # what the backend verifies with
    since: float  # the time it was made for: a clock set back makes it again too
    until: float  # the next boundary: past it (or on new rows) the state is made again


def make_state(rows: list[KeyRow], now: float) -> KeyState:
    signer = signer_of(rows, now)
    times = [t for row in rows for t in (row.retired_at, row.expires_at,
                                         None if row.expires_at is None else row.expires_at + SYNC_GRACE_S)
             if t is not None and t > now]
    return KeyState(kid=None if signer is None else signer.kid,
                    not_after=None if signer is None else signer.expires_at,
                    public_keys=[{"kid": r.kid, "pem": r.pem} for r in rows if published(r, now)],
                    trust=tokens.TrustSet.from_pems(r.pem for r in rows if verifies(r, now)),
                    since=now, until=min(times, default=math.inf))


class KeyRing:
    """The rows, re-read at most every `refresh_s`, and the state they give at a time; shared by request threads."""

    def __init__(self, read: Callable[[], Any], private_key: Callable[[str], Any], *,
                 refresh_s: float = REFRESH_S, monotonic: Callable[[], float] = time.monotonic):
        self._read, self._private_key = read, private_key
        self.refresh_s, self._monotonic = refresh_s, monotonic
        self._lock = threading.Lock()  # one thread re-reads; the others go on with what was read
        self._rows = read_rows(read())
        self._read_at = monotonic()
        self._state: KeyState | None = None
        self._private: dict[str, Any] = {}

    def refresh(self) -> None:
        """Read the rows now (a rotation made by this process is seen at once)."""
        rows = read_rows(self._read())
        with self._lock:
            self._read_at = self._monotonic()
            if rows != self._rows:
                self._rows, self._state = rows, None

    def _current_rows(self) -> list[KeyRow]:
        if self._monotonic() - self._read_at >= self.refresh_s and self._lock.acquire(blocking=False):
            try:
                self._read_at = self._monotonic()  # first: a failing read is retried after refresh_s, not per call
                rows = read_rows(self._read())
                if rows != self._rows:
                    self._rows, self._state = rows, None
            finally:
                self._lock.release()
        return self._rows

    def state(self, now: float) -> KeyState:
        rows = self._current_rows()
        state = self._state
        if state is None or not state.since <= now < state.until:
            state = self._state = make_state(rows, now)
        return state

    def rows(self) -> list[KeyRow]:
        return list(self._current_rows())

    def signer(self, now: float) -> tuple[Any, float | None]:
        """The private key that signs now and the time its tokens must end by; Busy when this host lacks it."""
        state = self.state(now)
        if state.kid is None:
            raise Busy("signing_key_missing", "no signing key signs now: run `python -m server_stub key list`")
        key = self._private.get(state.kid)
        if key is None:
            try:
                key = self._private_key(state.kid)
            except FileNotFoundError:
                raise Busy("signing_key_missing", f"this backend host lacks the private key {state.kid}: copy "
                           f"keys/{state.kid}.pem from the data folder where it was made (key rotate)") from None
            self._private[state.kid] = key
        return key, state.not_after
