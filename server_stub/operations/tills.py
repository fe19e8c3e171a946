"""A till's own resources: its enrollment, the catalog it judges offline with, and the feed of other tills' events."""

from __future__ import annotations

import json
import secrets

from pos_app.core import codes, till_log

from ..datadir import token_hash
from ..errors import Conflict, Forbidden
from ..storage.state import VOUCHER_COLUMNS, voucher_from_row
from . import audit, devices, enrollment_guard, lan_keys, till_logs
from .common import insert, new_id, store_of
from .context import Context
from .staff_auth import may_work_at
from .staff_pins import STAFF_FIELDS

FEED_LIMIT_MAX = 1000
CLAIM_GRACE_S = 3600  # the catalog also lists claims that ended less than an hour ago


def enroll(ctx: Context, code_text: str, name: str, address: str = "local", log_key: str | None = None) -> dict:
    """A till enrolled with a one-time code; `address` is the client's, for the guessing guard. `log_key`: the
    public half of the till's own log key (pos_app.core.till_log), registered with the device; a roll's code
    replaces the one it had (audited)."""
    if log_key is not None:
        till_log.parse_public_key(log_key)  # ValueError: the web layer checked its shape, this its bytes
    try:
        code = codes.parse_short_code(code_text)
    except codes.ShortCodeError:
        code = None  # counted as a wrong guess like any other
    device_token = secrets.token_urlsafe(32)
    device_id = new_id("dev")
    now = ctx.clock()
    # A locked-out address is refused from a read, so its flood never queues for the writer;
    # the writer asks again, as two requests may race past this look.
    enrollment_guard.refuse_if_locked(ctx.storage.read(), address, now)

    code_hash = None if code is None else token_hash(code)
    actor = audit.current()

    def write(db):
        # The address's failure count is read, then written; the code is checked unused, then used.
        ctx.storage.hold(db, f"enroll-address:{address}", *([] if code is None else [f"enroll-code:{code_hash}"]))
        enrollment_guard.refuse_if_locked(db, address, now)
        row = None if code is None else db.execute(
            "SELECT retailer_id, store_id, expires_at, used_at, for_device FROM enrollment_codes WHERE code_hash = ?",
            (code_hash,)).fetchone()
        # A web till's shop code is for the shop's browser (web_tills.set_up), never a till program: taken
        # here it would cut the shop off and make a browser's device sync like a till. Refused as unknown.
        web = row is not None and row[4] is not None and db.execute(
            "SELECT 1 FROM devices WHERE id = ? AND kind = 'web'", (row[4],)).fetchone() is not None
        # `used_at IS NULL` again in the update: over PostgreSQL a roll may have replaced the code meanwhile.
        if row is None or web or row[3] is not None or row[2] < now or db.execute(
                "UPDATE enrollment_codes SET used_at = ?, device_id = ? WHERE code_hash = ? AND used_at IS NULL",
                (now, row[4] or device_id, code_hash)).rowcount != 1:
            # Returned, not raised: the failure's count must commit.
            return enrollment_guard.record_failure(db, address, now)
        enrollment_guard.forget(db, address)
        if row[4] is not None:  # a roll's code: the same till (id, name, store) takes a new token
            again = devices.take_new_token(db, row[4], token_hash(device_token))
            if again is None:
                raise Conflict("device_revoked", "this till was withdrawn: enroll a new till with a new code")
            if log_key is not None:
                till_logs.register_key(ctx, db, row[4], row[1], log_key, actor, now, why="roll")
            return again
        insert(db, "devices", {"id": device_id, "retailer_id": row[0], "store_id": row[1], "name": name,
                                "token_hash": token_hash(device_token), "enrolled_at": now, "log_key": log_key})
        lan_keys.lan_changed(ctx, db, row[1], origin=device_id)  # the store's tills hear of a new peer
        return device_id, name, row[0], row[1], None
    done = ctx.storage.submit(write)
    if isinstance(done, int):
        enrollment_guard.log_failure(address, done)
        raise Forbidden("invalid_enrollment_code", "the enrollment code is unknown, used or expired")
    device_id, name, retailer_id, store_id, old_token = done
    if old_token is not None:
        devices.forget_token(ctx, old_token)
    return {"device_id": device_id, "name": name, "device_token": device_token, "retailer_id": retailer_id,
            "store_id": store_id, "keys": ctx.public_keys, "issuer": ctx.config["issuer"], "server_time": now,
            "lan": lan_keys.lan_of(ctx, store_id)}


