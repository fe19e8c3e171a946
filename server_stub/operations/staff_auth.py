"""Who may call an admin-level endpoint: the admin token, or a till's staff member in person.

A till's device token alone is never enough: the request must also carry
`X-Pika-Staff: <staff id>` and `X-Pika-Pin: <PIN>` of a staff member of that
device's retailer (and store, if the member belongs to one) whose role is
allowed, checked against the stored PBKDF2 hash. The booklet admin uses it
with role admin; reports reuse it with managers.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from pos_app.core import pins

from ..errors import Forbidden, Unauthorized
from .context import Context
from .credentials import require_admin, require_device

MAX_FAILURES = 5  # wrong PINs for one staff member at one till before a pause
FAILURE_WINDOW_S = 300
VERIFIED_TTL_S = 120.0  # a manager paging through reports types the PIN once, not once per page
VERIFIED_MAX = 1024


@dataclass(frozen=True)
class Caller:
    """Who is calling: the platform admin (retailer_id None) or a staff member at a till."""

    kind: str  # "admin" | "staff"
    retailer_id: str | None = None
    store_id: str | None = None
    device_id: str | None = None
    staff_id: str | None = None
    role: str | None = None
    retailer_wide: bool = False  # staff who belong to no single store (head office): every store of the retailer


class _Failures:
    """Recent wrong PINs per (device, staff), so a till cannot try all 10,000 PINs at speed."""

    def __init__(self):
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], list[float]] = {}

    def blocked(self, key, now: float) -> bool:
        with self._lock:
            recent = [t for t in self._seen.get(key, []) if now - t < FAILURE_WINDOW_S]
            self._seen[key] = recent
            return len(recent) >= MAX_FAILURES

    def add(self, key, now: float) -> None:
        with self._lock:
            self._seen.setdefault(key, []).append(now)

    def clear(self, key) -> None:
        with self._lock:
            self._seen.pop(key, None)


class _Verified:
    """PINs checked lately, so a manager's next call skips the PBKDF2 check (~0.1–0.2 s of CPU here).

    Entries are keyed by an HMAC under a key made at start and never stored,
    over the device, the staff member, the PIN and the stored hash: a changed
    PIN (new hash) misses, and the memory holds nothing that tests a PIN
    faster than the stored hash does. The staff row is still read on every
    call, so a changed role or store applies at once."""

    def __init__(self, ttl_s: float = VERIFIED_TTL_S, size: int = VERIFIED_MAX):
        self._key = secrets.token_bytes(32)
        self._ttl, self._size = ttl_s, size
        self._lock = threading.Lock()
        self._until: OrderedDict[bytes, float] = OrderedDict()

    def _mark(self, device_id: str, staff_id: str, pin: str, pin_hash: str) -> bytes:
        text = "\0".join((device_id, staff_id, pin, pin_hash)).encode("utf-8", "surrogatepass")
        return hmac.new(self._key, text, hashlib.sha256).digest()

    def check(self, device_id: str, staff_id: str, pin: str, pin_hash: str, now: float) -> bool:
        """True if this PIN matches the stored hash (from memory if it matched lately)."""
        mark = self._mark(device_id, staff_id, pin, pin_hash)
        with self._lock:
            until = self._until.get(mark)
            if until is not None and now < until:
                return True
        if not pins.check_pin(pin, pin_hash):
            return False
        with self._lock:
            self._until[mark] = now + self._ttl
            self._until.move_to_end(mark)
            while len(self._until) > self._size:
                self._until.popitem(last=False)
        return True


_failures = _Failures()
_verified = _Verified()


def require_admin_or_staff(ctx: Context, token: str | None, staff_id: str | None, pin: str,
                           roles: tuple[str, ...] = ("admin",)) -> Caller:
    """The caller if `token` is the admin token, or a device token with a staff member of an allowed role
    (`staff_id`, `pin`: the request's X-Pika-Staff and X-Pika-Pin, read by the web layer)."""
    if staff_id is None:
        require_admin(ctx, token)  # 401 for a device token alone, too
        return Caller("admin")
    device = require_device(ctx, token)
    key = (device["id"], staff_id[:64])
    now = time.monotonic()
    if _failures.blocked(key, now):
        raise Unauthorized("unauthorized", "too many wrong PINs: wait a few minutes")
    row = ctx.storage.read().execute(
        "SELECT id, role, pin_hash, store_id FROM staff WHERE id = ? AND retailer_id = ?",
        (staff_id[:64], device["retailer_id"])).fetchone()
    if (row is None or (row[3] is not None and row[3] != device["store_id"])
            or not _verified.check(device["id"], row[0], pin, row[2], now)):
        _failures.add(key, now)
        raise Unauthorized("unauthorized", "the staff member or PIN is not valid at this till")
    _failures.clear(key)
    if row[1] not in roles:
        raise Forbidden("forbidden", f"this needs the role {' or '.join(roles)}")
    return Caller("staff", device["retailer_id"], device["store_id"], device["id"], row[0], row[1],
                  retailer_wide=row[3] is None)
