"""The backend's domain errors: what an operation refuses, with a stable code.

Operations (and the booklet, and the operator commands) raise these and know
nothing of HTTP; the web layer (`http.py`) maps each kind to its status, and
the commands say them on stderr. The codes are part of the API
(openapi.json's `Error`): a code once given keeps its meaning.
"""

from __future__ import annotations


class DomainError(Exception):
    """An operation refused: `code` is stable, `message` is for a person, `extra` goes into the answer."""

    def __init__(self, code: str, message: str, extra: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra or {}


class Invalid(DomainError):
    """The input is wrong: a missing, unknown or malformed field, a value out of bounds."""


class Unauthorized(DomainError):
    """No credentials, or credentials nobody issued (or that were withdrawn)."""


class Forbidden(DomainError):
    """Known credentials that may not do this."""


class NotFound(DomainError):
    """Nothing by that id, within the caller's retailer."""


class Conflict(DomainError):
    """The request clashes with what is already there (a duplicate, a state that forbids it)."""


class Unprocessable(DomainError):
    """Well-formed, but the rules refuse it (a voucher too small to print, a date outside the month)."""


class TooLarge(DomainError):
    """More than the bounds allow in one request."""


class TooMany(DomainError):
    """Too many attempts from this caller lately (wrong PINs, guessed enrollment codes): wait, then try again."""


class Busy(DomainError):
    """The backend cannot take it now; the same request may be sent again later."""
