"""Vouchers and what is made of them: printed codes (with their static tokens) and customers' claims."""

from __future__ import annotations

import json
import uuid

from pos_app.core import codes, tokens, verdict, wire
from pos_app.core.domain import LANGUAGES, Reason, VoucherStatus

from ..errors import Busy, Conflict, Invalid, NotFound, Unprocessable
from ..storage.state import VOUCHER_COLUMNS, voucher_from_row
from . import audit, holds
from .common import add_event, insert, new_id, require_retailer
from .context import Context

TRANSITIONS = {
    "publish": ({VoucherStatus.NEW, VoucherStatus.UNPUBLISHED, VoucherStatus.PUBLISHED}, VoucherStatus.PUBLISHED),
    "unpublish": ({VoucherStatus.PUBLISHED, VoucherStatus.UNPUBLISHED}, VoucherStatus.UNPUBLISHED),
    "revoke": (set(VoucherStatus.ALL), VoucherStatus.REVOKED),
}
# A printed code's QR lives until its voucher ends, and never past this (a booklet is
# reprinted monthly; tokens.MAX_STATIC_LIFETIME_S is what tills accept at most).
STATIC_TOKEN_TTL_S = 366 * 24 * 3600


def create_voucher(ctx: Context, body: dict) -> dict:
    require_retailer(ctx, body["retailer_id"])
    if body["kind"] not in ("personal", "printed"):
        raise Invalid("invalid_value", "kind is personal or printed")
    discount = body["discount"]
    if discount.get("kind") not in ("percent", "amount") or not isinstance(discount.get("value"), int) \
            or isinstance(discount.get("value"), bool) or discount["value"] <= 0 \
            or (discount["kind"] == "percent" and discount["value"] > 100):
        raise Invalid("invalid_value", "discount is {kind: percent|amount, value: positive whole number}")
    currency = discount.get("currency", "PYG")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise Invalid("invalid_value", "currency is an ISO 4217 code")
    texts = body["texts"]
    for lang, entry in texts.items():
        if lang not in LANGUAGES or not isinstance(entry, dict) or not set(entry) <= {"title", "terms"} \
                or not all(isinstance(v, str) and len(v) <= 500 for v in entry.values()):
            raise Invalid("invalid_value", f"texts are {{{'|'.join(LANGUAGES)}: {{title, terms}}}}")
    if not any(entry.get("title") for entry in texts.values()):
        raise Invalid("invalid_value", "a voucher needs a title in at least one language")
    for name in ("total_limit", "store_day_limit", "claim_ttl_s"):
        if body.get(name) is not None and body[name] <= 0:
            raise Invalid("invalid_value", f"{name} must be positive")
    for name in ("valid_from", "valid_until"):  # the tills' bounds (wire.is_time): its feed event must fit
        if body.get(name) is not None and not wire.is_time(body[name]):
            raise Invalid("invalid_value", f"{name} must be a time from 1970 to 2200 (epoch seconds)")
    if body.get("valid_from") is not None and body.get("valid_until") is not None \
            and body["valid_from"] >= body["valid_until"]:
        raise Invalid("invalid_value", "valid_from must come before valid_until")
    now = ctx.clock()
    row = {
        "id": new_id("vch"), "retailer_id": body["retailer_id"], "kind": body["kind"],
        "status": VoucherStatus.NEW, "discount_kind": discount["kind"], "discount_value": discount["value"],
        "currency": currency.upper(), "texts": json.dumps(texts, ensure_ascii=False),
        "valid_from": body.get("valid_from"), "valid_until": body.get("valid_until"),
        "total_limit": body.get("total_limit"), "store_day_limit": body.get("store_day_limit"),
        "claim_ttl_s": body.get("claim_ttl_s"), "created_at": now, "updated_at": now,
    }

    actor = audit.current()

    def write(db):
        insert(db, "vouchers", row)
        audit.write(ctx, db, actor, "voucher.create", row["id"], retailer_id=row["retailer_id"],
                    detail={"kind": row["kind"], "discount": discount, "texts": texts,
                            **{k: row[k] for k in ("valid_from", "valid_until", "total_limit", "store_day_limit")}})
        return _voucher_event(ctx, db, row["id"])
    return _changed(ctx, ctx.storage.submit(write))


def voucher_json(db, voucher_id: str) -> dict | None:
    row = db.execute(
        f"SELECT {VOUCHER_COLUMNS} FROM vouchers v JOIN retailers r ON r.id = v.retailer_id WHERE v.id = ?",
        (voucher_id,),
    ).fetchone()
    return voucher_from_row(row).to_json() if row else None


