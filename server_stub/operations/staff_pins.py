"""A staff member's PIN material and who hears of it: set when the member is made, changed by the member.

A PIN is kept three ways (pos_app.core.pins): its check hash, which tills
get to log staff in offline; the salt of its proof key, which tills get to
prove a void; and the proof key itself, which stays here and checks those
proofs. Tills hear of a change through a `staff` feed event scoped to the
member's store, so no till learns the hash of someone who cannot log in there.
"""

from __future__ import annotations

from pos_app.core import pins

from ..errors import Forbidden, Invalid
from . import audit, console_sessions
from .common import add_event
from .context import Context

# What a till gets of a staff member (catalog rows, feed events): never the proof key.
STAFF_FIELDS = ("id", "name", "role", "pin_hash", "store_id", "proof_salt")


def pin_material(pin: str, role: str) -> dict:
    """The stored forms of a new PIN; 400 invalid_value unless it has the digits the role needs."""
    if not pins.valid_pin_for_role(pin, role):
        fewest = pins.min_digits(role)
        raise Invalid("invalid_value", f"a {role}'s PIN is {fewest} to {pins.MAX_DIGITS} digits")
    salt = pins.new_proof_salt()
    return {"pin_hash": pins.hash_pin(pin), "proof_salt": salt,
            "proof_key": pins.encode_key(pins.proof_key(pin, salt))}


def staff_event(ctx: Context, db, retailer_id: str, member: dict) -> None:
    """Tell the tills that may see this member of their new hash and proof salt (inside the write)."""
    add_event(ctx, db, retailer_id, "staff", {k: member[k] for k in STAFF_FIELDS}, store_id=member["store_id"])


def change_pin(ctx: Context, caller, new_pin: object) -> dict:
    """A staff member's own new PIN (`caller` proved the old one): new hash, salt and proof key; the old PIN
    stops working at once (the remembered-PIN cache is keyed by the hash). Answers the member's catalog row."""
    if not isinstance(new_pin, str):
        raise Invalid("invalid_value", "pin is a text of digits")
    material = pin_material(new_pin, caller.role)
    actor = audit.current()

    def write(db) -> dict:
        ctx.storage.hold(db, f"staff:{caller.staff_id}")  # as the operator's changes hold it (staff_admin)
        disabled = db.execute("SELECT disabled_at FROM staff WHERE id = ? AND retailer_id = ?",
                              (caller.staff_id, caller.retailer_id)).fetchone()
        if disabled is None or disabled[0] is not None:  # disabled since their PIN was checked
            raise Forbidden("staff_disabled", "this staff member was disabled")
        db.execute("UPDATE staff SET pin_hash = ?, proof_salt = ?, proof_key = ? WHERE id = ? AND retailer_id = ?",
                   (material["pin_hash"], material["proof_salt"], material["proof_key"], caller.staff_id,
                    caller.retailer_id))
        audit.write(ctx, db, actor, "staff.change_pin", caller.staff_id, retailer_id=caller.retailer_id)
        row = db.execute(f"SELECT {', '.join(STAFF_FIELDS)} FROM staff WHERE id = ? AND retailer_id = ?",
                         (caller.staff_id, caller.retailer_id)).fetchone()
        member = dict(zip(STAFF_FIELDS, row))
        staff_event(ctx, db, caller.retailer_id, member)
        return member
    member = ctx.storage.submit(write)
    console_sessions.end_all_for_staff(ctx, caller.staff_id)  # a new PIN: the console's sessions of the old one end
    return member


def staff_me(ctx: Context, caller) -> dict:
    """Who the caller is, and whether their PIN is shorter than their role now needs (`pin_change_required`:
    they were let in, and should choose a new one with `POST /staff/me/pin`)."""
    name, store_id = ctx.one("SELECT name, store_id FROM staff WHERE id = ? AND retailer_id = ?",
                             (caller.staff_id, caller.retailer_id))
    return {"id": caller.staff_id, "name": name, "role": caller.role, "retailer_id": caller.retailer_id,
            "store_id": store_id, "pin_change_required": caller.pin_change_required,
            "min_pin_digits": pins.min_digits(caller.role)}
