"""Voids of accepted redemptions: a till's, from its outbox (sync), or a manager's, made at the backend.

Who may void what is `pos_app.core.voids` (the till applies the same rules);
here are its answers in the database, and the feed event that tells other tills.
A till's void proves its manager (`pos_app.core.pins.void_proof`) or is kept
as unverified; a void made here is by a caller checked in person.
"""

from __future__ import annotations

import uuid

from pos_app.core import pins, voids as void_rules

from ..errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unprocessable
from . import audit, holds
from .common import add_event
from .context import Context
from .staff_auth import may_work_at

_ERROR_KIND = {"not_found": NotFound, "not_accepted": Unprocessable, "already_voided": Conflict,
               "invalid_value": Invalid, "forbidden": Forbidden}


def domain_error(exc: void_rules.VoidError) -> DomainError:
    """A refusal of the void rules as the backend's domain error of the same code."""
    return _ERROR_KIND[exc.code](exc.code, exc.message)


def record_void(ctx: Context, db, device: dict, entry: dict, now: float, *, at: float) -> dict:
    """A till's void of one of its own redemptions, from its outbox. A void the rules refuse is
    `rejected` with the rule's code as its reason, so the till parks it; the redemption's own
    entry comes first in the outbox, so a void of an offline redemption finds it recorded.

    The entry names a manager; its `staff_proof` shows that manager typed their PIN at this till
    (`pins.void_proof`, keyed by the PIN's proof key, which tills never hold). Without a proof that
    checks, the void is still recorded (the redemption's own till made it) but `verified: false`.
    `at`: the time to record, the till's corrected and bounded as a redemption's is (sync_entries.Window);
    the proof is checked over the time the till sent."""
    key = entry["key"]
    row = db.execute("SELECT device_id, verified FROM voids WHERE key = ?", (key,)).fetchone()
    if row is not None:
        if row[0] != device["id"]:
            return {"key": key, "status": "rejected", "reason": "key belongs to another till"}
        # As first answered, so a till that lost that answer still learns whether the void proved its manager.
        return {"key": key, "status": "duplicate", **({} if row[1] is None else {"verified": bool(row[1])})}
    staff = db.execute("SELECT role, store_id, proof_key FROM staff WHERE id = ? AND retailer_id = ?",
                       (entry.get("staff_id"), device["retailer_id"])).fetchone()
    try:
        void_rules.check_staff(staff[0] if staff and may_work_at(db, staff[1], device) else None)
        reason = void_rules.check_reason(entry.get("void_reason"))
        target = void_target(db, entry["redemption_key"], device_id=device["id"])
    except void_rules.VoidError as exc:
        return {"key": key, "status": "rejected", "reason": exc.code}
    verified = pins.check_void_proof(pins.decode_key(staff[2]) if staff[2] else None, entry.get("staff_proof"),
                                     void_key=key, redemption_key=entry["redemption_key"],
                                     staff_id=entry["staff_id"], at=float(entry["at"]), reason=reason)
    insert_void(ctx, db, target, key=key, device_id=device["id"], staff_id=entry.get("staff_id"),
                reason=reason, at=at, now=now, verified=verified)
    # Made at the till, offline perhaps: the manager it names, as proven or not (built here, inside the
    # write, from the entry: this thread's request may be another till's).
    manager = audit.Actor("staff", str(entry["staff_id"]), f"till {device['id']}", f"at {device['name']}",
                          device["retailer_id"])
    audit.write(ctx, db, manager, "redemption.void", entry["redemption_key"], retailer_id=device["retailer_id"],
                detail={"reason": reason, "store_id": target["store_id"], "verified": verified, "at": at})
    return {"key": key, "status": "recorded", "verified": verified}


def void_target(db, redemption_key: str, *, device_id: str | None = None, retailer_id: str | None = None) -> dict:
    """The attempt a void is for, if the rules let it be voided; VoidError otherwise.
    A till may void only its own redemptions; the backend's callers those of a retailer."""
    row = db.execute(
        "SELECT a.id, a.key, a.retailer_id, a.store_id, a.device_id, a.status, v.id IS NOT NULL FROM attempts a "
        "LEFT JOIN voids v ON v.attempt_id = a.id WHERE a.key = ?", (redemption_key,)).fetchone()
    if row is not None and ((device_id is not None and row[4] != device_id)
                            or (retailer_id is not None and row[2] != retailer_id)):
        row = None  # another till's or retailer's redemption is as unknown as a missing one
    void_rules.check_target(None if row is None else row[5], voided=bool(row and row[6]))
    return dict(zip(("id", "key", "retailer_id", "store_id", "device_id"), row))


def insert_void(ctx: Context, db, target: dict, *, key: str, device_id: str | None, staff_id: str | None,
                reason: str, at: float, now: float, verified: bool | None) -> dict:
    """`verified`: a till's void whose proof checked (True) or did not (False); None for one made here,
    by a caller checked in person (their PIN, or the admin token)."""
    db.execute(
        "INSERT INTO voids (key, attempt_id, retailer_id, store_id, device_id, staff_id, reason, at, received_at, "
        "verified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (key, target["id"], target["retailer_id"], target["store_id"], device_id, staff_id, reason, at, now,
         None if verified is None else int(verified)))
    till = None if device_id is None else db.execute(
        "SELECT name FROM devices WHERE id = ?", (device_id,)).fetchone()[0]
    data = {"id": key, "redemption_key": target["key"], "reason": reason, "staff_id": staff_id, "at": at,
            "store_id": target["store_id"], "till": till, "verified": verified}
    # Other tills hear of it (the redemption's till, when the void was made here, keeps it for its report).
    add_event(ctx, db, target["retailer_id"], "void", data, origin=device_id)
    return data


def void(ctx: Context, caller, redemption_key: str, reason: object) -> dict:
    """A manager's (or the admin's) void of an accepted redemption, made at the backend.

    `caller` is a `staff_auth.Caller` with role manager or admin: staff of
    one store void only that store's redemptions, retailer-wide staff any
    of their retailer's; the admin token any. The code stays used.
    """
    try:
        text = void_rules.check_reason(reason)
    except void_rules.VoidError as exc:
        raise domain_error(exc) from None
    now = ctx.clock()
    key = uuid.uuid4().hex
    actor = audit.current()

    def write(db):
        # A redemption voided twice at once: the second waits, then finds it voided (sync's voids hold it too).
        ctx.storage.hold(db, *holds.void_names(key, redemption_key))
        try:
            target = void_target(db, redemption_key, retailer_id=caller.retailer_id)
            if caller.kind == "staff" and target["store_id"] != caller.store_id and not caller.retailer_wide:
                raise void_rules.VoidError(void_rules.VoidError.FORBIDDEN,
                                           "staff of one store void only that store's redemptions")
        except void_rules.VoidError as exc:
            raise domain_error(exc) from None
        done = insert_void(ctx, db, target, key=key, device_id=None, staff_id=caller.staff_id,
                           reason=text, at=now, now=now, verified=None)
        audit.write(ctx, db, actor, "redemption.void", redemption_key, retailer_id=target["retailer_id"],
                    detail={"reason": text, "store_id": target["store_id"]})
        return done
    return ctx.storage.submit(write)
