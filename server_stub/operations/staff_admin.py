"""The operator's staff: listed, renamed, moved, given another role or PIN, disabled and enabled again.

Every change is one write with its audit record and the feed events that
tell tills: the member's new row (a `staff` event) to the stores that may
now see them, and a `staff_removed` event to the stores that could see them
before and no longer may (disabled, or moved away), which those tills apply
by deleting the row, so their offline login no longer knows the member. A
till too old to know `staff_removed` skips it (an unknown type) and drops the
member at its next whole catalog, which never lists a disabled member.

A role whose PIN rule the member's PIN no longer meets (a cashier's four
digits, now a manager) is allowed: the hash does not tell the PIN's length,
and the login asks such a member for a new PIN (`pin_change_required`), as
it does for any PIN shorter than its role needs.
"""

from __future__ import annotations

from ..errors import Invalid, NotFound
from . import audit, console_sessions, staff_pins
from .admin import ROLES
from .common import add_event, store_of
from .context import Context

NAME_MAX = 200
LIST_MAX = 5000
# What an operator sees of a member: never the PIN's hash, its proof key or its salt.
ADMIN_FIELDS = ("id", "retailer_id", "store_id", "name", "role", "disabled_at", "created_at", "updated_at")
CHANGEABLE = ("name", "role", "store_id")


def _shown(row) -> dict:
    member = dict(zip(ADMIN_FIELDS, row))
    member["disabled"] = member["disabled_at"] is not None
    return member


def list_staff(ctx: Context, retailer_id: str | None = None, store_id: str | None = None,
               include_disabled: bool = False) -> list[dict]:
    """Members by retailer and name; `store_id` keeps that store's own staff (not head office's)."""
    where, params = [], []
    for column, value in (("retailer_id", retailer_id), ("store_id", store_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if not include_disabled:
        where.append("disabled_at IS NULL")
    sql = f"SELECT {', '.join(ADMIN_FIELDS)} FROM staff"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = ctx.storage.read().execute(f"{sql} ORDER BY retailer_id, name, id LIMIT ?", (*params, LIST_MAX))
    return [_shown(r) for r in rows]


def show(ctx: Context, staff_id: str) -> dict:
    row = ctx.one(f"SELECT {', '.join(ADMIN_FIELDS)} FROM staff WHERE id = ?", (staff_id,))
    if row is None:
        raise NotFound("not_found", "no such staff member")
    return _shown(row)


def change(ctx: Context, staff_id: str, changes: dict) -> dict:
    """Any of name, role and store_id (None: every store of the retailer); 400 if none or one is wrong."""
    if not changes or set(changes) - set(CHANGEABLE):
        raise Invalid("invalid_value", f"say at least one of {', '.join(CHANGEABLE)}")
    fields = {}
    if "name" in changes:
        name = changes["name"].strip() if isinstance(changes["name"], str) else ""
        if not name or len(name) > NAME_MAX:
            raise Invalid("invalid_value", f"name is 1 to {NAME_MAX} characters")
        fields["name"] = name
    if "role" in changes:
        if changes["role"] not in ROLES:
            raise Invalid("invalid_value", f"role must be one of {', '.join(ROLES)}")
        fields["role"] = changes["role"]
    retailer_id = show(ctx, staff_id)["retailer_id"]
    if "store_id" in changes:
        store_id = changes["store_id"]
        if store_id is not None and (not isinstance(store_id, str) or store_of(ctx, store_id)["retailer_id"]
                                     != retailer_id):
            raise Invalid("invalid_value", "the store belongs to another retailer")
        fields["store_id"] = store_id
    return _write(ctx, staff_id, "staff.change", fields, fields)


def set_disabled(ctx: Context, staff_id: str, disabled: bool) -> dict:
    """Disable (no login anywhere, online or at a till that has heard) or enable again; either twice is a no-op."""
    show(ctx, staff_id)  # 404 before any write
    action = "staff.disable" if disabled else "staff.enable"
    return _write(ctx, staff_id, action, {"disabled_at": ctx.clock() if disabled else None}, {})


def set_pin(ctx: Context, staff_id: str, pin: object) -> dict:
    """The operator sets a member's PIN (the role's rules hold): the old one stops working at once."""
    member = show(ctx, staff_id)
    if not isinstance(pin, str):
        raise Invalid("invalid_value", "pin is a text of digits")
    changed = _write(ctx, staff_id, "staff.set_pin", staff_pins.pin_material(pin, member["role"]), {})
    # A PIN reset because it leaked: whoever signed in to the console or a shop page with the old one is out.
    console_sessions.end_all_for_staff(ctx, staff_id)
    return changed


def _write(ctx: Context, staff_id: str, action: str, fields: dict, detail: dict) -> dict:
    """`fields` set on the member, the audit record and the tills' events, in one write."""
    actor = audit.current()

    def write(db) -> dict:
        ctx.storage.hold(db, f"staff:{staff_id}")  # two changes at once each decide on the other's result
        before = db.execute(f"SELECT {', '.join(staff_pins.STAFF_FIELDS)}, retailer_id, disabled_at FROM staff "
                            "WHERE id = ?", (staff_id,)).fetchone()
        if before is None:
            raise NotFound("not_found", "no such staff member")
        old = dict(zip((*staff_pins.STAFF_FIELDS, "retailer_id", "disabled_at"), before))
        if action == "staff.disable" and old["disabled_at"] is not None:
            fields["disabled_at"] = old["disabled_at"]  # disabled once: the first time stays
        new = {**old, **fields}
        assignments = ", ".join(f"{name} = ?" for name in fields)
        db.execute(f"UPDATE staff SET {assignments}, updated_at = ? WHERE id = ?",
                   (*fields.values(), ctx.clock(), staff_id))
        audit.write(ctx, db, actor, action, staff_id, retailer_id=old["retailer_id"],
                    detail={**detail, **({"before": {k: old[k] for k in detail}} if detail else {})} or None)
        _tell_tills(ctx, db, old, new)
        row = db.execute(f"SELECT {', '.join(ADMIN_FIELDS)} FROM staff WHERE id = ?", (staff_id,)).fetchone()
        return _shown(row)
    return ctx.storage.submit(write)


def _tell_tills(ctx: Context, db, old: dict, new: dict) -> None:
    """Removed where the member was seen and no longer is; their new row where they are seen now."""
    was_seen, seen = old["disabled_at"] is None, new["disabled_at"] is None
    if was_seen and (not seen or old["store_id"] != new["store_id"]):
        # store_id None: every till of the retailer (a row a till never had is deleted harmlessly).
        add_event(ctx, db, old["retailer_id"], "staff_removed", {"id": old["id"]}, store_id=old["store_id"])
    if seen and any(old[k] != new[k] for k in staff_pins.STAFF_FIELDS + ("disabled_at",)):
        staff_pins.staff_event(ctx, db, new["retailer_id"], new)
