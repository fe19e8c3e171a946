"""The suite's root: the plugins every test module gets (strictness, fixture
modules), and the token fixtures: signing keys, a till's trust set, and a
hand-made JWS builder, so hostile tokens (odd headers, bad claims) can be
signed for real."""

from __future__ import annotations

import os

# Qt widgets in tests draw offscreen, with or without a display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import base64  # noqa: E402
import json

import pytest
from hypothesis import settings
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from pos_app.core import tokens

# Registered once for every test module (and for x11_scanner_inner.py, which
# runs in a pytest of its own from this folder): the suite's strictness
# (strict_checks) and the fixture modules, so a test names the fixture it needs
# and nothing imports it. The other *_fixtures.py modules hold helpers only,
# imported where they are used; pytester runs strict_checks on tests of its own.
pytest_plugins = ["pytester", "strict_checks", "api_fixtures", "gui_fixtures", "pg_fixtures", "console_fixtures"]

# CI runs the same examples every time, so a red run is never a roll of the
# dice; property tests still explore freely on a developer's machine.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# A fixed "now" for every core test: the rules take time as an argument.
NOW = 1_760_000_000
RETAILER = "ret-1"
STORE = "store-1"
ISSUER = "pika"
# The order of the P-256 group (SEC 2, secp256r1 "n").
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(obj: object) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def es256_raw(private_key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """A JWS ES256 signature: raw r||s, 32 bytes each."""
    r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class JWS:
    """Builds compact tokens by hand, valid or hostile, with the test keys.

    Test modules reach the shared constants and helpers through this fixture
    (`jws.now`, `jws.twin(...)`), never by importing conftest."""

    now = NOW
    retailer = RETAILER
    store = STORE
    issuer = ISSUER
    p256_order = P256_ORDER
    b64url = staticmethod(b64url)
    b64url_json = staticmethod(b64url_json)
    b64url_decode = staticmethod(b64url_decode)
    es256_raw = staticmethod(es256_raw)

    def __init__(self, key: ec.EllipticCurvePrivateKey):
        self.key = key
        self.kid = tokens.key_id(key.public_key())

    def personal_claims(self, **overrides) -> dict:
        claims = {
            "iss": ISSUER, "aud": RETAILER, "sub": "cust-1", "vid": "v-app",
            "jti": "jti-1", "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 600,
        }
        claims.update(overrides)
        return claims

    def static_claims(self, **overrides) -> dict:
        claims = {
            "iss": ISSUER, "aud": RETAILER, "kind": "static", "code": "COFFEE10",
            "vid": "v-print", "iat": NOW - 10, "exp": NOW + 86_400,
        }
        claims.update(overrides)
        return claims

    def header(self, **overrides) -> dict:
        header = {"alg": "ES256", "typ": "JWT", "kid": self.kid}
        header.update(overrides)
        return header

    def sign_parts(self, header_b64: str, payload_b64: str, key=None) -> str:
        """header.payload.signature, signed with ES256 over exactly these parts."""
        signing_input = f"{header_b64}.{payload_b64}".encode()
        return f"{header_b64}.{payload_b64}.{b64url(es256_raw(key or self.key, signing_input))}"

    def encode(self, claims: dict, header: dict | None = None, key=None) -> str:
        return self.sign_parts(b64url_json(self.header() if header is None else header),
                               b64url_json(claims), key)

    def personal(self, **overrides) -> str:
        return self.encode(self.personal_claims(**overrides))

    def static(self, **overrides) -> str:
        return self.encode(self.static_claims(**overrides))

    @staticmethod
    def twin(token: str) -> str:
        return twin(token)


def twin(token: str) -> str:
    """The same token with its ECDSA signature (r, s) replaced by (r, n - s)."""
    header_b64, payload_b64, sig_b64 = token.split(".")
    sig = b64url_decode(sig_b64)
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    other = r.to_bytes(32, "big") + (P256_ORDER - s).to_bytes(32, "big")
    return f"{header_b64}.{payload_b64}.{b64url(other)}"


@pytest.fixture(scope="session")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return tokens.generate_private_key()


@pytest.fixture(scope="session")
def other_key() -> ec.EllipticCurvePrivateKey:
    """A second P-256 key the trust set does not hold."""
    return tokens.generate_private_key()


@pytest.fixture(scope="session")
def trust(signing_key) -> tokens.TrustSet:
    return tokens.TrustSet.from_pems([tokens.public_pem(signing_key.public_key())])


@pytest.fixture(scope="session")
def jws(signing_key) -> JWS:
    return JWS(signing_key)
