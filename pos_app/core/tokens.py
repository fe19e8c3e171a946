"""Signed voucher tokens: ES256 JWTs issued by the backend, verified by tills.

Verification trusts nothing the token says about how to verify it: the
algorithm is ES256 or nothing, the key is picked by `kid` from the till's own
trust set, and headers that carry keys or key URLs are refused outright.
Time is passed in, so a till can correct for a known clock skew.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from functools import lru_cache
from typing import Iterable, Mapping, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

MAX_TOKEN_LENGTH = 4096
DEFAULT_LEEWAY_S = 60
# The longest life a token of ours may claim (exp − iat, and exp − now): the
# backend issues within these (server_stub/operations/vouchers.py), so a
# token past them was not made by our rules, key or no key.
MAX_PERSONAL_LIFETIME_S = 90 * 24 * 3600  # a customer's claim (vouchers' claim_ttl_s are cut to this)
MAX_STATIC_LIFETIME_S = 400 * 24 * 3600  # a booklet's printed QR
# Times a token may name: from 1970 to the end of 9999. Beyond, arithmetic on
# them overflows a float, and no voucher lives there.
MAX_TIME = 253_402_300_799
# Claims are flat; a value may hold a little structure, no more. Deeper
# nesting is refused whatever the interpreter could parse, so the verdict does
# not depend on its recursion limit.
MAX_CLAIMS_DEPTH = 8
_ALGORITHM = "ES256"
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
# Headers through which a token could smuggle its own key or point at one.
_KEY_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit"})
# Deleting the base64url alphabet from a token's bytes must leave exactly its
# two dots: one C pass instead of a regex over ~330 characters.
_B64URL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_URL_TO_STD = bytes.maketrans(b"-_", b"+/")
_PAD = (b"", b"", b"==", b"=")  # by length mod 4; 1 is undecodable whatever the padding
_KID_SHAPE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# json.loads minus its Python wrapper (whitespace regexes); see _json_value.
_scan_json = json.JSONDecoder().scan_once

PERSONAL_CLAIMS = ("iss", "aud", "sub", "vid", "jti", "iat", "nbf", "exp")
STATIC_CLAIMS = ("iss", "aud", "vid", "code", "kind", "exp")
_PERSONAL_TEXTS = ("iss", "aud", "vid", "sub", "jti")
_STATIC_TEXTS = ("iss", "aud", "vid", "code")
_TIME_CLAIMS = ("iat", "nbf", "exp")


class TokenError(ValueError):
    """A token that must be refused; `reason` is a verdict reason code."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class VerifiedToken(NamedTuple):
    """Claims of a token whose signature, shape and times were checked.

    A NamedTuple rather than a frozen dataclass: just as immutable, and made
    in a third of the time on the scan path."""

    kind: str  # "personal" or "static"
    claims: Mapping[str, object]
    kid: str

    @property
    def vid(self) -> str:
        return self.claims["vid"]  # checked to be a short text

    @property
    def jti(self) -> str | None:
        return self.claims["jti"] if self.kind == "personal" else None  # checked likewise


def looks_like_jwt(text: str) -> bool:
    """True for text of the JWS compact shape (three base64url parts)."""
    return jws_bytes(text) is not None


def jws_bytes(text: str) -> bytes | None:
    """The token's ASCII bytes if `text` has the JWS compact shape (base64url
    header and payload, non-empty, and signature, joined by two dots), else None.
    Such text is printable, has no spaces and nothing a scanner's keyboard
    layout garbles, so a verdict can verify it as it came."""
    if len(text) > MAX_TOKEN_LENGTH or not text.isascii():
        return None
    raw = text.encode("ascii")
    if raw.translate(None, _B64URL) != b"..":
        return None
    first_dot = raw.find(b".")
    if first_dot == 0 or raw[first_dot + 1] == 0x2E:  # empty header or payload
        return None
    return raw


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
# This runs on every scan at the till and on every online redemption at the
# backend, so it is written for speed (measured: bench/till_verdict.py): work
# on the token's bytes once, no regex over the whole token, one C call per
# base64 part, the header parsed once per distinct header.


def _b64decode(part: str | bytes) -> bytes:
    """base64url without padding; ValueError if it cannot be decoded."""
    if isinstance(part, str):
        part = part.encode("ascii")
    return binascii.a2b_base64(part.translate(_URL_TO_STD) + _PAD[len(part) & 3])


@lru_cache(maxsize=64)
def _header_kid(header_b64: bytes) -> str:
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


# DER (what OpenSSL verifies) of a JWS signature r||s whose halves have no
# leading zero octet, by whether each half has its top bit set (then DER
# prepends a zero octet to keep the INTEGER positive): SEQUENCE header and
# r's INTEGER header, then s's INTEGER header.
_DER_HEADS = {
    (False, False): (b"\x30\x44\x02\x20", b"\x02\x20"),
    (True, False): (b"\x30\x45\x02\x21\x00", b"\x02\x20"),
    (False, True): (b"\x30\x45\x02\x20", b"\x02\x21\x00"),
    (True, True): (b"\x30\x46\x02\x21\x00", b"\x02\x21\x00"),
}


def _der_signature(raw: bytes) -> bytes:
    """The DER form of a 64-byte JWS ES256 signature (RFC 7518 3.4: raw r||s)."""
    r, s = raw[:32], raw[32:]
    if r[0] and s[0]:  # 254 in 256 signatures: fixed-size INTEGERs
        head, mid = _DER_HEADS[r[0] > 0x7F, s[0] > 0x7F]
        return head + r + mid + s
    # Leading zero octets (or a zero scalar, which OpenSSL then refuses).
    return encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))


