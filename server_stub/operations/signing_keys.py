"""Rotating the signing key so that no till is ever handed a token it cannot verify offline.

A rotation PUBLISHES a new key at once (every till's catalog lists it, and a
`keys` feed event makes tills download the catalog at their next round) and
lets it SIGN only after a lead time, by default a week: a till that syncs at
least that often has the key before it sees any token signed with it. The
old key stops signing then, and stays published until the last token it can
have signed has ended (`expires_at`): claims end within
MAX_PERSONAL_LIFETIME_S, a printed code's QR (booklets, `static_token`)
within a year or its voucher's end. Once the old key has stopped signing its
bound is made exact from what it signed (the claims' and printed codes'
rows), at the next rotation.

For a leaked key, `lead_s=0` signs with the new key at once (a till that has
not synced since refuses its tokens as `unknown_key` until it does), and
`withdraw` also stops everyone trusting the old keys: the tokens they signed
are refused from then on (customers' short codes and typed printed codes
still work; claims are issued again, booklets printed again).

keyring.py says how a row's times are read; this module only writes them.
"""

from __future__ import annotations

import math

from pos_app.core import tokens

from ..errors import Conflict, Invalid
from . import audit, keyring
from .common import add_event
from .context import Context
from .vouchers import STATIC_TOKEN_TTL_S

DEFAULT_LEAD_S = 7 * 24 * 3600
MIN_LEAD_S, MAX_LEAD_S = 60, 90 * 24 * 3600
# The longest a token signed at time t can live past t: a printed code's QR (a claim lives at most 90 days).
STATIC_LIFETIME_S = min(STATIC_TOKEN_TTL_S, tokens.MAX_STATIC_LIFETIME_S)
LONGEST_TOKEN_S = max(STATIC_LIFETIME_S, tokens.MAX_PERSONAL_LIFETIME_S)


def list_keys(ctx: Context, data=None) -> list[dict]:
    """Every key, oldest first: its state now and its times; `private_key_here` when `data` (a DataDir) is given."""
    ctx.keys.refresh()
    now = ctx.clock()
    rows = ctx.keys.rows()
    signer = keyring.signer_of(rows, now)
    out, stopped = [], None  # `stopped`: the latest retirement among older keys, where the next one starts
    for row in rows:
        signs_from = row.created_at if stopped is None else max(row.created_at, stopped)
        if row.retired_at is not None:
            stopped = row.retired_at if stopped is None else max(stopped, row.retired_at)
        item = {"kid": row.kid, "state": _state(row, signer, now), "published_at": row.created_at,
                "signs_from": signs_from, "signs_until": row.retired_at, "verifies_until": row.expires_at}
        if data is not None:
            item["private_key_here"] = (data.keys_path / f"{row.kid}.pem").exists()
        out.append(item)
    return out


def _state(row: keyring.KeyRow, signer: keyring.KeyRow | None, now: float) -> str:
    if row.withdrawn:
        return "withdrawn"
    if signer is not None and row.kid == signer.kid:
        return "signing"
    if keyring.signs(row, now):
        return "next"  # published, signs once the key before it retires
    return "retired" if keyring.published(row, now) else "expired"


