"""One decision for every input: classify → verify → decide.

`decide` takes any text a camera, scanner or cashier produced, and the
state of whoever decides (the till's store offline, the backend online), and
returns a Verdict with one precise reason. It never raises for bad input:
garbage is a verdict too (`malformed`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import NamedTuple, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import codes, tokens
from .domain import Claim, Reason, UsedToken, Verdict, Voucher, VoucherStatus
from .layout_repair import repair

MAX_INPUT_CHARS = tokens.MAX_TOKEN_LENGTH
DEFAULT_VELOCITY_LIMIT = 40  # accepted redemptions per till per minute
# A printed voucher's two limits, named as sync results and reports name them. The
# refusal's message says which one was reached: a till that asked the backend
# remembers that limit (`reached_limit`), not the other.
STORE_DAY_LIMIT, TOTAL_LIMIT = "store_day_limit", "total_limit"
LIMIT_MESSAGES = {STORE_DAY_LIMIT: "this store reached today's limit for this voucher",
                  TOTAL_LIMIT: "this voucher reached its limit"}
# `offline_too_long`'s message; `offline_days_of` reads the days back for the cashier's words.
OFFLINE_TOO_LONG_MESSAGE = "This till has not reached the backend for {days} days: personal codes need it"
_OFFLINE_DAYS = re.compile(r"for (\d{1,6}) days")
_PRINTED_SHAPE = re.compile(r"^[A-Z0-9]{3,24}$")
_PRINTED_STRIP = str.maketrans("", "", " -\t")


class RedemptionState(Protocol):
    """What a decider must be able to look up. The till's store and the
    backend's database both provide it."""

    def voucher(self, voucher_id: str) -> Voucher | None: ...
    def printed_voucher(self, code: str) -> Voucher | None: ...
    def claim(self, short_code: str) -> Claim | None: ...
    def used(self, jti: str) -> UsedToken | None: ...
    def revoked(self, jti: str) -> bool: ...
    def printed_uses(self, voucher_id: str, store_id: str, day: str) -> tuple[int, int]:
        """(uses at this store on this day, uses in all) of a printed voucher."""
    def recent_accepts(self, since: float) -> int:
        """Accepted redemptions at this till since an epoch time (scan velocity)."""


@dataclass(frozen=True, slots=True)
class Context:
    """Who decides, and when."""

    trust: tokens.TrustSet
    retailer_id: str
    store_id: str
    now: float
    day: str  # the store's local day, YYYY-MM-DD
    leeway: float = tokens.DEFAULT_LEEWAY_S
    velocity_window_s: float = 60.0
    velocity_limit: int = DEFAULT_VELOCITY_LIMIT  # accepted per window before `rate_limited`; 0 = off
    # The `iss` tokens must name (the backend's config "issuer", which the catalog
    # tells tills). Empty: not known yet (a till whose catalog predates it), not checked.
    issuer: str = ""
    # Whole days a till deciding offline has not heard from the backend, past its retailer's
    # policy (offline_days); 0: within it, or the backend deciding. Personal codes are refused then.
    offline_too_long: int = 0


def offline_days_of(v: "Verdict") -> int | None:
    """The days an `offline_too_long` verdict says the till went unheard, or None."""
    if v.reason != Reason.OFFLINE_TOO_LONG:
        return None
    found = _OFFLINE_DAYS.search(v.message or "")
    return int(found.group(1)) if found else None


def is_timezone(name: object) -> bool:
    """True for an IANA time zone name zoneinfo can load ("America/Asuncion")."""
    if not isinstance(name, str) or not 0 < len(name) <= 64:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "America" is a folder, not a zone
        return False
    return True


def local_day(now: float, tz_name: str) -> str:
    """The calendar day at the store for an epoch time."""
    return datetime.fromtimestamp(now, timezone.utc).astimezone(ZoneInfo(tz_name)).date().isoformat()


def clean_input(raw: str | bytes) -> str | None:
    """Text ready to classify, or None if it cannot be a code at all."""
    if isinstance(raw, (bytes, bytearray)):
        if len(raw) > MAX_INPUT_CHARS * 4:
            return None
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(raw, str) or len(raw) > MAX_INPUT_CHARS:
        return None
    text = repair(raw.strip())
    if not text or not text.isascii() or not text.isprintable():
        return None
    return text


def printed_form(text: str) -> str | None:
    """The catalog form of a typed printed code (case and spaces forgiven)."""
    code = text.translate(_PRINTED_STRIP).upper()
    return code if _PRINTED_SHAPE.match(code) else None


