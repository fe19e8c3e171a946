"""Who may call an admin-level endpoint: the admin token, or a till's staff member in person.

A till's device token alone is never enough: the request must also carry
`X-Pika-Staff: <staff id>` and `X-Pika-Pin: <PIN>` of a staff member of that
device's retailer who may work at that till (its store's staff; staff of no
single store where the retailer lets them work anywhere) and whose role is
allowed, checked against the stored PBKDF2 hash; a disabled member is refused
(403 `staff_disabled`) before the PIN is looked at. Wrong PINs are counted in the
database (`pin_lockout`). The booklet admin uses it with role admin; reports
reuse it with managers.
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
from . import audit, pin_lockout
from .context import Context
from .credentials import require_admin, require_device

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
    # A manager's or admin's PIN shorter than their role now needs (pins.min_digits): still let in, asked to change.
    pin_change_required: bool = False


class _Verified:
    """PINs checked lately, so a manager's next call skips the PBKDF2 check (~0.1–0.2 s of CPU here).

    In each worker's memory, unlike the lockout, and that is safe: it only
    ever says yes to a PIN that matched the stored hash less than a TTL ago
    (a wrong PIN is never kept, so it holds no count a restart or another
    worker could miss); it is bounded (oldest out first) and short-lived; the
    lockout is checked before it, so a locked member is refused even with a
    remembered PIN.

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


_verified = _Verified()


def may_work_at(db, staff_store: str | None, device: dict) -> bool:
    """Whether a staff member of `staff_store` (None: of no single store) may work at this till:
    its store's staff, and retailer-wide staff where the retailer lets them (`retailers.staff_anywhere`)."""
    if staff_store is not None:
        return staff_store == device["store_id"]
    row = db.execute("SELECT staff_anywhere FROM retailers WHERE id = ?", (device["retailer_id"],)).fetchone()
    return bool(row and row[0])


def require_admin_or_staff(ctx: Context, token: str | None, staff_id: str | None, pin: str,
                           roles: tuple[str, ...] = ("admin",)) -> Caller:
    """The caller if `token` is the admin token, or a device token with a staff member of an allowed role
    (`staff_id`, `pin`: the request's X-Pika-Staff and X-Pika-Pin, read by the web layer)."""
    if staff_id is None:
        require_admin(ctx, token)  # 401 for a device token alone, too
        return Caller("admin")
    return require_staff(ctx, token, staff_id, pin, roles)


def require_staff(ctx: Context, token: str | None, staff_id: str, pin: str, roles: tuple[str, ...]) -> Caller:
    """A staff member at a till, in person (their PIN); 429 too_many_attempts while locked out there."""
    device = require_device(ctx, token)
    staff_id = staff_id[:64]
    now = ctx.clock()  # the wall clock: the lockout is shared by workers and outlives them
    pin_lockout.refuse_if_locked(ctx, device["id"], staff_id, now)
    db = ctx.storage.read()
    row = db.execute("SELECT id, role, pin_hash, store_id, disabled_at FROM staff WHERE id = ? AND retailer_id = ?",
                     (staff_id, device["retailer_id"])).fetchone()
    if row is None or not may_work_at(db, row[3], device):
        # No PIN was checked, so nothing was learned: no row (only staff who may log in here get one).
        raise Unauthorized("unauthorized", "the staff member or PIN is not valid at this till")
    if row[4] is not None:
        # Before the PIN (a remembered one too) and not counted as a wrong one: the member is out, not guessing.
        raise Forbidden("staff_disabled", "this staff member was disabled")
    if not _verified.check(device["id"], row[0], pin, row[2], time.monotonic()):
        pin_lockout.add_failure(ctx, device["id"], row[0], now)  # 429 if that was the one too many
        raise Unauthorized("unauthorized", "the staff member or PIN is not valid at this till")
    pin_lockout.clear(ctx, device["id"], row[0])
    audit.identify("staff", row[0], f"at {device['name']}", device["retailer_id"])
    if row[1] not in roles:
        raise Forbidden("forbidden", f"this needs the role {' or '.join(roles)}")
    return Caller("staff", device["retailer_id"], device["store_id"], device["id"], row[0], row[1],
                  retailer_wide=row[3] is None, pin_change_required=len(pin) < pins.min_digits(row[1]))
