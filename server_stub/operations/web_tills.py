"""Web tills: the shop page's device, a till of its own kind ('web') that lives in a browser's cookie.

A manager makes one for a store from the console. It is a device row like an
enrolled till's (its token kept only as a hash, revoked and rate-limited as a
till is), so the shop page redeems through the same `require_device` and
`redeem` as a till. The token reaches the shop's browser one of two ways:
at once, in the manager's own browser ("use this browser"), or through a
shop code, a one-time enrollment code bound to the web till (`for_device`,
as a roll's) that the shop types on its own device. Taking the code gives
the web till a new token, so the browser that held the last one stops
working: one browser per web till. The code is guessed at under the same
per-address guard as till enrollment.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from zoneinfo import ZoneInfo

from pos_app.core import codes

from ..datadir import token_hash
from ..errors import Conflict, Forbidden, Invalid, NotFound
from . import audit, devices, enrollment_guard
from .common import insert, new_id, store_of
from .context import Context

KIND = "web"
NAME_MAX = 200
SHOP_CODE_TTL_S = 24 * 3600  # a day to open it on the shop's phone
TODAY_MAX = 50  # the shop page lists the day's latest attempts, not all of a busy day


def _checked_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > NAME_MAX:
        raise Invalid("invalid_value", f"a web till's name is 1 to {NAME_MAX} characters")
    return name.strip()


def create(ctx: Context, store_id: str, name: object) -> dict:
    """A new web till of the store; its token is in this answer only."""
    name = _checked_name(name)
    store = store_of(ctx, store_id)
    token = secrets.token_urlsafe(32)
    device_id = new_id("web")
    now = ctx.clock()
    actor = audit.current()

    def write(db) -> None:
        insert(db, "devices", {"id": device_id, "retailer_id": store["retailer_id"], "store_id": store["id"],
                                "name": name, "token_hash": token_hash(token), "enrolled_at": now, "kind": KIND})
        audit.write(ctx, db, actor, "web_till.create", device_id, retailer_id=store["retailer_id"],
                    detail={"name": name, "store_id": store["id"]})
    ctx.storage.submit(write)
    return {"device_id": device_id, "name": name, "token": token, "retailer_id": store["retailer_id"],
            "store_id": store["id"]}


def _web_row(db, device_id: str) -> tuple:
    """(retailer_id, store_id, name, token_hash) of a web till not withdrawn, in the write's view."""
    row = db.execute("SELECT retailer_id, store_id, name, token_hash, revoked_at FROM devices "
                     "WHERE id = ? AND kind = ?", (device_id, KIND)).fetchone()
    if row is None:
        raise NotFound("not_found", "no such web till")
    if row[4] is not None:
        raise Conflict("device_revoked", "this web till was withdrawn: make a new one")
    return tuple(row[:4])


def new_token(ctx: Context, device_id: str) -> dict:
    """"Use this browser": the web till's new token (the browser that held the last one stops working)."""
    token = secrets.token_urlsafe(32)
    actor = audit.current()

    def write(db) -> str:
        retailer_id, _store, name, old = _web_row(db, device_id)
        db.execute("UPDATE devices SET token_hash = ?, rolled_at = NULL WHERE id = ?", (token_hash(token), device_id))
        audit.write(ctx, db, actor, "web_till.token", device_id, retailer_id=retailer_id, detail={"name": name})
        return old
    devices.forget_token(ctx, ctx.storage.submit(write))
    return {"device_id": device_id, "token": token}


def shop_code(ctx: Context, device_id: str, ttl_s: int = SHOP_CODE_TTL_S) -> dict:
    """A one-time code that sets the web till up in another browser; an earlier unused one stops working."""
    code = codes.new_short_code()
    now = ctx.clock()
    actor = audit.current()

    def write(db) -> None:
        retailer_id, store_id, name, _token = _web_row(db, device_id)
        db.execute("DELETE FROM enrollment_codes WHERE for_device = ? AND used_at IS NULL", (device_id,))
        db.execute("INSERT INTO enrollment_codes (code_hash, retailer_id, store_id, created_at, expires_at, used_at, "
                   "device_id, for_device) VALUES (?, ?, ?, ?, ?, NULL, NULL, ?)",
                   (token_hash(code), retailer_id, store_id, now, now + ttl_s, device_id))
        audit.write(ctx, db, actor, "web_till.shop_code", device_id, retailer_id=retailer_id,
                    detail={"name": name, "expires_at": now + ttl_s})
    ctx.storage.submit(write)
    return {"device_id": device_id, "code": codes.format_short_code(code), "expires_at": now + ttl_s}