def _is_printed_form(code: str) -> bool:
    """printed_form(code) == code, without a regex on the scan path: 3 to 24 of [A-Z0-9]."""
    return 3 <= len(code) <= 24 and code.isascii() and code.isalnum() and code == code.upper()


def _refuse(reason: str, message: str, **facts) -> Verdict:
    return Verdict(accepted=False, reason=reason, message=message, **facts)


class Reading(NamedTuple):
    """An input classified and, for tokens, verified: everything that needs no state.

    Split from judging so a server can verify in its request threads and
    judge in its single writer. (A NamedTuple: immutable and cheap to make.)"""

    text: str | None
    token: tokens.VerifiedToken | None = None
    refusal: Verdict | None = None


def read(raw: str | bytes, ctx: Context) -> Reading:
    """Classify an input and verify it if it is a token."""
    # Fast path for what cameras and scanners mostly send: a token exactly as
    # issued, which clean_input would return unchanged.
    jws = tokens.jws_bytes(raw) if raw.__class__ is str else None
    if jws is not None:
        text = raw
    else:
        text = clean_input(raw)
        if text is None:
            return Reading(None, refusal=_refuse(Reason.MALFORMED, "not a voucher code"))
        if text.count(".") != 2:  # the full shape check is verify's own
            return Reading(text)
    try:
        if jws is not None:
            token = tokens.verify_jws(jws, ctx.trust, audience=ctx.retailer_id, now=ctx.now, leeway=ctx.leeway,
                                      issuer=ctx.issuer or None)
        else:
            token = tokens.verify(text, ctx.trust, audience=ctx.retailer_id, now=ctx.now, leeway=ctx.leeway,
                                  issuer=ctx.issuer or None)
    except tokens.TokenError as exc:
        return Reading(text, refusal=_refuse(exc.reason, str(exc), source="token"))
    return Reading(text, token)


def decide(raw: str | bytes, state: RedemptionState, ctx: Context, *, printed_only: bool = False) -> Verdict:
    """The verdict for one input. `printed_only` serves the printed-voucher entry."""
    return judge(read(raw, ctx), state, ctx, printed_only=printed_only)


def judge(reading: Reading, state: RedemptionState, ctx: Context, *, printed_only: bool = False) -> Verdict:
    """The verdict for a read input against the decider's state."""
    if reading.refusal is not None:
        return reading.refusal
    if reading.token is not None:
        return _decide_token(reading.token, state, ctx, printed_only)
    text = reading.text
    code = printed_form(text)
    if code is not None:
        voucher = state.printed_voucher(code)
        if voucher is not None:
            return _decide_printed(voucher, code, "printed_code", state, ctx)
    if printed_only:
        return _refuse(Reason.UNKNOWN_CODE, "no printed voucher has this code")
    if codes.looks_like_short_code(text):
        return _decide_short_code(text, state, ctx)
    if code is not None:
        return _refuse(Reason.UNKNOWN_CODE, "no voucher has this code")
    return _refuse(Reason.MALFORMED, "not a voucher code")


def _decide_token(token: tokens.VerifiedToken, state: RedemptionState, ctx: Context, printed_only: bool) -> Verdict:
    if token.kind == "static":
        code = token.claims["code"]  # verified: a short printable text
        if not _is_printed_form(code):  # then it is stored, reported and fed to other tills as a printed code
            return _refuse(Reason.MALFORMED, "the token's code is not a printed code", source="static_token")
        voucher = state.voucher(token.vid)
        if voucher is None or voucher.kind != "printed":
            return _refuse(Reason.UNKNOWN_CODE, "this till does not know the voucher", kind="printed",
                           source="static_token", code=code)
        return _decide_printed(voucher, code, "static_token", state, ctx)
    if printed_only:
        return _refuse(Reason.UNKNOWN_CODE, "this is an app code, not a printed one", source="token")
    claims = token.claims  # verified: vid and jti are short texts
    return _decide_personal(claims["vid"], claims["jti"], "token", state, ctx)


def _decide_short_code(text: str, state: RedemptionState, ctx: Context) -> Verdict:
    try:
        canon = codes.parse_short_code(text)
    except codes.ShortCodeError as exc:
        return _refuse(exc.reason, str(exc), source="short_code")
    claim = state.claim(canon)
    if claim is None:
        return _refuse(Reason.UNKNOWN_CODE, "no claim has this code", source="short_code", code=canon)
    if ctx.now - ctx.leeway >= claim.expires_at:
        return _refuse(Reason.EXPIRED, "the code has expired", kind="personal", source="short_code",
                       code=canon, jti=claim.jti, voucher=state.voucher(claim.voucher_id))
    return _decide_personal(claim.voucher_id, claim.jti, "short_code", state, ctx, code=canon)