def catalog(ctx: Context, device: dict) -> dict:
    retailer_id = device["retailer_id"]
    lan = lan_keys.for_device(ctx, device)  # its store's LAN keys and roster: a till's only, made on demand
    with ctx.storage.read_snapshot() as db:  # one snapshot for the whole catalog (store_of reads in it too)
        retailer = db.execute("SELECT id, name, offline_days FROM retailers WHERE id = ?", (retailer_id,)).fetchone()
        store = store_of(ctx, device["store_id"])
        vouchers = [voucher_from_row(r).to_json() for r in db.execute(
            f"SELECT {VOUCHER_COLUMNS} FROM vouchers v JOIN retailers r ON r.id = v.retailer_id "
            "WHERE v.retailer_id = ?", (retailer_id,))]
        printed = [{"code": c, "voucher_id": v} for c, v in db.execute(
            "SELECT code, voucher_id FROM printed_codes WHERE retailer_id = ?", (retailer_id,))]
        claims = [dict(zip(("code_digest", "jti", "voucher_id", "expires_at"), r)) for r in db.execute(
            "SELECT code_digest, jti, voucher_id, expires_at FROM claims WHERE retailer_id = ? "
            "AND expires_at > ? AND revoked_at IS NULL AND code_digest IS NOT NULL",
            (retailer_id, ctx.clock() - CLAIM_GRACE_S))]
        # Only staff who may log in here (staff_auth.may_work_at): hashes of no one else leave the backend.
        staff = [dict(zip(STAFF_FIELDS, r)) for r in db.execute(
            f"SELECT {', '.join('s.' + f for f in STAFF_FIELDS)} FROM staff s JOIN retailers r ON r.id = s.retailer_id "
            "WHERE s.retailer_id = ? AND (s.store_id = ? OR (s.store_id IS NULL AND r.staff_anywhere <> 0)) "
            "AND s.disabled_at IS NULL",
            (retailer_id, device["store_id"]))]
        revoked = [r[0] for r in db.execute(
            "SELECT jti FROM claims WHERE retailer_id = ? AND revoked_at IS NOT NULL", (retailer_id,))]
        epoch_now = epoch(db)
    return {
        "retailer": {"id": retailer[0], "name": retailer[1]},
        "store": {k: store[k] for k in ("id", "name", "timezone")},
        "issuer": ctx.config["issuer"],  # the `iss` tills check tokens for
        "keys": ctx.public_keys, "vouchers": vouchers, "printed_codes": printed,
        "claims": claims, "staff": staff, "revoked": revoked, "server_time": ctx.clock(),
        # How long the till may decide personal codes offline without hearing from us (the retailer's setting).
        "policy": {"offline_days": retailer[2]},
        **epoch_now,  # the backend's epoch: new after a restore, which tills notice
        **({} if lan is None else {"lan": lan}),
    }


def epoch(db) -> dict:
    """The backend's epoch, new after each restore, and since when it holds: a till that sees a new one reads
    the feed again from the start and sends again what it had confirmed since (commands/backup.py)."""
    meta = dict(db.execute("SELECT key, value FROM backend_meta WHERE key IN ('epoch', 'epoch_since')").fetchall())
    return {"epoch": meta.get("epoch", ""), "epoch_since": float(meta.get("epoch_since") or 0)}


def feed(ctx: Context, device: dict, after: int, limit: int) -> dict:
    """The retailer's events after `after` that are for this till: not its own, not another store's (a staff
    member of another store), no retailer-wide staff member unless the retailer lets them work anywhere;
    `cursor` moves past those too."""
    db = ctx.storage.read()
    rows = db.execute(
        "SELECT seq, type, origin_device, data, at, store_id FROM events WHERE retailer_id = ? AND seq > ? "
        "ORDER BY seq LIMIT ?", (device["retailer_id"], after, limit)).fetchall()
    anywhere = None  # read once, only if a retailer-wide staff event is in the page

    def for_this_till(type_: str, origin: str | None, store_id: str | None) -> bool:
        nonlocal anywhere
        if origin == device["id"] or (store_id is not None and store_id != device["store_id"]):
            return False
        if type_ == "staff" and store_id is None:
            if anywhere is None:
                anywhere = may_work_at(db, None, device)
            return anywhere
        return True
    events = [{"seq": seq, "type": type_, "data": json.loads(data), "at": at}
              for seq, type_, origin, data, at, store_id in rows if for_this_till(type_, origin, store_id)]
    cursor = rows[-1][0] if rows else after
    # `head`, the log's last seq: below a till's cursor the log was rewound (a restore), which an empty page
    # alone would hide.
    head = db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
    return {"events": events, "cursor": cursor, "more": len(rows) == limit, "server_time": ctx.clock(),
            "head": head, **epoch(db)}
