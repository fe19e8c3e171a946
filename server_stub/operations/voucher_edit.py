"""A voucher corrected after it was made, and what the console shows of one beyond its wire shape.

What may change, and when, is decided here once (the console's page says the
same in words): a voucher's kind never changes (its printed codes or its
customers' claims depend on it); its discount only while it is a draft
(`new`), since once published tills have shown and customers hold that
promise; its texts, validity and limits while it is not revoked. A revoked
voucher is final. Each edit is one write that reads the voucher's status under
its hold (an edit racing a revoke decides on the revoke), records what changed
in the audit log, and writes the same `voucher` feed event a publish writes,
so tills take the new texts, dates and limits at their next sync.
"""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

from pos_app.core import wire
from pos_app.core.domain import LANGUAGES, VoucherStatus

from ..errors import Conflict, Invalid, NotFound
from ..storage.state import day_bounds
from . import audit, holds
from .common import add_event
from .context import Context
from .vouchers import voucher_json

EDITABLE = ("texts", "discount", "valid_from", "valid_until", "total_limit", "store_day_limit", "claim_ttl_s")
WHILE_DRAFT_ONLY = ("discount",)
TEXT_MAX = 500  # as create_voucher takes
_COLUMNS = ("texts", "discount_kind", "discount_value", "currency", "valid_from", "valid_until", "total_limit",
            "store_day_limit", "claim_ttl_s", "status", "retailer_id", "kind")


def may_change(status: str, field: str) -> bool:
    """Whether `field` of a voucher in `status` may be edited (the page asks the same question)."""
    if status == VoucherStatus.REVOKED:
        return False
    return field not in WHILE_DRAFT_ONLY or status == VoucherStatus.NEW


def _checked(changes: dict) -> dict:
    """The changes' shapes, as create_voucher checks them; the columns they set."""
    if not changes or set(changes) - set(EDITABLE):
        raise Invalid("invalid_value", f"say at least one of {', '.join(EDITABLE)}")
    columns: dict = {}
    if "texts" in changes:
        texts = changes["texts"]
        if not isinstance(texts, dict) or any(
                lang not in LANGUAGES or not isinstance(entry, dict) or not set(entry) <= {"title", "terms"}
                or not all(isinstance(v, str) and len(v) <= TEXT_MAX for v in entry.values())
                for lang, entry in texts.items()):
            raise Invalid("invalid_value", f"texts are {{{'|'.join(LANGUAGES)}: {{title, terms}}}}")
        if not any(entry.get("title") for entry in texts.values()):
            raise Invalid("invalid_value", "a voucher needs a title in at least one language")
        columns["texts"] = json.dumps(texts, ensure_ascii=False)
    if "discount" in changes:
        discount = changes["discount"]
        value = discount.get("value") if isinstance(discount, dict) else None
        if not isinstance(discount, dict) or discount.get("kind") not in ("percent", "amount") \
                or not isinstance(value, int) or isinstance(value, bool) or value <= 0 \
                or (discount["kind"] == "percent" and value > 100):
            raise Invalid("invalid_value", "discount is {kind: percent|amount, value: positive whole number}")
        columns["discount_kind"], columns["discount_value"] = discount["kind"], value
    for name in ("total_limit", "store_day_limit", "claim_ttl_s"):
        if name in changes:
            value = changes[name]
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                raise Invalid("invalid_value", f"{name} must be positive")
            columns[name] = value
    for name in ("valid_from", "valid_until"):
        if name in changes:
            if changes[name] is not None and not wire.is_time(changes[name]):
                raise Invalid("invalid_value", f"{name} must be a time from 1970 to 2200 (epoch seconds)")
            columns[name] = changes[name]
    return columns


def edit_voucher(ctx: Context, voucher_id: str, changes: dict) -> dict:
    """Any of EDITABLE (None clears a date or a limit); 409 conflict for a revoked voucher or a published
    one's discount. The voucher as it now stands; nothing written when nothing differs."""
    columns = _checked(changes)
    actor = audit.current()

    def write(db):
        ctx.storage.hold(db, holds.voucher_name(voucher_id))
        row = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM vouchers WHERE id = ?", (voucher_id,)).fetchone()
        if row is None:
            raise NotFound("not_found", "no such voucher")
        old = dict(zip(_COLUMNS, row))
        if old["status"] == VoucherStatus.REVOKED:
            raise Conflict("conflict", "a revoked voucher cannot be changed")
        differs = {name: value for name, value in columns.items() if old[name] != value}
        if not differs:
            return voucher_json(db, voucher_id)
        if {"discount_kind", "discount_value"} & set(differs) and old["status"] != VoucherStatus.NEW:
            raise Conflict("conflict", "the discount cannot change once the voucher was published")
        new = {**old, **differs}
        if new["valid_from"] is not None and new["valid_until"] is not None and new["valid_from"] >= new["valid_until"]:
            raise Invalid("invalid_value", "valid_from must come before valid_until")
        if old["kind"] == "personal" and (new["total_limit"] is not None or new["store_day_limit"] is not None) \
                and ({"total_limit", "store_day_limit"} & set(differs)):
            raise Invalid("invalid_value", "limits apply to printed vouchers only")
        db.execute(f"UPDATE vouchers SET {', '.join(f'{name} = ?' for name in differs)}, updated_at = ? WHERE id = ?",
                   (*differs.values(), ctx.clock(), voucher_id))
        data = voucher_json(db, voucher_id)
        # The event a publish writes: tills replace their copy of the voucher with this one.
        add_event(ctx, db, data["retailer_id"], "voucher", data)
        shown = {name: json.loads(v) if name == "texts" else v for name, v in differs.items()}
        audit.write(ctx, db, actor, "voucher.edit", voucher_id, retailer_id=data["retailer_id"],
                    detail={"changed": shown,
                            "before": {name: json.loads(old[name]) if name == "texts" else old[name]
                                       for name in differs}})
        return data
    data = ctx.storage.submit(write)
    ctx.vouchers.clear()  # after the commit, so no reader caches the old voucher again
    return data


def voucher_extras(ctx: Context, voucher_id: str, uses: bool = False) -> dict:
    """What the console shows besides the wire shape: the claim lifetime, when made and last changed; with
    `uses`, a printed voucher's accepted uses in all (what total_limit is held against) and today's at each
    of its retailer's stores, each store's today in its own time zone (what store_day_limit is held against).
    Counted on the printed limits' own index (its condition repeated), never row by row: a booklet's voucher
    may hold hundreds of thousands."""
    row = ctx.one("SELECT claim_ttl_s, created_at, updated_at, kind, retailer_id FROM vouchers WHERE id = ?",
                  (voucher_id,))
    if row is None:
        raise NotFound("not_found", "no such voucher")
    extras = {"claim_ttl_s": row[0], "created_at": row[1], "updated_at": row[2], "uses": None, "today": {}}
    if uses and row[3] == "printed":
        db = ctx.storage.read()
        counted = "SELECT count(*) FROM attempts WHERE status = 'accepted' AND kind = 'printed' AND voucher_id = ?"
        extras["uses"] = db.execute(counted, (voucher_id,)).fetchone()[0]
        now = ctx.clock()
        for store_id, zone in db.execute("SELECT id, timezone FROM stores WHERE retailer_id = ? ORDER BY name",
                                         (row[4],)).fetchall():
            start, end = day_bounds(dt.datetime.fromtimestamp(now, ZoneInfo(zone)).date().isoformat(), zone)
            extras["today"][store_id] = db.execute(counted + " AND store_id = ? AND at >= ? AND at < ?",
                                                   (voucher_id, store_id, start, end)).fetchone()[0]
    return extras