def _voucher_refusal(voucher: Voucher | None, ctx: Context) -> tuple[str, str] | None:
    if voucher is None:
        return Reason.UNKNOWN_CODE, "this till does not know the voucher"
    if voucher.retailer_id != ctx.retailer_id:
        return Reason.WRONG_RETAILER, "the voucher is for another retailer"
    if voucher.status == VoucherStatus.REVOKED:
        return Reason.REVOKED, "the voucher was withdrawn"
    if voucher.status != VoucherStatus.PUBLISHED:
        return Reason.UNPUBLISHED, "the voucher is not on offer"
    if voucher.valid_from is not None and ctx.now + ctx.leeway < voucher.valid_from:
        return Reason.NOT_YET_VALID, "the voucher is not valid yet"
    if voucher.valid_until is not None and ctx.now - ctx.leeway >= voucher.valid_until:
        return Reason.EXPIRED, "the voucher has ended"
    return None


def _decide_personal(vid: str, jti: str | None, source: str, state: RedemptionState, ctx: Context,
                     code: str | None = None) -> Verdict:
    # On every scan: no facts dict and ** (Verdict's frozen __init__ is slow enough already).
    voucher = state.voucher(vid)
    refusal = _voucher_refusal(voucher, ctx)
    if refusal is None and voucher.kind != "personal":
        refusal = Reason.UNKNOWN_CODE, "the voucher is not an app voucher"
    if refusal is None and state.revoked(jti):
        refusal = Reason.REVOKED, "this code was withdrawn"
    used = None
    if refusal is None:
        used = state.used(jti)
        if used is not None:
            refusal = Reason.ALREADY_REDEEMED, "this code was already redeemed"
        elif ctx.offline_too_long:
            refusal = Reason.OFFLINE_TOO_LONG, OFFLINE_TOO_LONG_MESSAGE.format(days=ctx.offline_too_long)
        elif ctx.velocity_limit > 0 and _too_fast(state, ctx):
            refusal = Reason.RATE_LIMITED, "too many redemptions in a short time"
    if refusal is None:
        return Verdict(accepted=True, reason=None, message="accepted", kind="personal", source=source,
                       voucher=voucher, jti=jti, code=code)
    return Verdict(accepted=False, reason=refusal[0], message=refusal[1], kind="personal", source=source,
                   voucher=voucher, jti=jti, code=code, used=used)


def _decide_printed(voucher: Voucher, code: str, source: str, state: RedemptionState, ctx: Context) -> Verdict:
    facts = dict(kind="printed", source=source, voucher=voucher, code=code)
    refusal = _voucher_refusal(voucher, ctx)
    if refusal is not None:
        return _refuse(*refusal, **facts)
    at_store_today, in_all = state.printed_uses(voucher.id, ctx.store_id, ctx.day)
    if voucher.store_day_limit is not None and at_store_today >= voucher.store_day_limit:
        return _refuse(Reason.LIMIT_REACHED, LIMIT_MESSAGES[STORE_DAY_LIMIT], **facts)
    if voucher.total_limit is not None and in_all >= voucher.total_limit:
        return _refuse(Reason.LIMIT_REACHED, LIMIT_MESSAGES[TOTAL_LIMIT], **facts)
    if _too_fast(state, ctx):
        return _refuse(Reason.RATE_LIMITED, "too many redemptions in a short time", **facts)
    return Verdict(accepted=True, reason=None, message="accepted", **facts)


def reached_limit(v: Verdict) -> str | None:
    """Which limit a `limit_reached` verdict of a printed voucher names (STORE_DAY_LIMIT or TOTAL_LIMIT), or None.

    Read from its message, as the backend's answer carries no other sign; a message
    this version does not know (another backend's) is taken for the voucher's only
    limit, or for the daily one, which lapses by itself at the day's end."""
    if v.accepted or v.reason != Reason.LIMIT_REACHED or v.kind != "printed" or v.voucher is None:
        return None
    for name, message in LIMIT_MESSAGES.items():
        if v.message == message and getattr(v.voucher, name) is not None:
            return name
    if v.voucher.store_day_limit is None and v.voucher.total_limit is not None:
        return TOTAL_LIMIT
    return STORE_DAY_LIMIT if v.voucher.store_day_limit is not None else None


def _too_fast(state: RedemptionState, ctx: Context) -> bool:
    return ctx.velocity_limit > 0 and state.recent_accepts(ctx.now - ctx.velocity_window_s) >= ctx.velocity_limit
