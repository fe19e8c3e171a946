"""Tills as the operator sees them: listed with what they last told us, renamed, withdrawn, given a new token.

A till that was stolen is revoked: final, its token answers `device_revoked`
from then on (within the device cache's second in every process), and it
cannot be rolled or enrolled again — a new till is enrolled instead. A till
whose token may have leaked is rolled: the token answers `device_rolled` at
once, and the answer carries a code that enrolls the same till again (same
id, name, store and records) with a new token; rolling again before that
code is used replaces it. After the re-enrollment the old token is simply
unknown (`unauthorized`).

What a till last told us (when, its version, its outbox) is kept on its row:
a sync writes it in the sync's own write; any other call that answers without
an error writes `last_seen_at` only when the one this process holds is over a
minute old, so the hot path does not write per request.
"""

from __future__ import annotations

import contextvars
import logging
import re
from typing import Any

from pos_app.core import codes
from pos_app.core.wire import is_time

from ..datadir import token_hash
from ..errors import Conflict, Invalid, NotFound, Unauthorized
from . import audit, holds, lan_keys
from .context import Context

log = logging.getLogger(__name__)

STATUSES = ("active", "rolled", "revoked", "silent")
ROLL_TTL_S = 7 * 24 * 3600  # a roll's code: a week to reach the till, by default
TTL_MIN_S, TTL_MAX_S = 60, 90 * 24 * 3600  # as enrollment codes
TOUCH_S = 60.0  # a till's last_seen_at is written at most this often by calls other than sync
NAME_MAX = 200
REASON_MAX = 200
APP_VERSION_MAX = 32
OUTBOX_MAX = 10**9
DAY_S = 86400
REVOKED_MESSAGE = "this till was withdrawn by the operator"
ROLLED_MESSAGE = "this till's token was replaced: enroll it again with the code the operator was given"
_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_VERSION = re.compile(r"[\x21-\x7e]{1,32}")  # printable ASCII, no spaces: what a version string is
_COLUMNS = ("d.id, d.name, d.retailer_id, d.store_id, d.enrolled_at, d.last_seen_at, d.app_version, d.outbox_size, "
            "d.outbox_oldest_at, d.revoked_at, d.rolled_at, r.offline_days")
_FIELDS = ("id", "name", "retailer_id", "store_id", "enrolled_at", "last_seen_at", "app_version", "outbox_size",
           "outbox_oldest_at", "revoked_at", "rolled_at")
_FROM = "FROM devices d JOIN retailers r ON r.id = d.retailer_id"


def status(row: dict, offline_days: int, now: float) -> str:
    """revoked, else rolled (its token replaced, the new one not yet taken), else silent (not heard from for
    more than the retailer's offline_days: it no longer accepts personal codes offline), else active."""
    if row["revoked_at"] is not None:
        return "revoked"
    if row["rolled_at"] is not None:
        return "rolled"
    heard = row["last_seen_at"] if row["last_seen_at"] is not None else row["enrolled_at"]
    if heard is None or now - heard > offline_days * DAY_S:
        return "silent"
    return "active"


def _view(row: tuple, now: float) -> dict:
    device = dict(zip(_FIELDS, row[:len(_FIELDS)]))
    device["status"] = status(device, row[len(_FIELDS)], now)
    return device


def _checked_id(device_id: Any) -> str:
    if not isinstance(device_id, str) or not _ID.fullmatch(device_id):
        raise Invalid("invalid_value", "a device id is 1 to 64 letters, digits, '_', '.' or '-'")
    return device_id


