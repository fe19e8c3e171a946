"""Staff PINs, stored only as salted slow hashes so a till can check them offline."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_ITERATIONS = 120_000
_SCHEME = "pbkdf2_sha256"


def valid_pin(pin: str) -> bool:
    return isinstance(pin, str) and pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 12


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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