def _changed(ctx: Context, data: dict) -> dict:
    ctx.vouchers.clear()  # after the commit, so no reader caches the old voucher again
    return data


def _voucher_event(ctx: Context, db, voucher_id: str) -> dict:
    data = voucher_json(db, voucher_id)
    add_event(ctx, db, data["retailer_id"], "voucher", data)
    return data


def get_voucher(ctx: Context, voucher_id: str) -> dict:
    data = voucher_json(ctx.storage.read(), voucher_id)
    if data is None:
        raise NotFound("not_found", "no such voucher")
    return data


def list_vouchers(ctx: Context, retailer_id: str | None) -> list[dict]:
    sql, params = f"SELECT {VOUCHER_COLUMNS} FROM vouchers v JOIN retailers r ON r.id = v.retailer_id", ()
    if retailer_id:
        sql, params = sql + " WHERE v.retailer_id = ?", (retailer_id,)
    return [voucher_from_row(r).to_json()
            for r in ctx.storage.read().execute(sql + " ORDER BY v.created_at", params)]


def change_voucher(ctx: Context, voucher_id: str, action: str) -> dict:
    allowed, target = TRANSITIONS[action]
    actor = audit.current()

    def write(db):
        # Read, then changed: a publish racing a revoke must not undo it. (Redemptions read the voucher
        # through each process's cache, so every process sees the change within its second: state.py.)
        ctx.storage.hold(db, holds.voucher_name(voucher_id))
        row = db.execute("SELECT status FROM vouchers WHERE id = ?", (voucher_id,)).fetchone()
        if row is None:
            raise NotFound("not_found", "no such voucher")
        if row[0] not in allowed:
            raise Conflict("conflict", f"a {row[0]} voucher cannot be {target}")
        db.execute("UPDATE vouchers SET status = ?, updated_at = ? WHERE id = ?", (target, ctx.clock(), voucher_id))
        event = _voucher_event(ctx, db, voucher_id)
        audit.write(ctx, db, actor, f"voucher.{action}", voucher_id, retailer_id=event["retailer_id"],
                    detail={"from": row[0], "to": target})
        return event
    return _changed(ctx, ctx.storage.submit(write))


# --- printed codes ---------------------------------------------------------------

def create_printed_code(ctx: Context, voucher_id: str, code_text: str) -> dict:
    voucher = get_voucher(ctx, voucher_id)
    if voucher["kind"] != "printed":
        raise Invalid("invalid_value", "printed codes belong to printed vouchers")
    code = verdict.printed_form(code_text)
    if code is None:
        raise Invalid("invalid_value", "a printed code is 3 to 24 letters and digits")
    if codes.looks_like_short_code(code):
        try:
            codes.parse_short_code(code)
        except codes.ShortCodeError:
            pass
        else:
            raise Invalid("invalid_value", "this code reads as a customer's short code; pick another")
    row = {"code": code, "retailer_id": voucher["retailer_id"], "voucher_id": voucher_id, "created_at": ctx.clock()}
    actor = audit.current()

    def write(db):
        ctx.storage.hold(db, f"printed-code:{code}")  # looked for, then made: one of two racers is told
        if db.execute("SELECT 1 FROM printed_codes WHERE code = ?", (code,)).fetchone():
            raise Conflict("conflict", "this printed code exists already")
        insert(db, "printed_codes", row)
        audit.write(ctx, db, actor, "printed_code.create", code, retailer_id=voucher["retailer_id"],
                    detail={"voucher_id": voucher_id})
        add_event(ctx, db, voucher["retailer_id"], "printed_code", {"code": code, "voucher_id": voucher_id})
    ctx.storage.submit(write)
    return {"code": code, "voucher_id": voucher_id, "token": static_token(ctx, code)}


def list_printed_codes(ctx: Context, voucher_id: str | None) -> list[dict]:
    sql, params = "SELECT code, voucher_id FROM printed_codes", ()
    if voucher_id:
        sql, params = sql + " WHERE voucher_id = ?", (voucher_id,)
    return [{"code": c, "voucher_id": v, "token": static_token(ctx, c)}
            for c, v in ctx.storage.read().execute(sql, params)]


