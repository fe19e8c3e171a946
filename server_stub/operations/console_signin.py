"""Who may sign in to the web console, and who a session still is on each request.

The platform operator signs in with an admin token (scope all, or claims for
a customer app's people who only issue claims); retailer staff with their
staff id and PIN, roles manager and admin only (a cashier works at a till or
the shop page). Wrong PINs count in the database as at a till, under the
console's own name, so guessing at the console locks the member out of the
console (not of their till) after five tries, in every worker at once.

`who` is asked on every request with the session's row: a token rotated away
or expired, a member disabled, moved or demoted, a web till withdrawn —
each ends the session there and then.
"""

from __future__ import annotations

from dataclasses import dataclass

from pos_app.core import pins

from ..datadir import token_hash
from ..errors import Forbidden, Unauthorized
from . import audit, pin_lockout
from .context import Context
from .credentials import require_admin

CONSOLE_DEVICE = "console"  # pin_failures' device for PINs typed at the console
CONSOLE_SCOPES = ("all", "claims")
CONSOLE_ROLES = ("manager", "admin")


@dataclass(frozen=True)
class Who:
    """The person behind a session: operator (an admin token), staff (manager or admin), or a web till's
    cashier (kind shop). `retailer_id` None: the platform operator, every retailer."""

    kind: str
    name: str
    scope: str | None = None  # the operator's token scope
    token_hash: str | None = None
    staff_id: str | None = None
    role: str | None = None
    retailer_id: str | None = None
    store_id: str | None = None  # None for staff: every store of their retailer (head office)
    device_id: str | None = None  # the web till (kind shop)

    @property
    def operator(self) -> bool:
        return self.kind == "operator" and self.scope == "all"


def sign_in_operator(ctx: Context, token: str) -> Who:
    """401 unauthorized / token_expired, 403 for a token of another scope (metrics)."""
    scope = require_admin(ctx, token.strip(), CONSOLE_SCOPES)
    digest = token_hash(token.strip())
    name = ctx.one("SELECT name FROM admin_tokens WHERE token_hash = ?", (digest,))[0]
    return Who("operator", name or digest[:12], scope=scope, token_hash=digest)


def sign_in_staff(ctx: Context, staff_id: str, pin: str) -> Who:
    """A manager or admin by id and PIN; 429 too_many_attempts while locked out at the console."""
    staff_id = staff_id.strip()[:64]
    now = ctx.clock()
    pin_lockout.refuse_if_locked(ctx, CONSOLE_DEVICE, staff_id, now)
    row = ctx.one("SELECT id, name, role, pin_hash, retailer_id, store_id, disabled_at FROM staff WHERE id = ?",
                  (staff_id,))
    if row is None:
        raise Unauthorized("unauthorized", "the staff id or PIN is not valid")
    if not pins.check_pin(pin, row[3]):
        pin_lockout.add_failure(ctx, CONSOLE_DEVICE, row[0], now)  # 429 once that was one too many
        raise Unauthorized("unauthorized", "the staff id or PIN is not valid")
    # After the PIN, unlike at a till: the console is open to anyone, who must not learn which ids were disabled.
    if row[6] is not None:
        raise Forbidden("staff_disabled", "this staff member was disabled")
    pin_lockout.clear(ctx, CONSOLE_DEVICE, row[0])
    if row[2] not in CONSOLE_ROLES:
        raise Forbidden("role_not_allowed", "cashiers use a till or the shop page, not the console")
    audit.identify("staff", row[0], f"{row[1]} (console)", row[4])
    return Who("staff", row[1], staff_id=row[0], role=row[2], retailer_id=row[4], store_id=row[5])


def who(ctx: Context, kind: str, token_hash_: str | None, staff_id: str | None, device_id: str | None) -> Who | None:
    """Who a session's row still stands for, identified for the audit log; None when it no longer may."""
    if kind == "operator":
        row = ctx.one("SELECT scope, name, expires_at FROM admin_tokens WHERE token_hash = ?", (token_hash_,))
        if row is None or row[0] not in CONSOLE_SCOPES or (row[2] is not None and row[2] <= ctx.clock()):
            return None
        audit.identify("admin", token_hash_[:12], row[1])
        return Who("operator", row[1] or token_hash_[:12], scope=row[0], token_hash=token_hash_)
    row = ctx.one("SELECT name, role, retailer_id, store_id, disabled_at FROM staff WHERE id = ?", (staff_id,))
    if row is None or row[4] is not None:
        return None
    if kind == "staff":
        if row[1] not in CONSOLE_ROLES:
            return None
        audit.identify("staff", staff_id, f"{row[0]} (console)", row[2])
        return Who("staff", row[0], staff_id=staff_id, role=row[1], retailer_id=row[2], store_id=row[3])
    if kind == "shop":
        till = ctx.one("SELECT retailer_id, store_id, revoked_at, name FROM devices WHERE id = ? AND kind = 'web'",
                       (device_id,))
        if till is None or till[2] is not None or till[0] != row[2] or (row[3] is not None and row[3] != till[1]):
            return None
        audit.identify("staff", staff_id, f"{row[0]} (at {till[3]})", row[2])
        return Who("shop", row[0], staff_id=staff_id, role=row[1], retailer_id=row[2], store_id=till[1],
                   device_id=device_id)
    return None
