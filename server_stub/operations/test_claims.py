"""Test claims made at the console: a claim for a customer id of the form `test-…`, so a till can be tried.

A person (the operator or a retailer's admin) makes them, so each is in the
audit log, unlike the customer app's claims. Only claims whose customer id
starts with `test-` are listed here: a real customer's claim and its short
code (enough to redeem it) are never shown at the console.
"""

from __future__ import annotations

from ..errors import Invalid, NotFound
from . import vouchers
from .context import Context

PREFIX = "test-"
CUSTOMER_MAX = 64
LIST_MAX = 50
_FIELDS = ("jti", "retailer_id", "voucher_id", "customer_id", "short_code", "issued_at", "expires_at", "revoked_at")


def issue(ctx: Context, voucher_id: str, customer_id: str) -> dict:
    """The claim as create_claim answers it (token, short code, expiry, jti), audited as `claim.create`."""
    if not customer_id.startswith(PREFIX) or not len(PREFIX) < len(customer_id) <= CUSTOMER_MAX:
        raise Invalid("invalid_value", f"a test claim's customer id starts with {PREFIX!r}")
    return vouchers.create_claim(ctx, voucher_id, customer_id, audited=True)


def _shown(row) -> dict:
    claim = dict(zip(_FIELDS, row))
    claim["revoked"] = claim["revoked_at"] is not None
    return claim


def recent(ctx: Context, retailer_id: str | None) -> list[dict]:
    """The latest test claims, of one retailer when asked (None: every retailer's, for the operator)."""
    sql = f"SELECT {', '.join(_FIELDS)} FROM claims WHERE substr(customer_id, 1, 5) = ?"
    params: list = [PREFIX]
    if retailer_id is not None:
        sql += " AND retailer_id = ?"
        params.append(retailer_id)
    rows = ctx.storage.read().execute(sql + " ORDER BY issued_at DESC, jti LIMIT ?", (*params, LIST_MAX))
    return [_shown(r) for r in rows]


def get(ctx: Context, jti: str) -> dict:
    """One test claim (a customer's real claim is not found here)."""
    row = ctx.one(f"SELECT {', '.join(_FIELDS)} FROM claims WHERE jti = ? AND substr(customer_id, 1, 5) = ?",
                  (jti, PREFIX))
    if row is None:
        raise NotFound("not_found", "no such test claim")
    return _shown(row)
