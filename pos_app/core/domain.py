"""The things a till and the backend talk about: vouchers, codes, verdicts.

Plain frozen dataclasses (and one NamedTuple) with `to_json` / `from_json`, so the same shapes
travel through SQLite rows, HTTP bodies and the GUI unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple


# An idempotency key: a till's redemption, void or sync entry, the same at the
# till and the backend (a till makes them with uuid4().hex).
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class Reason:
    """Stable reason codes for a refused redemption (the API and UI key on them)."""

    MALFORMED = "malformed"
    MISTYPED = "mistyped"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_KEY = "unknown_key"
    WRONG_RETAILER = "wrong_retailer"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    ALREADY_REDEEMED = "already_redeemed"
    REVOKED = "revoked"
    UNPUBLISHED = "unpublished"
    UNKNOWN_CODE = "unknown_code"
    LIMIT_REACHED = "limit_reached"
    RATE_LIMITED = "rate_limited"
    # A till deciding offline that has not heard from the backend for longer than its retailer's
    # policy allows (the catalog's policy.offline_days): personal codes need the backend then.
    OFFLINE_TOO_LONG = "offline_too_long"

    ALL = (
        MALFORMED, MISTYPED, BAD_SIGNATURE, UNKNOWN_KEY, WRONG_RETAILER,
        NOT_YET_VALID, EXPIRED, ALREADY_REDEEMED, REVOKED, UNPUBLISHED,
        UNKNOWN_CODE, LIMIT_REACHED, RATE_LIMITED, OFFLINE_TOO_LONG,
    )


class VoucherStatus:
    NEW = "new"
    PUBLISHED = "published"
    UNPUBLISHED = "unpublished"
    REVOKED = "revoked"
    ALL = (NEW, PUBLISHED, UNPUBLISHED, REVOKED)


class Method:
    """How a code reached the till (reports break redemptions down by it)."""

    CAMERA = "camera"
    SCANNER = "scanner"
    TYPED = "typed"
    PRINTED = "printed"
    IMAGE = "image"
    ALL = (CAMERA, SCANNER, TYPED, PRINTED, IMAGE)


LANGUAGES = ("es", "gn", "en", "pt")
# Guaraní speakers read Spanish; everyone else falls back to Spanish, then English.
FALLBACK = {"gn": ("gn", "es", "en", "pt"), "es": ("es", "en", "pt", "gn"),
            "en": ("en", "es", "pt", "gn"), "pt": ("pt", "es", "en", "gn")}


@dataclass(frozen=True, slots=True)
class Discount:
    kind: str  # "percent" or "amount"
    value: int  # percent points, or an amount in the currency's minor units
    currency: str = "PYG"

    def to_json(self) -> dict:
        return {"kind": self.kind, "value": self.value, "currency": self.currency}


@dataclass(frozen=True, slots=True)
class Voucher:
    """An offer of a retailer, as the till needs it to decide and to show it."""

    id: str
    retailer_id: str
    kind: str  # "personal" or "printed"
    status: str
    discount: Discount
    texts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    valid_from: int | None = None  # epoch seconds
    valid_until: int | None = None
    total_limit: int | None = None  # printed vouchers: uses in all
    store_day_limit: int | None = None  # printed vouchers: uses per store per day
    retailer_name: str = ""

    def text(self, name: str, language: str) -> str:
        """A text in the language asked, else along the fallback chain."""
        for lang in FALLBACK.get(language, (language,) + LANGUAGES):
            value = self.texts.get(lang, {}).get(name)
            if value:
                return value
        return ""

    def to_json(self) -> dict:
        # By hand, not dataclasses.asdict: this runs for every answer the backend gives.
        return {
            "id": self.id, "retailer_id": self.retailer_id, "kind": self.kind, "status": self.status,
            "discount": self.discount.to_json(), "texts": {k: dict(v) for k, v in self.texts.items()},
            "valid_from": self.valid_from, "valid_until": self.valid_until, "total_limit": self.total_limit,
            "store_day_limit": self.store_day_limit, "retailer_name": self.retailer_name,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Voucher":
        return cls(
            id=data["id"], retailer_id=data["retailer_id"], kind=data["kind"],
            status=data["status"], discount=Discount(**data["discount"]),
            texts=data.get("texts") or {}, valid_from=data.get("valid_from"),
            valid_until=data.get("valid_until"), total_limit=data.get("total_limit"),
            store_day_limit=data.get("store_day_limit"),
            retailer_name=data.get("retailer_name", ""),
        )


@dataclass(frozen=True, slots=True)
class Claim:
    """A customer's claim of a personal voucher, reachable by its short code."""

    short_code: str
    jti: str
    voucher_id: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class UsedToken:
    """Where and when a token id was redeemed (for `already_redeemed`)."""

    jti: str
    at: float
    till: str
    store_id: str = ""

    def to_json(self) -> dict:
        return {"jti": self.jti, "at": self.at, "till": self.till, "store_id": self.store_id}


class Verdict(NamedTuple):
    """The decision for one input, with what the cashier needs to see.

    A NamedTuple rather than a frozen dataclass like its neighbours: one is
    made on every scan, and a frozen dataclass's __init__ (a setattr per
    field) cost about a sixth of a verdict's own work besides the signature
    check (bench/till_verdict.py). It is immutable all the same."""

    accepted: bool
    reason: str | None
    kind: str | None = None  # "personal" / "printed", once known
    source: str | None = None  # "token", "static_token", "short_code", "printed_code"
    voucher: Voucher | None = None
    jti: str | None = None
    code: str | None = None
    message: str = ""
    used: UsedToken | None = None

    def to_json(self) -> dict:
        return {
            "accepted": self.accepted,
            "reason": self.reason,
            "kind": self.kind,
            "source": self.source,
            "voucher": self.voucher.to_json() if self.voucher else None,
            "jti": self.jti,
            "code": self.code,
            "message": self.message,
            "used": self.used.to_json() if self.used else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Verdict":
        return cls(
            accepted=bool(data["accepted"]), reason=data.get("reason"),
            kind=data.get("kind"), source=data.get("source"),
            voucher=Voucher.from_json(data["voucher"]) if data.get("voucher") else None,
            jti=data.get("jti"), code=data.get("code"), message=data.get("message", ""),
            used=UsedToken(**data["used"]) if data.get("used") else None,
        )
