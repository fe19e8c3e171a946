"""Voiding a redemption: the rules the till and the backend share.

A void is an accounting correction a manager makes after the fact (the
wrong voucher was scanned, the sale was cancelled). It is a record of its
own beside the redemption, which is never changed or deleted. A voided
redemption leaves the report's count and totals, but its code stays used
and a printed code's use stays counted: the discount was given.
"""

from __future__ import annotations

import unicodedata

MAX_REASON = 200
VOID_ROLES = ("manager", "admin")
# Control characters, lone surrogates, line and paragraph separators: a reason
# is one line a person typed. Format characters (ZWJ in emoji) are fine.
_REFUSED_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}


class VoidError(ValueError):
    """A void that may not be made, with a stable code and a plain message."""

    NOT_FOUND = "not_found"
    NOT_ACCEPTED = "not_accepted"
    ALREADY_VOIDED = "already_voided"
    INVALID_VALUE = "invalid_value"
    FORBIDDEN = "forbidden"

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def check_reason(reason: object) -> str:
    """The reason as it is kept (stripped), or VoidError invalid_value."""
    if not isinstance(reason, str):
        raise VoidError(VoidError.INVALID_VALUE, "the reason must be a text")
    text = reason.strip()
    if not text:
        raise VoidError(VoidError.INVALID_VALUE, "a void needs a reason")
    if len(text) > MAX_REASON:
        raise VoidError(VoidError.INVALID_VALUE, f"the reason is at most {MAX_REASON} characters")
    if any(unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in text):
        raise VoidError(VoidError.INVALID_VALUE, "the reason is one line of text, without control characters")
    return text


def check_staff(role: str | None) -> None:
    """Only a manager or an admin voids; None is someone unknown here."""
    if role not in VOID_ROLES:
        raise VoidError(VoidError.FORBIDDEN, "only a manager or an admin may void a redemption")


def check_target(status: str | None, *, voided: bool) -> None:
    """The redemption's status (None: no such redemption) and whether it has a void already."""
    if status is None:
        raise VoidError(VoidError.NOT_FOUND, "no such redemption")
    if status != "accepted":
        # Refused attempts gave nothing; a conflict's loser is counted as the conflict it is.
        raise VoidError(VoidError.NOT_ACCEPTED, "only an accepted redemption can be voided")
    if voided:
        raise VoidError(VoidError.ALREADY_VOIDED, "this redemption is voided already")