def list_devices(ctx: Context, retailer_id: str | None = None, store_id: str | None = None) -> list[dict]:
    """Every till, of one retailer or store when asked, oldest enrolled first."""
    where, params = [], []
    for column, value in (("d.retailer_id", retailer_id), ("d.store_id", store_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(_checked_id(value))
    sql = f"SELECT {_COLUMNS} {_FROM}" + (f" WHERE {' AND '.join(where)}" if where else "")
    now = ctx.clock()
    return [_view(row, now) for row in
            ctx.storage.read().execute(sql + " ORDER BY d.enrolled_at, d.id", params).fetchall()]


def get_device(ctx: Context, device_id: str, db=None) -> dict:
    row = (db or ctx.storage.read()).execute(f"SELECT {_COLUMNS} {_FROM} WHERE d.id = ?",
                                             (_checked_id(device_id),)).fetchone()
    if row is None:
        raise NotFound("not_found", f"no device {device_id}")
    return _view(row, ctx.clock())


def _forget(ctx: Context, digest: str | None) -> None:
    """This process's cached row of that token dropped, so its next call reads the change (others: within 1 s)."""
    if digest is not None:
        ctx.devices.put(digest, None)  # a cached None is a miss


def refuse_withdrawn(revoked_at: float | None, rolled_at: float | None) -> None:
    """401 device_revoked or device_rolled for a till whose row says so: the request's check and a write's."""
    if revoked_at is not None:
        raise Unauthorized("device_revoked", REVOKED_MESSAGE)
    if rolled_at is not None:
        raise Unauthorized("device_rolled", ROLLED_MESSAGE)


def refuse_if_withdrawn(db, device_id: str) -> None:
    """Inside a write: the till's row as it is now (the request's check may have passed on a row cached up
    to a second before the operator's revoke committed); a row gone is a till withdrawn."""
    row = db.execute("SELECT revoked_at, rolled_at FROM devices WHERE id = ?", (device_id,)).fetchone()
    refuse_withdrawn(*(row or (0.0, None)))


def rename(ctx: Context, device_id: str, name: Any) -> dict:
    _checked_id(device_id)
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > NAME_MAX:
        raise Invalid("invalid_value", f"a till's name is 1 to {NAME_MAX} characters")
    name = name.strip()
    actor = audit.current()

    def write(db):
        row = db.execute("SELECT name, retailer_id, token_hash, store_id, kind FROM devices WHERE id = ?",
                         (device_id,)).fetchone()
        if row is None:
            raise NotFound("not_found", f"no device {device_id}")
        if row[0] != name:
            db.execute("UPDATE devices SET name = ? WHERE id = ?", (name, device_id))
            audit.write(ctx, db, actor, "device.rename", device_id, retailer_id=row[1],
                        detail={"name": name, "was": row[0]})
            if row[4] == "till":  # its peers name it to a cashier ("redeemed at …"): they fetch the roster now
                lan_keys.lan_changed(ctx, db, row[3])
        return row[2]
    _forget(ctx, ctx.storage.submit(write))
    return get_device(ctx, device_id)


def revoke(ctx: Context, device_id: str, reason: Any = None) -> dict:
    """Withdraw a till for good; again on a revoked one answers the same (its first revoked_at kept)."""
    _checked_id(device_id)
    if reason is not None and (not isinstance(reason, str) or len(reason.strip()) > REASON_MAX):
        raise Invalid("invalid_value", f"a reason is at most {REASON_MAX} characters")
    reason = reason.strip() if reason else None
    now = ctx.clock()
    actor = audit.current()
    # Its store's LAN key is rotated in the same write, under the store's name too (a till never moves store).
    store = ctx.one("SELECT store_id FROM devices WHERE id = ?", (device_id,))

    def write(db):
        ctx.storage.hold(db, holds.device_life_name(device_id), *([] if store is None else
                                                                  [lan_keys.hold_name(store[0])]))
        row = db.execute("SELECT revoked_at, retailer_id, token_hash, name, store_id, kind FROM devices WHERE id = ?",
                         (device_id,)).fetchone()
        if row is None:
            raise NotFound("not_found", f"no device {device_id}")
        if row[0] is not None:
            return row[2]  # nothing changes, nothing to record
        # A roll's code not yet used would enroll the withdrawn till again. The codes before the till's row,
        # as enrollment and a roll take them: over PostgreSQL two writes never wait for each other's rows.
        db.execute("DELETE FROM enrollment_codes WHERE for_device = ? AND used_at IS NULL", (device_id,))
        db.execute("UPDATE devices SET revoked_at = ?, revoked_by = ? WHERE id = ?", (now, actor.label(), device_id))
        detail = {"name": row[3], "reason": reason}
        if row[5] == "till" and store is not None:  # it held the store's LAN keys: they go, and it leaves the roster
            detail["lan_kid"] = lan_keys.rotate_in(ctx, db, row[4], now)["kid"]
        audit.write(ctx, db, actor, "device.revoke", device_id, retailer_id=row[1], detail=detail)
        return row[2]
    _forget(ctx, ctx.storage.submit(write))
    return get_device(ctx, device_id)


def roll(ctx: Context, device_id: str, ttl_s: Any = ROLL_TTL_S) -> dict:
    """The till's token stops now; the code answered enrolls the same till again with a new one."""
    _checked_id(device_id)
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or not TTL_MIN_S <= ttl_s <= TTL_MAX_S:
        raise Invalid("invalid_value", "ttl_s is between a minute and 90 days")
    code = codes.new_short_code()
    now = ctx.clock()
    actor = audit.current()

    def write(db):
        ctx.storage.hold(db, holds.device_life_name(device_id))
        row = db.execute("SELECT revoked_at, retailer_id, store_id, token_hash FROM devices WHERE id = ?",
                         (device_id,)).fetchone()
        if row is None:
            raise NotFound("not_found", f"no device {device_id}")
        if row[0] is not None:
            raise Conflict("device_revoked", "this till was withdrawn: it cannot be rolled; enroll a new till")
        # The code of an earlier roll, not yet used, stops working: one live code per till.
        replaced = db.execute("DELETE FROM enrollment_codes WHERE for_device = ? AND used_at IS NULL",
                              (device_id,)).rowcount
        db.execute("UPDATE devices SET rolled_at = ? WHERE id = ?", (now, device_id))
        db.execute("INSERT INTO enrollment_codes (code_hash, retailer_id, store_id, created_at, expires_at, used_at, "
                   "device_id, for_device) VALUES (?, ?, ?, ?, ?, NULL, NULL, ?)",
                   (token_hash(code), row[1], row[2], now, now + ttl_s, device_id))
        audit.write(ctx, db, actor, "device.roll", device_id, retailer_id=row[1],
                    detail={"expires_at": now + ttl_s, "replaced_codes": max(0, replaced)})
        return row[3]
    _forget(ctx, ctx.storage.submit(write))
    return {"device": get_device(ctx, device_id), "code": codes.format_short_code(code), "expires_at": now + ttl_s}


def take_new_token(db, device_id: str, digest: str) -> tuple | None:
    """Inside enrollment's write, for a roll's code: the till's new token, its roll cleared; (id, name,
    retailer_id, store_id), or None if it was revoked meanwhile (its code then enrolls nothing)."""
    old = db.execute("SELECT token_hash FROM devices WHERE id = ? AND revoked_at IS NULL", (device_id,)).fetchone()
    changed = db.execute("UPDATE devices SET token_hash = ?, rolled_at = NULL WHERE id = ? AND revoked_at IS NULL",
                         (digest, device_id)).rowcount
    if changed != 1 or old is None:
        return None
    row = db.execute("SELECT id, name, retailer_id, store_id FROM devices WHERE id = ?", (device_id,)).fetchone()
    return (*row, old[0])


def forget_token(ctx: Context, digest: str) -> None:
    """After a re-enrollment commits: the old token's cached row dropped here too."""
    _forget(ctx, digest)


# --- what a till tells us ----------------------------------------------------------------


def till_report(report: Any, user_agent: str | None) -> dict:
    """The `till` of a sync's body (its shape checked by the web layer), its values bounded: the columns to
    write. The version may come from `User-Agent: pika-till/<version>` when the body has none."""
    out: dict = {}
    report = report or {}
    version = report.get("app_version")
    if version is None and user_agent and user_agent.startswith("pika-till/"):
        version = user_agent[len("pika-till/"):].split(" ", 1)[0][:APP_VERSION_MAX] or None
        if version is not None and not _VERSION.fullmatch(version):
            version = None  # a header is a hint, not a body: an odd one is ignored
    if version is not None:
        if not isinstance(version, str) or not _VERSION.fullmatch(version):
            raise Invalid("invalid_value", f"till.app_version is 1 to {APP_VERSION_MAX} printable characters")
        out["app_version"] = version
    if "outbox" in report:
        size = report["outbox"]
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= OUTBOX_MAX:
            raise Invalid("invalid_value", f"till.outbox is a whole number from 0 to {OUTBOX_MAX}")
        out["outbox_size"] = size
    if "outbox_oldest_at" in report:
        oldest = report["outbox_oldest_at"]
        if oldest is not None and not is_time(oldest):
            raise Invalid("invalid_value", "till.outbox_oldest_at is a time in seconds since 1970, or null")
        out["outbox_oldest_at"] = oldest
    if "parked" in report:
        size = report["parked"]
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= OUTBOX_MAX:
            raise Invalid("invalid_value", f"till.parked is a whole number from 0 to {OUTBOX_MAX}")
        out["parked_size"] = size
    if "parked_oldest_at" in report:
        oldest = report["parked_oldest_at"]
        if oldest is not None and not is_time(oldest):
            raise Invalid("invalid_value", "till.parked_oldest_at is a time in seconds since 1970, or null")
        out["parked_oldest_at"] = oldest
    return out


def record_seen(db, device: dict, now: float, report: dict | None = None) -> None:
    """Inside a write (a sync's): the till was heard from now, and what it reported."""
    columns = {"last_seen_at": now, **(report or {})}
    db.execute(f"UPDATE devices SET {', '.join(f'{name} = ?' for name in columns)} WHERE id = ?",
               (*columns.values(), device["id"]))
    device["last_seen_at"] = now


# The till whose call this request is, if its last_seen_at is due: written once the call has answered
# without an error (nothing is written on an error), by `answered`, which the web layer calls.
_due: contextvars.ContextVar[tuple[Context, dict] | None] = contextvars.ContextVar("pika_seen_due", default=None)


def call_begins() -> None:
    """A new request: no till seen yet (a thread serves many)."""
    _due.set(None)


def seen(ctx: Context, device: dict) -> None:
    """A call from the till (its token checked): its last_seen_at is due if this process's copy is over
    TOUCH_S old."""
    last = device.get("last_seen_at")
    if last is None or ctx.clock() - last >= TOUCH_S:
        _due.set((ctx, device))


def answered(ok: bool) -> None:
    """The request answered (`ok`: not an error): the till's last_seen_at written if it was due."""
    due = _due.get()
    _due.set(None)
    if due is not None and ok:
        touch(*due)


def touch(ctx: Context, device: dict) -> None:
    """The till was heard from: its last_seen_at written if this process's copy of it is over TOUCH_S old."""
    now = ctx.clock()
    last = device.get("last_seen_at")
    if last is not None and now - last < TOUCH_S:
        return
    device["last_seen_at"] = now  # first, in the cached row: this process's other calls skip their write
    try:
        ctx.storage.submit(lambda db: db.execute(
            "UPDATE devices SET last_seen_at = ? WHERE id = ? AND (last_seen_at IS NULL OR last_seen_at < ?) "
            "AND revoked_at IS NULL AND rolled_at IS NULL",
            (now, device["id"], now)))
    except Exception as exc:  # noqa: BLE001 — when a till was last seen never costs it its call
        log.warning("till %s: its last call's time was not recorded (%s)", device["id"], exc)
