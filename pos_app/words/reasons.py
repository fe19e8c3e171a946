"""What a verdict means to a cashier: the plain words for each reason, and its colour.

Kept apart from the widgets so reports and the headless commands describe
refusals in the same words. Reason codes stay stable; only these texts are
translated.
"""

from __future__ import annotations

from ..core.domain import Reason, Verdict
from ..core.verdict import offline_days_of
from .i18n import N_, _, format_number, format_when

HEADLINES = {
    Reason.MALFORMED: N_("Not a voucher code"),
    Reason.MISTYPED: N_("Code mistyped"),
    Reason.BAD_SIGNATURE: N_("Forged or damaged code"),
    Reason.UNKNOWN_KEY: N_("Code signed by an unknown key"),
    Reason.WRONG_RETAILER: N_("Voucher of another shop"),
    Reason.NOT_YET_VALID: N_("Not valid yet"),
    Reason.EXPIRED: N_("Expired"),
    Reason.ALREADY_REDEEMED: N_("Already redeemed"),
    Reason.REVOKED: N_("Voucher revoked"),
    Reason.UNPUBLISHED: N_("Voucher withdrawn"),
    Reason.UNKNOWN_CODE: N_("Unknown code"),
    Reason.LIMIT_REACHED: N_("Limit reached"),
    Reason.RATE_LIMITED: N_("Too many scans"),
    Reason.OFFLINE_TOO_LONG: N_("Offline for too long"),
}

ADVICE = {
    Reason.MALFORMED: N_("This is not a Pika voucher. Ask the customer to show the voucher's QR code."),
    Reason.MISTYPED: N_("A character is wrong: check the code and type it again."),
    Reason.BAD_SIGNATURE: N_("The code does not carry a valid Pika signature. Do not give the discount."),
    Reason.UNKNOWN_KEY: N_("This till does not know the key that signed the code. Sync the till, then scan again."),
    Reason.WRONG_RETAILER: N_("The voucher belongs to another retailer."),
    Reason.NOT_YET_VALID: N_("The voucher starts later. Check the till's clock, or ask the customer to come back."),
    Reason.EXPIRED: N_("The code's time is over. The customer can open the voucher again in the app for a fresh code."),
    Reason.ALREADY_REDEEMED: N_("This code was used before."),
    Reason.REVOKED: N_("The voucher was revoked. Do not give the discount."),
    Reason.UNPUBLISHED: N_("The shop no longer offers this voucher."),
    Reason.UNKNOWN_CODE: N_("No voucher has this code. Check it and type it again."),
    Reason.LIMIT_REACHED: N_("This printed voucher was used as many times as allowed."),
    Reason.RATE_LIMITED: N_("Vouchers are being scanned unusually fast. Wait a moment or call the manager."),
    Reason.OFFLINE_TOO_LONG: N_("This till has not reached the backend for too long: personal codes need it. "
                                "Printed codes still work; check the network or call the manager."),
}

REFUSED = N_("Refused")
DO_NOT_GIVE = N_("Do not give the discount.")

# Amber, not red: the cashier can do something about it right away.
CAUTION = frozenset({Reason.MALFORMED, Reason.MISTYPED, Reason.NOT_YET_VALID, Reason.RATE_LIMITED,
                     Reason.UNKNOWN_KEY})


def severity(verdict: Verdict) -> str:
    """'accepted', 'caution' (amber) or 'refused' (red)."""
    if verdict.accepted:
        return "accepted"
    return "caution" if verdict.reason in CAUTION else "refused"


def headline(reason: str | None) -> str:
    return _(HEADLINES.get(reason or "", REFUSED))


def advice(verdict: Verdict, *, timezone: str | None = None, now: float | None = None) -> str:
    """One or two sentences on what happened and what to do; names when and where for reuse."""
    text = _(ADVICE.get(verdict.reason or "", DO_NOT_GIVE))
    if verdict.reason == Reason.ALREADY_REDEEMED and verdict.used is not None:
        where = verdict.used.till or _("another till")
        text = _("Redeemed at {till}, {when}.").format(till=where, when=format_when(verdict.used.at, timezone, now))
    elif (days := offline_days_of(verdict)) is not None:
        text = _("This till has not reached the backend for {days} days: personal codes need it. "
                 "Printed codes still work; check the network or call the manager.").format(days=format_number(days))
    return text
