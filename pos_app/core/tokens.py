"""Signed voucher tokens: ES256 JWTs issued by the backend, verified by tills.

Verification trusts nothing the token says about how to verify it: the
algorithm is ES256 or nothing, the key is picked by `kid` from the till's own
trust set, and headers that carry keys or key URLs are refused outright.
Time is passed in, so a till can correct for a known clock skew.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

MAX_TOKEN_LENGTH = 4096
DEFAULT_LEEWAY_S = 60
_ALGORITHM = "ES256"
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
# Headers through which a token could smuggle its own key or point at one.
_KEY_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit"})
_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_KID_SHAPE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

PERSONAL_CLAIMS = ("iss", "aud", "sub", "vid", "jti", "iat", "nbf", "exp")
STATIC_CLAIMS = ("iss", "aud", "vid", "code", "kind", "exp")


class TokenError(ValueError):
    """A token that must be refused; `reason` is a verdict reason code."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """Claims of a token whose signature, shape and times were checked."""

    kind: str  # "personal" or "static"
    claims: Mapping[str, object]
    kid: str

    @property
    def vid(self) -> str:
        return str(self.claims["vid"])

    @property
    def jti(self) -> str | None:
        jti = self.claims.get("jti")
        return str(jti) if self.kind == "personal" else None


def looks_like_jwt(text: str) -> bool:
    """True for text of the JWS compact shape (three base64url parts)."""
    return len(text) <= MAX_TOKEN_LENGTH and _JWT_SHAPE.match(text) is not None


# --- keys -------------------------------------------------------------------


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """A short, stable id for a public key: its SPKI SHA-256, 64 bits, base64url."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:8]).rstrip(b"=").decode()


def public_pem(public_key: ec.EllipticCurvePublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def private_pem(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_pem(data: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("the signing key must be an EC P-256 private key")
    return key


class TrustSet:
    """The public keys a till accepts, by `kid`. Rotation = several keys."""

    def __init__(self, keys: Mapping[str, ec.EllipticCurvePublicKey] | None = None):
        self._keys: dict[str, ec.EllipticCurvePublicKey] = dict(keys or {})

    @classmethod
    def from_pems(cls, pems: Iterable[str]) -> "TrustSet":
        keys = {}
        for pem in pems:
            key = serialization.load_pem_public_key(pem.encode())
            if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
                raise ValueError("trusted keys must be EC P-256 public keys")
            keys[key_id(key)] = key
        return cls(keys)

    def get(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        return self._keys.get(kid)

    def kids(self) -> list[str]:
        return sorted(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


# --- issuing (backend only: it holds the private key) ------------------------


def _sign(claims: dict, private_key: ec.EllipticCurvePrivateKey) -> str:
    # Imported here: PyJWT's package import pulls in urllib.request and
    # http.client, and the core (and every till importing it) stays HTTP-free.
    import jwt

    kid = key_id(private_key.public_key())
    return jwt.encode(claims, private_key, algorithm=_ALGORITHM, headers={"kid": kid})


def issue_personal(
    private_key: ec.EllipticCurvePrivateKey,
    *,
    iss: str,
    aud: str,
    sub: str,
    vid: str,
    jti: str,
    iat: int,
    exp: int,
    nbf: int | None = None,
) -> str:
    """A customer's one-time token for one claim of a voucher."""
    claims = {
        "iss": iss, "aud": aud, "sub": sub, "vid": vid, "jti": jti,
        "iat": int(iat), "nbf": int(iat if nbf is None else nbf), "exp": int(exp),
    }
    return _sign(claims, private_key)


def issue_static(
    private_key: ec.EllipticCurvePrivateKey,
    *,
    iss: str,
    aud: str,
    vid: str,
    code: str,
    iat: int,
    exp: int,
) -> str:
    """The token printed as a booklet QR: shared, reusable, no `jti`."""
    claims = {
        "iss": iss, "aud": aud, "kind": "static", "code": code, "vid": vid,
        "iat": int(iat), "exp": int(exp),
    }
    return _sign(claims, private_key)


# --- verifying ---------------------------------------------------------------


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@lru_cache(maxsize=64)
def _header_kid(header_b64: str) -> str:
    """The `kid` of an acceptable header, or TokenError. Cached: a key's
    tokens all share one header, and this runs on every scan."""
    try:
        header = json.loads(_b64decode(header_b64))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenError("malformed", "unreadable token header") from exc
    if not isinstance(header, dict):
        raise TokenError("malformed", "unreadable token header")
    if header.get("alg") != _ALGORITHM:
        raise TokenError("bad_signature", "only ES256 signatures are accepted")
    if _KEY_HEADERS.intersection(header):
        raise TokenError("bad_signature", "tokens may not carry keys or key locations")
    kid = header.get("kid")
    if not isinstance(kid, str) or not _KID_SHAPE.match(kid):
        raise TokenError("unknown_key", "the token names no usable key")
    return kid


def verify(
    token: str,
    trust: TrustSet,
    *,
    audience: str,
    now: float,
    leeway: float = DEFAULT_LEEWAY_S,
) -> VerifiedToken:
    """Check a token fully or raise TokenError with the verdict reason."""
    if not looks_like_jwt(token):
        raise TokenError("malformed", "not a token")
    header_b64, payload_b64, sig_b64 = token.split(".")
    if len(header_b64) > 512:
        raise TokenError("malformed", "unreadable token header")
    kid = _header_kid(header_b64)
    key = trust.get(kid)
    if key is None:
        raise TokenError("unknown_key", "the token is signed with a key this till does not know")
    try:
        signature = _b64decode(sig_b64)
    except ValueError as exc:  # e.g. one character past a multiple of four
        raise TokenError("malformed", "unreadable token signature") from exc
    # JWS carries ES256 as raw r||s (RFC 7518 3.4); OpenSSL wants DER.
    if len(signature) != 64:
        raise TokenError("bad_signature", "the signature does not match")
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        key.verify(der, f"{header_b64}.{payload_b64}".encode(), _ECDSA_SHA256)
    except InvalidSignature as exc:
        raise TokenError("bad_signature", "the signature does not match") from exc
    try:
        claims = json.loads(_b64decode(payload_b64).decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenError("malformed", "unreadable token claims") from exc
    if not isinstance(claims, dict):
        raise TokenError("malformed", "unreadable token claims")
    return VerifiedToken(_check_claims(claims, audience, now, leeway), claims, kid)


def _check_claims(claims: dict, audience: str, now: float, leeway: float) -> str:
    kind = "static" if claims.get("kind") == "static" else "personal"
    if "kind" in claims and kind != "static":
        raise TokenError("malformed", "unknown token kind")
    required = STATIC_CLAIMS if kind == "static" else PERSONAL_CLAIMS
    for name in required:
        if name not in claims:
            raise TokenError("malformed", f"the token lacks the {name} claim")
    for name in ("iss", "aud", "vid") + (("code",) if kind == "static" else ("sub", "jti")):
        value = claims[name]
        if not isinstance(value, str) or not value or len(value) > 128:
            raise TokenError("malformed", f"the {name} claim is not a short text")
    for name in ("iat", "nbf", "exp"):
        if name in claims and not _is_int(claims[name]):
            raise TokenError("malformed", f"the {name} claim is not a whole number")
    if claims["aud"] != audience:
        raise TokenError("wrong_retailer", "the voucher is for another retailer")
    if "nbf" in claims and now + leeway < claims["nbf"]:
        raise TokenError("not_yet_valid", "the code is not valid yet")
    if now - leeway >= claims["exp"]:
        raise TokenError("expired", "the code has expired")
    return kind
