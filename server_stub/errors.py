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


class StorageFull(Busy):
    """The disk (or the database's tablespace) is full: nothing was written; the same request may be sent
    again once there is room. Tills treat it as the backend being away and decide offline meanwhile."""

    def __init__(self, code: str = "storage_full",
                 message: str = "the backend's storage is full: nothing was written, try again later",
                 extra: dict | None = None):
        super().__init__(code, message, {"retry_after_s": 60} if extra is None else extra)


class RateLimited(TooMany):
    """Too many requests from this till or client address lately (limits/): `retry_after_s` whole seconds
    to wait (also the Retry-After header), then go on; nothing of the refused request was done."""

    def __init__(self, what: str, retry_after_s: int, scope: str):
        super().__init__("rate_limited", f"too many requests from this {what}; wait {retry_after_s} s",
                         {"retry_after_s": int(retry_after_s), "scope": scope})  # scope: device or address