def static_token(ctx: Context, code: str) -> str:
    """The signed token a booklet prints as the QR of a printed code."""
    row = ctx.one(
        "SELECT v.id, v.retailer_id, v.valid_until FROM printed_codes p JOIN vouchers v ON v.id = p.voucher_id "
        "WHERE p.code = ?", (code,))
    if row is None:
        raise NotFound("not_found", "no such printed code")
    now = int(ctx.clock())
    exp = now + min(STATIC_TOKEN_TTL_S, tokens.MAX_STATIC_LIFETIME_S)
    if row[2] is not None:
        exp = min(exp, int(row[2]))
    key, not_after = ctx.signer()  # the key that signs now (a rotation moves it); its tokens end by not_after
    if not_after is not None:
        exp = min(exp, int(not_after))
    return tokens.issue_static(key, iss=ctx.config["issuer"], aud=row[1], vid=row[0],
                               code=code, iat=now, exp=exp)


# --- claims (the customer app's side) ----------------------------------------------

def create_claim(ctx: Context, voucher_id: str, customer_id: str, *, audited: bool = False) -> dict:
    """`audited`: a person made it (the console's test claim), so the audit log records it; the customer
    app's many claims are not."""
    now = ctx.clock()
    data = voucher_json(ctx.storage.read(), voucher_id)
    if data is None:
        raise NotFound("not_found", "no such voucher")
    refusal = None
    if data["kind"] != "personal":
        refusal = (Reason.UNKNOWN_CODE, "printed vouchers are not claimed")
    elif data["status"] == VoucherStatus.REVOKED:
        refusal = (Reason.REVOKED, "the voucher was withdrawn")
    elif data["status"] != VoucherStatus.PUBLISHED:
        refusal = (Reason.UNPUBLISHED, "the voucher is not published")
    elif data["valid_until"] is not None and now >= data["valid_until"]:
        refusal = (Reason.EXPIRED, "the voucher has ended")
    if refusal:
        raise Unprocessable(*refusal)
    ttl = ctx.one("SELECT claim_ttl_s FROM vouchers WHERE id = ?", (voucher_id,))[0] or ctx.config["claim_ttl_s"]
    # The voucher's (or the backend's) claim lifetime, never more than tills accept, never past the voucher.
    exp = int(now) + min(int(ttl), tokens.MAX_PERSONAL_LIFETIME_S)
    if data["valid_until"] is not None:
        exp = min(exp, int(data["valid_until"]))
    jti = uuid.uuid4().hex
    nbf = int(now) if data["valid_from"] is None else max(int(now), int(data["valid_from"]))
    key, not_after = ctx.signer()  # the key that signs now; its tokens end by not_after (signing_keys.py)
    if not_after is not None:
        exp = min(exp, int(not_after))
    token = tokens.issue_personal(key, iss=ctx.config["issuer"], aud=data["retailer_id"],
                                  sub=customer_id, vid=voucher_id, jti=jti, iat=int(now), nbf=nbf, exp=exp)
    actor = audit.current()

    def write(db):
        for _ in range(8):  # 40 random bits: a collision is rare, never fatal
            short = codes.new_short_code()
            if db.execute("SELECT 1 FROM claims WHERE short_code = ?", (short,)).fetchone() is None \
                    and db.execute("SELECT 1 FROM printed_codes WHERE code = ?", (short,)).fetchone() is None:
                break
        else:
            raise Busy("busy", "could not find a free short code; try again")
        digest = codes.claim_digest(short, data["retailer_id"])
        insert(db, "claims", {"jti": jti, "retailer_id": data["retailer_id"], "voucher_id": voucher_id,
                               "customer_id": customer_id, "short_code": short, "code_digest": digest,
                               "issued_at": now, "expires_at": exp, "revoked_at": None})
        # Tills get the code's digest, never the code (codes.claim_digest says why).
        add_event(ctx, db, data["retailer_id"], "claim",
                  {"code_digest": digest, "jti": jti, "voucher_id": voucher_id, "expires_at": exp})
        if audited:  # never the token or its short code
            audit.write(ctx, db, actor, "claim.create", jti, retailer_id=data["retailer_id"],
                        detail={"voucher_id": voucher_id, "customer_id": customer_id, "expires_at": exp})
        return short
    short = ctx.storage.submit(write)
    return {"token": token, "short_code": codes.format_short_code(short), "expires_at": exp, "jti": jti}


def revoke_claim(ctx: Context, jti: str) -> dict:
    actor = audit.current()

    def write(db):
        row = db.execute("SELECT retailer_id FROM claims WHERE jti = ?", (jti,)).fetchone()
        if row is None:
            raise NotFound("not_found", "no such claim")
        db.execute("UPDATE claims SET revoked_at = ? WHERE jti = ?", (ctx.clock(), jti))
        audit.write(ctx, db, actor, "claim.revoke", jti, retailer_id=row[0])
        add_event(ctx, db, row[0], "revocation", {"jti": jti})
    ctx.storage.submit(write)
    return {"jti": jti, "revoked": True}