def set_up(ctx: Context, code_text: str, address: str) -> dict:
    """The shop's browser takes a shop code: the web till's new token. A code unknown, used, expired or for
    a till of the other kind counts as a wrong guess from `address` (429 too_many_attempts past the limit)."""
    try:
        code = codes.parse_short_code(code_text)
    except codes.ShortCodeError:
        code = None
    token = secrets.token_urlsafe(32)
    now = ctx.clock()
    enrollment_guard.refuse_if_locked(ctx.storage.read(), address, now)
    code_hash = None if code is None else token_hash(code)
    actor = audit.current()

    def write(db):
        ctx.storage.hold(db, f"enroll-address:{address}", *([] if code is None else [f"enroll-code:{code_hash}"]))
        enrollment_guard.refuse_if_locked(db, address, now)
        row = None if code is None else db.execute(
            "SELECT e.expires_at, e.used_at, e.for_device, d.kind FROM enrollment_codes e "
            "LEFT JOIN devices d ON d.id = e.for_device WHERE e.code_hash = ?", (code_hash,)).fetchone()
        # A till's code is refused here without being used: it enrolls a till program, not a browser.
        if row is None or row[1] is not None or row[0] < now or row[3] != KIND or db.execute(
                "UPDATE enrollment_codes SET used_at = ?, device_id = ? WHERE code_hash = ? AND used_at IS NULL",
                (now, row[2], code_hash)).rowcount != 1:
            return enrollment_guard.record_failure(db, address, now)  # returned: the count must commit
        enrollment_guard.forget(db, address)
        taken = devices.take_new_token(db, row[2], token_hash(token))
        if taken is None:
            raise Conflict("device_revoked", "this web till was withdrawn: ask for a new one")
        audit.write(ctx, db, actor, "web_till.set_up", row[2], retailer_id=taken[2], detail={"name": taken[1]})
        return taken
    done = ctx.storage.submit(write)
    if isinstance(done, int):
        enrollment_guard.log_failure(address, done)
        raise Forbidden("invalid_enrollment_code", "the shop code is unknown, used or expired")
    device_id, name, retailer_id, store_id, old_token = done
    devices.forget_token(ctx, old_token)
    return {"device_id": device_id, "name": name, "token": token, "retailer_id": retailer_id, "store_id": store_id}


def is_web(ctx: Context, device_id: str) -> bool:
    return ctx.one("SELECT 1 FROM devices WHERE id = ? AND kind = ?", (device_id, KIND)) is not None


def list_web_tills(ctx: Context, retailer_id: str | None, store_id: str | None) -> list[dict]:
    """The web tills of a retailer (or one store; both None: every one), with their store and any live code."""
    where, params = ["d.kind = ?"], [KIND]
    for column, value in (("d.retailer_id", retailer_id), ("d.store_id", store_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    now = ctx.clock()
    rows = ctx.storage.read().execute(
        "SELECT d.id, d.name, d.retailer_id, d.store_id, s.name, d.enrolled_at, d.last_seen_at, d.revoked_at, "
        "d.rolled_at, (SELECT max(e.expires_at) FROM enrollment_codes e WHERE e.for_device = d.id "
        "AND e.used_at IS NULL AND e.expires_at > ?) FROM devices d JOIN stores s ON s.id = d.store_id "
        f"WHERE {' AND '.join(where)} ORDER BY s.name, d.name, d.id", (now, *params)).fetchall()
    fields = ("id", "name", "retailer_id", "store_id", "store_name", "enrolled_at", "last_seen_at", "revoked_at",
              "rolled_at", "code_expires_at")
    return [dict(zip(fields, row)) for row in rows]


def today(ctx: Context, device: dict, now: float | None = None) -> dict:
    """This web till's attempts since the store's midnight, newest first (at most TODAY_MAX), and the counts."""
    now = ctx.clock() if now is None else now
    zone = ZoneInfo(device.get("timezone") or "UTC")
    start = dt.datetime.fromtimestamp(now, zone).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    db = ctx.storage.read()
    rows = db.execute(
        "SELECT a.at, a.status, a.reason, a.kind, a.method, a.code, a.staff_id, v.texts, v.discount_kind, "
        "v.discount_value, v.currency FROM attempts a LEFT JOIN vouchers v ON v.id = a.voucher_id "
        "WHERE a.device_id = ? AND a.at >= ? ORDER BY a.at DESC, a.id DESC LIMIT ?",
        (device["id"], start, TODAY_MAX)).fetchall()
    counts = dict(db.execute("SELECT status, count(*) FROM attempts WHERE device_id = ? AND at >= ? GROUP BY status",
                             (device["id"], start)).fetchall())
    fields = ("at", "status", "reason", "kind", "method", "code", "staff_id")
    out = []
    for row in rows:
        item = dict(zip(fields, row[:7]))
        item["texts"] = json.loads(row[7]) if row[7] else {}
        item["discount"] = None if row[8] is None else {"kind": row[8], "value": row[9], "currency": row[10]}
        out.append(item)
    return {"attempts": out, "accepted": counts.get("accepted", 0), "refused": counts.get("refused", 0),
            "since": start}