def _json_value(text: str) -> object:
    """json.loads(text). The common case, a token's JSON with no whitespace
    around it, goes straight to the C scanner; anything else (whitespace,
    errors) takes json.loads for its exact rules and messages."""
    try:
        value, end = _scan_json(text, 0)
    except (StopIteration, ValueError):
        end = -1
    if end != len(text):
        value = json.loads(text)
    return value


def verify(
    token: str,
    trust: TrustSet,
    *,
    audience: str,
    now: float,
    leeway: float = DEFAULT_LEEWAY_S,
    issuer: str | None = None,
) -> VerifiedToken:
    """Check a token fully or raise TokenError with the verdict reason.

    `issuer`: the `iss` a token must name (`bad_signature` otherwise: our
    keys vouch for our issuer's tokens only); None skips the check."""
    raw = jws_bytes(token)
    if raw is None:
        raise TokenError("malformed", "not a token")
    return verify_jws(raw, trust, audience=audience, now=now, leeway=leeway, issuer=issuer)


def verify_jws(
    raw: bytes,
    trust: TrustSet,
    *,
    audience: str,
    now: float,
    leeway: float = DEFAULT_LEEWAY_S,
    issuer: str | None = None,
) -> VerifiedToken:
    """`verify` for a token already through `jws_bytes` (pass only its result)."""
    signing_input, _, sig_b64 = raw.rpartition(b".")
    header_b64, _, payload_b64 = signing_input.partition(b".")
    if len(header_b64) > 512:
        raise TokenError("malformed", "unreadable token header")
    kid = _header_kid(header_b64)
    key = trust.get(kid)
    if key is None:
        raise TokenError("unknown_key", "the token is signed with a key this till does not know")
    try:  # _b64decode, inlined here and below: a Python call is a tenth of the work
        signature = binascii.a2b_base64(sig_b64.translate(_URL_TO_STD) + _PAD[len(sig_b64) & 3])
    except ValueError as exc:  # e.g. one character past a multiple of four
        raise TokenError("malformed", "unreadable token signature") from exc
    if len(signature) != 64:
        raise TokenError("bad_signature", "the signature does not match")
    try:
        key.verify(_der_signature(signature), signing_input, _ECDSA_SHA256)
    except InvalidSignature as exc:
        raise TokenError("bad_signature", "the signature does not match") from exc
    try:
        payload = binascii.a2b_base64(payload_b64.translate(_URL_TO_STD) + _PAD[len(payload_b64) & 3])
        claims = _json_value(payload.decode())
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nested ~1000 deep
        raise TokenError("malformed", "unreadable token claims") from exc
    if not isinstance(claims, dict):
        raise TokenError("malformed", "unreadable token claims")
    # Flat claims (no "[" and no "{" but the first) need no walk: the common case.
    # (bytes.find, not `in`: a fifth of the time for one byte.)
    if (payload.find(b"[") >= 0 or payload.find(b"{", 1) >= 0) and _depth(claims) > MAX_CLAIMS_DEPTH:
        raise TokenError("malformed", "the token's claims are nested too deep")
    # JSON refuses raw control characters in strings, so claims written in
    # ASCII with no escape and no DEL hold printable texts only: the common
    # case skips a str.isprintable() per text claim.
    plain = payload.find(b"\\") < 0 and payload.find(b"\x7f") < 0 and payload.isascii()
    return VerifiedToken(_check_claims(claims, audience, now, leeway, issuer, plain), claims, kid)


def _depth(value: object) -> int:
    """How deep objects and lists nest in a parsed JSON value (a flat object is 1); no recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if item.__class__ is dict:
            item = item.values()
        elif item.__class__ is not list:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in item)
    return deepest


def _check_claims(claims: dict, audience: str, now: float, leeway: float, issuer: str | None = None,
                  plain: bool = False) -> str:
    if "kind" in claims:
        if claims["kind"] != "static":
            raise TokenError("malformed", "unknown token kind")
        kind, required, texts = "static", STATIC_CLAIMS, _STATIC_TEXTS
    else:
        kind, required, texts = "personal", PERSONAL_CLAIMS, _PERSONAL_TEXTS
    for name in required:
        if name not in claims:
            raise TokenError("malformed", f"the token lacks the {name} claim")
    # Exact type tests: json.loads makes no subclasses, and a bool must not
    # pass for a time (so `type is int`, not isinstance). isprintable() refuses
    # what no store or answer could hold: a lone surrogate (from a JSON \u
    # escape), a NUL, control characters.
    for name in texts:
        value = claims[name]
        if value.__class__ is not str or not 0 < len(value) <= 128 or not (plain or value.isprintable()):
            raise TokenError("malformed", f"the {name} claim is not a short text")
    for name in _TIME_CLAIMS:
        value = claims.get(name, 0)
        if value.__class__ is not int or not 0 <= value <= MAX_TIME:
            raise TokenError("malformed", f"the {name} claim is not a time")
    # The issuer before the audience: another issuer's token says nothing about our retailers.
    if issuer is not None and claims["iss"] != issuer:
        raise TokenError("bad_signature", "the token is from another issuer")
    if claims["aud"] != audience:
        raise TokenError("wrong_retailer", "the voucher is for another retailer")
    nbf = claims.get("nbf")
    if nbf is not None and now + leeway < nbf:
        raise TokenError("not_yet_valid", "the code is not valid yet")
    exp = claims["exp"]
    # A life longer than we give, counted from issue or from now (a static
    # token need not say when it was issued).
    longest = MAX_STATIC_LIFETIME_S if kind == "static" else MAX_PERSONAL_LIFETIME_S
    if exp - claims.get("iat", exp) > longest or exp - now > longest + leeway:
        raise TokenError("malformed", "the token claims a longer life than any of ours")
    if now - leeway >= exp:
        raise TokenError("expired", "the code has expired")
    return kind