def rotate(ctx: Context, data, lead_s: float = DEFAULT_LEAD_S, withdraw: bool = False) -> dict:
    """A new key, published now, signing after `lead_s` (0: at once); `withdraw` (only at once) stops every older
    key verifying. The private key goes into `data`'s keys folder (a DataDir) before any row names it."""
    if isinstance(lead_s, bool) or not isinstance(lead_s, (int, float)) or not math.isfinite(lead_s) \
            or not (lead_s == 0 or MIN_LEAD_S <= lead_s <= MAX_LEAD_S):
        raise Invalid("invalid_value", f"the lead time is 0 (at once) or {MIN_LEAD_S} s to {MAX_LEAD_S // 86400} days")
    if withdraw and lead_s:
        raise Invalid("invalid_value", "withdrawing the old keys needs the new one to sign at once (--now)")
    key = tokens.generate_private_key()
    kid = tokens.key_id(key.public_key())
    key_file = data.save_signing_key(key)
    actor = audit.current()

    def write(db) -> dict:
        ctx.storage.hold(db, "signing-keys")  # two rotations at once: the second sees the first's rows
        now = ctx.clock()
        rows = keyring.read_rows(db)
        signing = [row for row in rows if keyring.signs(row, now)]  # the signer and any key waiting to sign
        if lead_s and len(signing) > 1:
            waiting = signing[-1]
            raise Conflict("rotation_pending", f"key {waiting.kid} already waits to sign from "
                           f"{_when(signing[0].retired_at)}: rotate again after that, or now with --now")
        retire_at = now + lead_s
        signer = keyring.signer_of(rows, now)
        changed = []
        for row in rows:
            retired_at, expires_at = row.retired_at, row.expires_at
            if keyring.signs(row, now):
                retired_at = retire_at
                never_signed = signer is None or row.kid != signer.kid
                expires_at = retire_at if withdraw or never_signed else _last_token_end(ctx, db, retire_at, now)
            elif withdraw and not row.withdrawn:
                expires_at = retired_at
            elif not row.withdrawn and row.retired_at <= now:
                expires_at = min(row.expires_at or math.inf, _last_token_end(ctx, db, row.retired_at, now))
            if (retired_at, expires_at) != (row.retired_at, row.expires_at):
                db.execute("UPDATE signing_keys SET active = 0, retired_at = ?, expires_at = ? WHERE kid = ?",
                           (retired_at, expires_at, row.kid))
                changed.append({"kid": row.kid, "signs_until": retired_at, "verifies_until": expires_at})
        db.execute("INSERT INTO signing_keys (kid, public_pem, active, created_at) VALUES (?, ?, 1, ?)",
                   (kid, tokens.public_pem(key.public_key()), now))
        published = [{"kid": r.kid, "pem": r.pem} for r in keyring.read_rows(db) if keyring.published(r, now)]
        # Tills hear of it through their feed (a catalog-changing event), retailer by retailer.
        for (retailer_id,) in db.execute("SELECT id FROM retailers ORDER BY id").fetchall():
            add_event(ctx, db, retailer_id, "keys", {"keys": published})
        audit.write(ctx, db, actor, "key.rotate", kid,
                    detail={"signs_from": retire_at, "withdraw": withdraw, "changed": changed})
        return {"kid": kid, "published_at": now, "signs_from": retire_at, "changed": changed,
                "published": [k["kid"] for k in published]}
    try:
        done = ctx.storage.submit(write)
    except BaseException:
        key_file.unlink(missing_ok=True)  # no row names it: it never signed, nobody trusts it
        raise
    ctx.keys.refresh()  # this process signs with it from its time; the others within keyring.REFRESH_S
    done["key_file"] = key_file.name
    done["consequence"] = _consequence(lead_s, withdraw)
    return done


def _last_token_end(ctx: Context, db, retired_at: float, now: float) -> float:
    """When the last token a key that stops signing at `retired_at` can have signed ends (with the clock's leeway).
    Exact from the rows once it has stopped; a bound from the longest lifetimes while it still signs."""
    leeway = float(ctx.config.get("leeway_s", tokens.DEFAULT_LEEWAY_S))
    if retired_at > now:
        return retired_at + LONGEST_TOKEN_S + leeway
    ends = [retired_at]
    claims = db.execute("SELECT max(expires_at) FROM claims WHERE issued_at <= ?", (retired_at,)).fetchone()[0]
    if claims is not None:
        ends.append(float(claims))
    # A printed code's QR, signed whenever asked for (a booklet, a listing), lives a year or to its voucher's end.
    for (valid_until,) in db.execute(
            "SELECT v.valid_until FROM vouchers v WHERE v.kind = 'printed' AND EXISTS (SELECT 1 FROM printed_codes p "
            "WHERE p.voucher_id = v.id AND p.created_at <= ?)", (retired_at,)).fetchall():
        ends.append(min(retired_at + STATIC_LIFETIME_S, math.inf if valid_until is None else float(valid_until)))
    return max(ends) + leeway


def _when(at: float | None) -> str:
    import datetime

    return "?" if at is None else datetime.datetime.fromtimestamp(at, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _consequence(lead_s: float, withdraw: bool) -> str:
    if withdraw:
        return ("every token the older keys signed (claims' tokens, printed QR codes) is refused from now, by this "
                "backend at once and by each till once it syncs; short codes and typed printed codes still work: "
                "issue claims again and print booklets again. A till that has not synced since refuses the new "
                "key's tokens (unknown_key) until it does.")
    if lead_s == 0:
        return ("the new key signs at once: a till that has not synced since refuses its tokens (unknown_key) "
                "until it syncs; the old key keeps verifying until its last token ends.")
    return ("the new key is in every till's catalog from its next sync and signs from signs_from; a till that "
            "has not synced by then refuses the new key's tokens (unknown_key) until it does. Over several hosts, "
            "copy key_file into every host's keys folder before signs_from.")
