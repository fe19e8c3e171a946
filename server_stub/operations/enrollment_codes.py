"""Enrollment codes not yet used: listed for the console, and withdrawn before anyone enrolls with one.

A code is kept only as its hash, so it is never shown again after it was
made; the list names each by the first 16 hex digits of that hash (a handle
that teaches nothing of the code), with its store and when it ends. A code
handed to the wrong person, or photographed at the counter, is cancelled:
it ends now (the row stays, for the audit log's sake, and enrollment refuses
it as any expired code). Codes of a till being rolled are left to their
till's page.
"""

from __future__ import annotations

from ..errors import Invalid, NotFound
from . import audit
from .context import Context

LIST_MAX = 200
HANDLE_LEN = 16


def open_codes(ctx: Context, retailer_id: str | None = None, store_id: str | None = None) -> list[dict]:
    """Unused, unexpired codes for new tills, newest first (of one retailer or store when asked)."""
    where, params = ["used_at IS NULL", "for_device IS NULL", "expires_at > ?"], [ctx.clock()]
    for column, value in (("retailer_id", retailer_id), ("store_id", store_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    rows = ctx.storage.read().execute(
        f"SELECT substr(code_hash, 1, {HANDLE_LEN}), retailer_id, store_id, created_at, expires_at "
        f"FROM enrollment_codes WHERE {' AND '.join(where)} ORDER BY created_at DESC LIMIT {LIST_MAX}",
        params).fetchall()
    return [dict(zip(("handle", "retailer_id", "store_id", "created_at", "expires_at"), row)) for row in rows]


def cancel(ctx: Context, handle: object, retailer_id: str | None = None, store_id: str | None = None) -> dict:
    """End an unused code now: 404 when no open code of this scope has that handle."""
    if not (isinstance(handle, str) and len(handle) == HANDLE_LEN
            and all(c in "0123456789abcdef" for c in handle)):
        raise Invalid("invalid_value", "a code's handle is 16 hex digits, as the list shows")
    now = ctx.clock()
    actor = audit.current()

    def write(db) -> dict:
        where, params = [f"substr(code_hash, 1, {HANDLE_LEN}) = ?", "used_at IS NULL", "for_device IS NULL",
                         "expires_at > ?"], [handle, now]
        for column, value in (("retailer_id", retailer_id), ("store_id", store_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        rows = db.execute(f"SELECT code_hash, retailer_id, store_id FROM enrollment_codes WHERE {' AND '.join(where)}",
                          params).fetchall()
        if len(rows) != 1:  # none, or (against all odds) two codes sharing 64 bits of their hash: name neither
            raise NotFound("not_found", "no open enrollment code has this handle")
        code_hash, owner, store = rows[0]
        ctx.storage.hold(db, f"enroll-code:{code_hash}")  # as enrollment takes it: one or the other wins
        # A second before now: enrollment refuses a code whose end is before its own now, never at it.
        if db.execute("UPDATE enrollment_codes SET expires_at = ? WHERE code_hash = ? AND used_at IS NULL",
                      (now - 1, code_hash)).rowcount != 1:
            raise NotFound("not_found", "no open enrollment code has this handle")
        audit.write(ctx, db, actor, "enrollment_code.cancel", store, retailer_id=owner, detail={"handle": handle})
        return {"handle": handle, "store_id": store, "retailer_id": owner, "expires_at": now - 1}
    return ctx.storage.submit(write)
