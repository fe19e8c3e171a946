"""The platform admin's resources: retailers, stores, staff and enrollment codes."""

from __future__ import annotations

from pos_app.core import codes, verdict

from ..datadir import token_hash
from ..errors import Invalid
from . import audit, staff_pins
from .common import STORE_FIELDS, insert, new_id, require_retailer, store_of
from .context import Context

ROLES = ("cashier", "manager", "admin")
# A code not used within a day is void: the fewer live codes, the less a guess can hit.
ENROLLMENT_TTL_S = 24 * 3600
# How long a till may decide personal codes offline without hearing from the backend (retailers.offline_days).
OFFLINE_DAYS_MIN, OFFLINE_DAYS_MAX = 1, 90


def create_retailer(ctx: Context, name: str) -> dict:
    row = {"id": new_id("ret"), "name": name, "created_at": ctx.clock()}
    actor = audit.current()

    def write(db):
        insert(db, "retailers", row)
        audit.write(ctx, db, actor, "retailer.create", row["id"], retailer_id=row["id"], detail={"name": name})
    ctx.storage.submit(write)
    return {"id": row["id"], "name": name}


def list_retailers(ctx: Context) -> list[dict]:
    return [{"id": i, "name": n}
            for i, n in ctx.storage.read().execute("SELECT id, name FROM retailers ORDER BY created_at")]


def create_store(ctx: Context, retailer_id: str, name: str, timezone: str = "America/Asuncion") -> dict:
    require_retailer(ctx, retailer_id)
    if not verdict.is_timezone(timezone):
        raise Invalid("invalid_value", "timezone is not a known IANA time zone")
    row = {"id": new_id("sto"), "retailer_id": retailer_id, "name": name, "timezone": timezone,
           "created_at": ctx.clock()}
    actor = audit.current()

    def write(db):
        insert(db, "stores", row)
        audit.write(ctx, db, actor, "store.create", row["id"], retailer_id=retailer_id,
                    detail={"name": name, "timezone": timezone})
    ctx.storage.submit(write)
    return {k: row[k] for k in STORE_FIELDS}


def list_stores(ctx: Context, retailer_id: str | None) -> list[dict]:
    sql, params = "SELECT id, retailer_id, name, timezone FROM stores", ()
    if retailer_id:
        sql, params = sql + " WHERE retailer_id = ?", (retailer_id,)
    return [dict(zip(STORE_FIELDS, r)) for r in ctx.storage.read().execute(sql, params)]


def create_staff(ctx: Context, retailer_id: str, name: str, role: str, pin: str,
                 store_id: str | None = None) -> dict:
    require_retailer(ctx, retailer_id)
    if store_id is not None and store_of(ctx, store_id)["retailer_id"] != retailer_id:
        raise Invalid("invalid_value", "the store belongs to another retailer")
    if role not in ROLES:
        raise Invalid("invalid_value", f"role must be one of {', '.join(ROLES)}")
    row = {"id": new_id("stf"), "retailer_id": retailer_id, "store_id": store_id, "name": name,
           "role": role, **staff_pins.pin_material(pin, role), "created_at": ctx.clock()}
    actor = audit.current()

    def write(db):
        insert(db, "staff", row)
        audit.write(ctx, db, actor, "staff.create", row["id"], retailer_id=retailer_id,
                    detail={"name": name, "role": role, "store_id": store_id})
        # Tills that may see this member hear of them, with the PIN's hash, so they check PINs offline.
        staff_pins.staff_event(ctx, db, retailer_id, row)
    ctx.storage.submit(write)
    return {"id": row["id"], "retailer_id": retailer_id, "store_id": store_id, "name": name, "role": role}


def retailer_settings(ctx: Context, retailer_id: str, staff_anywhere: bool | None = None,
                      offline_days: int | None = None) -> dict:
    """Whether the retailer's staff of no single store (head office) may log in at every one of its tills
    (off, no till receives their PIN hashes, from its next catalog, and the backend refuses them at tills);
    how many days a till may decide personal codes offline without hearing from us (tills learn it from
    their next catalog). Either or both; the answer is every setting as it now stands."""
    require_retailer(ctx, retailer_id)
    changes: dict = {}
    if staff_anywhere is not None:
        changes["staff_anywhere"] = int(bool(staff_anywhere))
    if offline_days is not None:
        if isinstance(offline_days, bool) or not isinstance(offline_days, int) \
                or not OFFLINE_DAYS_MIN <= offline_days <= OFFLINE_DAYS_MAX:
            raise Invalid("invalid_value", f"offline_days is {OFFLINE_DAYS_MIN} to {OFFLINE_DAYS_MAX}")
        changes["offline_days"] = offline_days
    if not changes:
        raise Invalid("missing_field", "say staff_anywhere, offline_days or both")
    actor = audit.current()

    def write(db):
        db.execute(f"UPDATE retailers SET {', '.join(f'{name} = ?' for name in changes)} WHERE id = ?",
                   (*changes.values(), retailer_id))
        audit.write(ctx, db, actor, "retailer.settings", retailer_id, retailer_id=retailer_id,
                    detail={name: bool(v) if name == "staff_anywhere" else v for name, v in changes.items()})
        return db.execute("SELECT staff_anywhere, offline_days FROM retailers WHERE id = ?",
                          (retailer_id,)).fetchone()
    anywhere, days = ctx.storage.submit(write)
    return {"id": retailer_id, "staff_anywhere": bool(anywhere), "offline_days": days}


def create_enrollment_code(ctx: Context, store_id: str, ttl_s: int = ENROLLMENT_TTL_S) -> dict:
    store = store_of(ctx, store_id)
    code = codes.new_short_code()
    now = ctx.clock()
    row = {"code_hash": token_hash(code), "retailer_id": store["retailer_id"], "store_id": store_id,
           "created_at": now, "expires_at": now + ttl_s, "used_at": None, "device_id": None}
    actor = audit.current()

    def write(db):
        insert(db, "enrollment_codes", row)
        audit.write(ctx, db, actor, "enrollment_code.create", store_id, retailer_id=store["retailer_id"],
                    detail={"expires_at": row["expires_at"]})
    ctx.storage.submit(write)
    return {"code": codes.format_short_code(code), "store_id": store_id,
            "retailer_id": store["retailer_id"], "expires_at": row["expires_at"]}
