"""Staff PINs, stored only as salted slow hashes so a till can check them offline;
and the proof that a manager typed their PIN at a till, which a till holding only
those hashes cannot make without first guessing the PIN.

Two derivations of one PIN, each with its own salt: the *check hash* (tills hold
it, to log staff in offline) and the *proof key* (the backend keeps it and tills
never receive it; they get only its salt). A till where the manager types the PIN
derives the proof key and MACs what it records with it (`void_proof`); the
backend, holding the key, checks the MAC (`check_void_proof`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Iterable

_ITERATIONS = 120_000
_SCHEME = "pbkdf2_sha256"
# A second derivation must not be the first one's result under another name:
# its own salt, and a label in the PBKDF2 salt, keep them unrelated.
_PROOF_LABEL = b"pika-void-proof\x00"
MIN_DIGITS = 4
# Managers and admins void, read every report and manage a store: a 4-digit PIN
# falls to one core in minutes from a stolen till's hashes (10,000 guesses).
MIN_DIGITS_BY_ROLE = {"manager": 6, "admin": 6}
MAX_DIGITS = 12


def valid_pin(pin: str) -> bool:
    return isinstance(pin, str) and pin.isascii() and pin.isdigit() and MIN_DIGITS <= len(pin) <= MAX_DIGITS


def min_digits(role: str | None) -> int:
    """The fewest digits a PIN of this role may have."""
    return MIN_DIGITS_BY_ROLE.get(role or "", MIN_DIGITS)


def valid_pin_for_role(pin: str, role: str | None) -> bool:
    return valid_pin(pin) and len(pin) >= min_digits(role)


def hash_pin(pin: str) -> str:
    if not valid_pin(pin):
        raise ValueError("a PIN is 4 to 12 digits")
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, _ITERATIONS)
    return "$".join((_SCHEME, str(_ITERATIONS), _b64(salt), _b64(digest)))


def check_pin(pin: str, stored: str) -> bool:
    """True if the PIN matches the stored hash; False for anything malformed."""
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != _SCHEME or not valid_pin(pin):
            return False
        rounds = int(iterations)
        if not 1_000 <= rounds <= 10_000_000:
            return False
        actual = hashlib.pbkdf2_hmac("sha256", pin.encode(), _unb64(salt), rounds)
        expected = _unb64(digest)
    except (ValueError, AttributeError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# --- the proof key --------------------------------------------------------------------


def new_proof_salt() -> str:
    """A fresh salt for a PIN's proof key (sent to tills; not secret)."""
    return "$".join((_SCHEME, str(_ITERATIONS), _b64(secrets.token_bytes(16))))


def proof_key(pin: str, proof_salt: str) -> bytes:
    """The PIN's second derivation under `proof_salt`; ValueError for a bad PIN or salt."""
    if not valid_pin(pin):
        raise ValueError("a PIN is 4 to 12 digits")
    try:
        scheme, iterations, salt = proof_salt.split("$")
        rounds = int(iterations)
        raw_salt = _unb64(salt)
    except (ValueError, AttributeError, TypeError) as exc:
        raise ValueError("not a proof salt") from exc
    if scheme != _SCHEME or not 1_000 <= rounds <= 10_000_000 or len(raw_salt) < 8:
        raise ValueError("not a proof salt")
    return hashlib.pbkdf2_hmac("sha256", pin.encode(), _PROOF_LABEL + raw_salt, rounds)


def encode_key(key: bytes) -> str:
    """A proof key as the backend stores it."""
    return _b64(key)


def decode_key(text: str) -> bytes | None:
    try:
        key = _unb64(text)
    except (ValueError, TypeError, AttributeError):
        return None
    return key if len(key) == 32 else None


def _message(fields: Iterable[object]) -> bytes:
    # Each field's length first, so no two field lists give the same bytes.
    parts = [str(field).encode("utf-8", "surrogatepass") for field in fields]
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def void_proof(key: bytes, *, void_key: str, redemption_key: str, staff_id: str, at: float, reason: str) -> str:
    """The MAC a till puts on a void its manager made there (hex)."""
    return hmac.new(key, _message(("void", void_key, redemption_key, staff_id, repr(float(at)), reason)),
                    hashlib.sha256).hexdigest()


def check_void_proof(key: bytes | None, proof: object, *, void_key: str, redemption_key: str, staff_id: str,
                     at: float, reason: str) -> bool:
    """True if `proof` is the MAC `void_proof` makes with this key over these fields."""
    if key is None or not isinstance(proof, str) or len(proof) != 64:
        return False
    expected = void_proof(key, void_key=void_key, redemption_key=redemption_key, staff_id=staff_id, at=at,
                          reason=reason)
    return hmac.compare_digest(expected, proof)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
