"""Short codes a person can read aloud and type: Crockford base32 with a check.

A code is 8 random symbols plus one check symbol, shown grouped as
``K7QF-3M2X-T``. The check symbol is a weighted sum over GF(32): every
position has its own non-zero weight, so any single wrong symbol and any
swap of two symbols is caught, without looking the code up anywhere.
"""

from __future__ import annotations

import hashlib
import secrets
from functools import lru_cache

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BODY_LENGTH = 8
CODE_LENGTH = BODY_LENGTH + 1
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
# What people type for what they mean (Crockford's decoding rules).
_FORGIVE = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = str.maketrans("", "", " -\t\u00a0\u2010\u2011\u2012\u2013\u2014_")

# GF(32) with the primitive polynomial x^5 + x^2 + 1.
_EXP = [0] * 62
_LOG = [0] * 32
_x = 1
for _i in range(31):
    _EXP[_i] = _x
    _LOG[_x] = _i
    _x <<= 1
    if _x & 0x20:
        _x ^= 0b100101
for _i in range(31, 62):
    _EXP[_i] = _EXP[_i - 31]


def _mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


class ShortCodeError(ValueError):
    """A text that is not a valid short code; `reason` says why."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def check_symbol(body: str) -> str:
    """The check symbol that makes ``body + check`` weigh zero."""
    total = 0
    for i, ch in enumerate(body):
        total ^= _mul(_EXP[i], _VALUE[ch])
    # The check sits at position len(body) with weight alpha^len(body).
    weight_inv = _EXP[(31 - len(body)) % 31]
    return ALPHABET[_mul(total, weight_inv)]


def new_short_code() -> str:
    """A fresh random short code (40 bits), canonical and ungrouped."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return body + check_symbol(body)


# A claim's short code reaches tills only as this digest: a till must recognise
# a code a customer shows, but a stolen till must not hand out every customer's
# codes (each one is enough to redeem). 40 bits of code, a per-retailer salt and
# 20,000 PBKDF2 rounds (~6 ms here, once per typed code) put all of a retailer's
# codes weeks of a GPU away.
CLAIM_DIGEST_ROUNDS = 20_000
_CLAIM_DIGEST_LABEL = b"pika-claim\x00"


@lru_cache(maxsize=256)
def claim_digest(code: str, retailer_id: str) -> str:
    """The digest by which tills know a claim's canonical short code (32 hex digits). Remembered for the
    last codes asked, so a till can work it out before it takes its store's write lock."""
    salt = _CLAIM_DIGEST_LABEL + retailer_id.encode("utf-8", "surrogatepass")
    return hashlib.pbkdf2_hmac("sha256", code.encode("ascii"), salt, CLAIM_DIGEST_ROUNDS)[:16].hex()


def format_short_code(code: str) -> str:
    """Group a canonical code for people: ``K7QF-3M2X-T``."""
    return f"{code[0:4]}-{code[4:8]}-{code[8:]}"


def normalize(text: str) -> str:
    """Fold what people type (case, spaces, dashes, O/0, I/L/1) to canonical form."""
    return text.translate(_SEPARATORS).upper().translate(_FORGIVE)


def looks_like_short_code(text: str) -> bool:
    """True if the text has the shape of a short code, whether or not its check holds."""
    canon = normalize(text)
    return len(canon) == CODE_LENGTH and all(ch in _VALUE for ch in canon)


def parse_short_code(text: str) -> str:
    """Canonical code for typed text, or ShortCodeError (`malformed` / `mistyped`)."""
    if len(text) > 64:
        raise ShortCodeError("malformed", "too long for a short code")
    canon = normalize(text)
    if len(canon) != CODE_LENGTH or any(ch not in _VALUE for ch in canon):
        raise ShortCodeError("malformed", "a short code has 9 letters and digits")
    if check_symbol(canon[:BODY_LENGTH]) != canon[BODY_LENGTH]:
        raise ShortCodeError("mistyped", "the check symbol does not match: a symbol was mistyped")
    return canon
