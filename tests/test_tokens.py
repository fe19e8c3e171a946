"""ES256 voucher tokens against hostile input: every refusal asserts its exact
reason, because the till shows the cashier that reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from pos_app.core import tokens
from pos_app.core.domain import Reason
from pos_app.core.tokens import TokenError


@pytest.fixture
def verify(trust, jws):
    """tokens.verify as the till calls it, at the tests' fixed time."""

    def _verify(token, *, audience=jws.retailer, now=jws.now, trust_set=trust, **kw):
        return tokens.verify(token, trust_set, audience=audience, now=now, **kw)

    return _verify


@pytest.fixture
def refused(verify):
    """The reason a token is refused with (fails the test if it is accepted)."""

    def _refused(token, **kw):
        with pytest.raises(TokenError) as err:
            verify(token, **kw)
        assert err.value.reason in Reason.ALL
        return err.value.reason

    return _refused


# --- tokens that must verify --------------------------------------------------


def test_issued_personal_token_verifies(signing_key, verify, jws):
    token = tokens.issue_personal(
        signing_key, iss="pika", aud=jws.retailer, sub="cust-9", vid="v-app", jti="jti-42",
        iat=jws.now - 5, exp=jws.now + 300,
    )
    assert tokens.looks_like_jwt(token)
    got = verify(token)
    assert got.kind == "personal"
    assert got.jti == "jti-42"
    assert got.vid == "v-app"
    assert got.kid == tokens.key_id(signing_key.public_key())
    assert got.claims["sub"] == "cust-9"
    assert got.claims["nbf"] == jws.now - 5  # nbf defaults to iat


def test_issued_static_token_verifies(signing_key, verify, jws):
    token = tokens.issue_static(
        signing_key, iss="pika", aud=jws.retailer, vid="v-print", code="COFFEE10",
        iat=jws.now - 5, exp=jws.now + 86_400,
    )
    got = verify(token)
    assert got.kind == "static"
    assert got.jti is None
    assert got.vid == "v-print"
    assert got.claims["code"] == "COFFEE10"


def test_hand_built_tokens_verify(verify, jws):
    # The builder the hostile tests use makes tokens the verifier accepts,
    # so each refusal below is caused by the one thing it changes.
    assert verify(jws.personal()).kind == "personal"
    assert verify(jws.static()).kind == "static"
    assert verify(jws.encode(jws.personal_claims(), header={"alg": "ES256", "kid": jws.kid})).jti == "jti-1"


# --- algorithm confusion -------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none"},
        {"alg": "none", "kid": "KID"},
        {"alg": "None", "kid": "KID"},
        {"alg": "NONE", "typ": "JWT"},
        {"typ": "JWT", "kid": "KID"},  # no alg at all
        {"alg": "es256", "kid": "KID"},
        {"alg": "ES384", "kid": "KID"},
        {"alg": "RS256", "kid": "KID"},
        {"alg": ["ES256"], "kid": "KID"},
    ],
)
@pytest.mark.parametrize("signature", ["", "c2lnbmF0dXJl"])
def test_alg_none_and_other_algorithms_are_bad_signature(refused, jws, header, signature):
    header = {k: (jws.kid if v == "KID" else v) for k, v in header.items()}
    token = f"{jws.b64url_json(header)}.{jws.b64url_json(jws.personal_claims())}.{signature}"
    assert refused(token) == "bad_signature"


@pytest.mark.parametrize("with_kid", [True, False])
def test_hs256_signed_with_the_public_pem_is_bad_signature(refused, jws, signing_key, with_kid):
    # The classic key-confusion attack: the public key's PEM as an HMAC secret.
    header = {"alg": "HS256", "typ": "JWT"}
    if with_kid:
        header["kid"] = jws.kid
    signing_input = f"{jws.b64url_json(header)}.{jws.b64url_json(jws.personal_claims())}"
    for secret in (tokens.public_pem(signing_key.public_key()).encode(),
                   tokens.public_pem(signing_key.public_key()).strip().encode()):
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        assert refused(f"{signing_input}.{jws.b64url(mac)}") == "bad_signature"


def test_hs256_with_a_64_byte_mac_is_still_bad_signature(refused, jws, signing_key):
    # A SHA-512 HMAC is 64 bytes, the length of an ES256 signature: the
    # header's alg must still decide, not the signature's size.
    header = {"alg": "HS512", "kid": jws.kid}
    signing_input = f"{jws.b64url_json(header)}.{jws.b64url_json(jws.personal_claims())}"
    secret = tokens.public_pem(signing_key.public_key()).encode()
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha512).digest()
    assert len(mac) == 64
    assert refused(f"{signing_input}.{jws.b64url(mac)}") == "bad_signature"


# --- key ids ---------------------------------------------------------------------


def test_unknown_kid_is_unknown_key(refused, jws, other_key):
    # A well-formed token from a key the till does not trust.
    assert refused(jws.encode(jws.personal_claims(), key=other_key,
                              header=jws.header(kid=tokens.key_id(other_key.public_key())))) == "unknown_key"
    # A made-up kid in the right shape.
    assert refused(jws.encode(jws.personal_claims(), header=jws.header(kid="AAAAAAAAAAA"))) == "unknown_key"


@pytest.mark.parametrize(
    "kid, reason",
    [
        (123, "unknown_key"),
        (None, "unknown_key"),
        (True, "unknown_key"),
        (["KID"], "unknown_key"),
        ({"kid": "KID"}, "unknown_key"),
        ("", "unknown_key"),
        ("ñandú-ключ-鍵", "unknown_key"),
        ("KID\u200b", "unknown_key"),  # the real kid with a zero-width space
        ("../../etc/passwd", "unknown_key"),
        ("..\\..\\windows", "unknown_key"),
        ("KID\x00", "unknown_key"),
        ("' OR 1=1 --", "unknown_key"),
        ("A" * 65, "unknown_key"),
        ("A" * 1_024, "malformed"),  # a header over 512 characters is refused unread
        ("A" * 10_240, "malformed"),  # a 10 KB kid makes the whole token too long
        ("MISSING", "unknown_key"),
    ],
)
def test_odd_kids(refused, jws, kid, reason):
    def real(value):
        if isinstance(value, str):
            return value.replace("KID", jws.kid)
        if isinstance(value, list):
            return [real(v) for v in value]
        if isinstance(value, dict):
            return {k: real(v) for k, v in value.items()}
        return value

    header = {"alg": "ES256", "typ": "JWT"}
    if kid != "MISSING":
        header["kid"] = real(kid)
    assert refused(jws.encode(jws.personal_claims(), header=header)) == reason


def test_kid_signed_by_another_key_is_bad_signature(refused, jws, other_key):
    # The header names the trusted key, the signature is made by another one.
    assert refused(jws.encode(jws.personal_claims(), key=other_key)) == "bad_signature"


# --- keys smuggled in headers -----------------------------------------------------


def _jwk_of(key: ec.EllipticCurvePrivateKey) -> dict:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "EC", "crv": "P-256",
        "x": base64.urlsafe_b64encode(numbers.x.to_bytes(32, "big")).rstrip(b"=").decode(),
        "y": base64.urlsafe_b64encode(numbers.y.to_bytes(32, "big")).rstrip(b"=").decode(),
    }


@pytest.mark.parametrize("name", ["jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit"])
@pytest.mark.parametrize("signer", ["trusted", "attacker"])
def test_key_carrying_headers_are_bad_signature(refused, jws, signing_key, other_key, name, signer):
    key = signing_key if signer == "trusted" else other_key
    value = {
        "jwk": _jwk_of(key),
        "jku": "https://evil.example/jwks.json",
        "x5u": "https://evil.example/cert.pem",
        "x5c": ["MIIBszCCAVmgAwIBAgIU"],
        "x5t": "dGh1bWJwcmludA",
        "x5t#S256": "dGh1bWJwcmludA",
        "crit": ["exp"],
    }[name]
    # Signed correctly over the hostile header, with the trusted key's kid:
    # the signature is valid, the header alone must get the token refused.
    token = jws.encode(jws.personal_claims(), header=jws.header(**{name: value}), key=key)
    assert refused(token) == "bad_signature"


# --- tampering ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"vid": "v-other"},
        {"jti": "jti-2"},
        {"aud": "ret-1 "},
        {"exp": 4_000_000_000},
        {"sub": "cust-2"},
        {"extra": True},
    ],
)
def test_tampered_claims_keep_no_signature(refused, jws, change):
    header_b64, _, sig_b64 = jws.personal().split(".")
    forged_payload = jws.b64url_json(jws.personal_claims(**change))
    assert refused(f"{header_b64}.{forged_payload}.{sig_b64}") == "bad_signature"


def test_tampered_header_keeps_no_signature(refused, jws):
    _, payload_b64, sig_b64 = jws.personal().split(".")
    forged_header = jws.b64url_json(jws.header(typ="JOSE"))
    assert refused(f"{forged_header}.{payload_b64}.{sig_b64}") == "bad_signature"


def test_signature_of_another_token_is_bad_signature(refused, jws):
    a = jws.personal(jti="a")
    b = jws.personal(jti="b")
    assert refused(".".join(a.split(".")[:2] + b.split(".")[2:])) == "bad_signature"


def test_flipped_signature_bits_are_bad_signature(refused, jws):
    header_b64, payload_b64, sig_b64 = jws.personal().split(".")
    sig = jws.b64url_decode(sig_b64)
    for i in (0, 17, 31, 32, 50, 63):
        bad = bytearray(sig)
        bad[i] ^= 0x01
        assert refused(f"{header_b64}.{payload_b64}.{jws.b64url(bytes(bad))}") == "bad_signature"


@pytest.mark.parametrize("part", ["r", "s"])
@pytest.mark.parametrize("value", ["zero", "order", "max"])
def test_out_of_range_signature_scalars_are_bad_signature(refused, jws, part, value):
    header_b64, payload_b64, sig_b64 = jws.personal().split(".")
    sig = jws.b64url_decode(sig_b64)
    scalar = {"zero": 0, "order": jws.p256_order, "max": 2**256 - 1}[value].to_bytes(32, "big")
    bad = scalar + sig[32:] if part == "r" else sig[:32] + scalar
    assert refused(f"{header_b64}.{payload_b64}.{jws.b64url(bad)}") == "bad_signature"


def test_ecdsa_twin_signature_is_a_valid_signature(verify, jws):
    # (r, n - s) verifies like (r, s): ECDSA is malleable. verify() accepts it;
    # the one-time rule holds through the jti (see test_verdict).
    token = jws.personal(jti="twin-me")
    twin = jws.twin(token)
    assert twin != token
    assert twin.split(".")[:2] == token.split(".")[:2]
    original, copy = verify(token), verify(twin)
    assert copy.jti == original.jti == "twin-me"
    assert dict(copy.claims) == dict(original.claims)


# --- claims ------------------------------------------------------------------------


def test_wrong_audience_is_wrong_retailer(refused, jws):
    assert refused(jws.personal(aud="ret-2")) == "wrong_retailer"
    assert refused(jws.personal(), audience="ret-2") == "wrong_retailer"
    assert refused(jws.static(aud="ret-2")) == "wrong_retailer"


@pytest.mark.parametrize("leeway", [0, 60])
def test_expiry_honours_leeway(verify, refused, jws, leeway):
    now = jws.now
    assert refused(jws.personal(exp=now - leeway), leeway=leeway) == "expired"
    assert refused(jws.personal(exp=now - leeway - 3600), leeway=leeway) == "expired"
    assert verify(jws.personal(exp=now - leeway + 1), leeway=leeway).jti == "jti-1"


def test_default_leeway_is_60_seconds(verify, refused, jws):
    assert tokens.DEFAULT_LEEWAY_S == 60
    assert verify(jws.personal(exp=jws.now - 30)).kind == "personal"  # within leeway
    assert refused(jws.personal(exp=jws.now - 61)) == "expired"  # beyond leeway
    assert refused(jws.static(exp=jws.now - 61)) == "expired"


def test_not_before_honours_leeway(verify, refused, jws):
    now = jws.now
    assert refused(jws.personal(nbf=now + 61, iat=now)) == "not_yet_valid"
    assert refused(jws.personal(nbf=now + 86_400, iat=now)) == "not_yet_valid"
    assert verify(jws.personal(nbf=now + 60, iat=now)).kind == "personal"
    assert refused(jws.personal(nbf=now + 1, iat=now), leeway=0) == "not_yet_valid"


@pytest.mark.parametrize("claim", tokens.PERSONAL_CLAIMS)
def test_each_missing_personal_claim_is_malformed(refused, jws, claim):
    claims = jws.personal_claims()
    del claims[claim]
    assert refused(jws.encode(claims)) == "malformed"


@pytest.mark.parametrize("claim", tokens.STATIC_CLAIMS)
def test_each_missing_static_claim_is_malformed(refused, jws, claim):
    claims = jws.static_claims()
    del claims[claim]
    assert refused(jws.encode(claims)) == "malformed"


@pytest.mark.parametrize(
    "change",
    [
        {"exp": "1760000600"},
        {"exp": True},
        {"exp": 1_760_000_600.5},
        {"exp": None},
        {"nbf": "0"},
        {"nbf": False},
        {"iat": [1]},
        {"aud": ["ret-1"]},
        {"aud": {"id": "ret-1"}},
        {"aud": ""},
        {"jti": 7},
        {"jti": ""},
        {"jti": "j" * 129},
        {"vid": None},
        {"sub": ["cust-1"]},
        {"iss": 1},
        {"kind": "personal"},
        {"kind": "STATIC"},
    ],
)
def test_wrong_claim_types_are_malformed(refused, jws, change):
    assert refused(jws.personal(**change)) == "malformed"


def test_static_code_claim_must_be_text(refused, jws):
    assert refused(jws.static(code=10)) == "malformed"
    assert refused(jws.static(code="")) == "malformed"


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff\xfe\xfd\x00not utf-8",
        b"\xc3\x28",
        b"not json",
        b"",
        b"[1, 2, 3]",
        b'"a string"',
        b"null",
        b"42",
    ],
)
def test_signed_but_unreadable_claims_are_malformed(refused, jws, payload):
    header_b64 = jws.b64url_json(jws.header())
    assert refused(jws.sign_parts(header_b64, jws.b64url(payload))) == "malformed"


# --- shape and size ------------------------------------------------------------------


def test_garbage_headers_are_malformed(refused, jws):
    payload_b64 = jws.b64url_json(jws.personal_claims())
    for header_b64 in (
        jws.b64url(b"\xff\xfe\xfd\xfc"),  # not UTF-8
        jws.b64url(b"\x80abc"),
        jws.b64url(b"not json"),
        jws.b64url(b"[]"),
        jws.b64url(b'"ES256"'),
        "A",  # not decodable base64 (one char past a multiple of four)
        "AAAAA",
    ):
        assert refused(jws.sign_parts(header_b64, payload_b64)) == "malformed", header_b64


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a",
        "a.b",
        "a.b.c.d",
        ".b.c",
        "a..c",
        "a b.c.d",
        "a+b.c/d.e",  # standard base64, not base64url
        "a=.b=.c=",  # padding is not allowed in JWS
        "ä.b.c",
        "\U0001F600.\U0001F600.\U0001F600",
        "x" * 100_000,
        ("A" * 50_000) + "." + ("A" * 50_000) + ".A",
    ],
)
def test_malformed_shapes(refused, token):
    assert refused(token) == "malformed"


def test_huge_valid_looking_token_is_malformed(refused, jws):
    token = jws.personal()
    header_b64, payload_b64, sig_b64 = token.split(".")
    padded = jws.personal(pad="p" * 100_000)
    assert len(padded) > 100_000
    assert refused(padded) == "malformed"
    assert refused(f"{header_b64}.{payload_b64 * 40}.{sig_b64}") == "malformed"


@pytest.mark.parametrize("bad_sig", ["A", "AAAAA", "REAL+AAA"])
def test_undecodable_signature_is_malformed(refused, jws, bad_sig):
    # base64 text one character past a multiple of four decodes to nothing.
    header_b64, payload_b64, sig_b64 = jws.personal().split(".")
    bad_sig = bad_sig.replace("REAL+", sig_b64)
    assert len(bad_sig) % 4 == 1
    assert refused(f"{header_b64}.{payload_b64}.{bad_sig}") == "malformed"


@pytest.mark.parametrize("length", [0, 1, 32, 63, 65, 72, 128])
def test_signature_of_wrong_length_is_bad_signature(refused, jws, length):
    header_b64, payload_b64, sig_b64 = jws.personal().split(".")
    sig = jws.b64url_decode(sig_b64)
    wrong = (sig * 3)[:length]
    assert refused(f"{header_b64}.{payload_b64}.{jws.b64url(wrong)}") == "bad_signature"


def test_der_encoded_signature_is_bad_signature(refused, jws, signing_key):
    # What OpenSSL produces natively; JWS ES256 wants raw r||s.
    header_b64 = jws.b64url_json(jws.header())
    payload_b64 = jws.b64url_json(jws.personal_claims())
    der = signing_key.sign(f"{header_b64}.{payload_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    assert refused(f"{header_b64}.{payload_b64}.{jws.b64url(der)}") == "bad_signature"


def test_looks_like_jwt():
    assert tokens.looks_like_jwt("a.b.c")
    assert tokens.looks_like_jwt("a.b.")
    assert not tokens.looks_like_jwt("a.b")
    assert not tokens.looks_like_jwt("COFFEE10")
    assert not tokens.looks_like_jwt("K7QF-3M2X-T")
    assert not tokens.looks_like_jwt("a.b.c" + "c" * tokens.MAX_TOKEN_LENGTH)


# --- key rotation and trust ------------------------------------------------------------


def test_key_rotation(jws, other_key):
    old, new, stranger = tokens.generate_private_key(), tokens.generate_private_key(), other_key
    trust = tokens.TrustSet.from_pems([tokens.public_pem(k.public_key()) for k in (old, new)])
    assert len(trust) == 2
    assert trust.kids() == sorted(tokens.key_id(k.public_key()) for k in (old, new))

    def issue(key, jti):
        return tokens.issue_personal(key, iss="pika", aud=jws.retailer, sub="c", vid="v",
                                     jti=jti, iat=jws.now, exp=jws.now + 60)

    assert tokens.verify(issue(old, "a"), trust, audience=jws.retailer, now=jws.now).kid == tokens.key_id(old.public_key())
    assert tokens.verify(issue(new, "b"), trust, audience=jws.retailer, now=jws.now).kid == tokens.key_id(new.public_key())
    with pytest.raises(TokenError) as err:
        tokens.verify(issue(stranger, "c"), trust, audience=jws.retailer, now=jws.now)
    assert err.value.reason == "unknown_key"
    # A key dropped from the trust set stops verifying.
    only_new = tokens.TrustSet.from_pems([tokens.public_pem(new.public_key())])
    with pytest.raises(TokenError) as err:
        tokens.verify(issue(old, "d"), only_new, audience=jws.retailer, now=jws.now)
    assert err.value.reason == "unknown_key"


def test_key_id_is_stable_and_distinct(signing_key, other_key):
    kid = tokens.key_id(signing_key.public_key())
    assert kid == tokens.key_id(signing_key.public_key())
    assert kid != tokens.key_id(other_key.public_key())
    assert tokens.TrustSet.from_pems([tokens.public_pem(signing_key.public_key())]).kids() == [kid]


def test_empty_trust_set_knows_no_key(jws):
    with pytest.raises(TokenError) as err:
        tokens.verify(jws.personal(), tokens.TrustSet(), audience=jws.retailer, now=jws.now)
    assert err.value.reason == "unknown_key"


def _pem(public_key) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.mark.parametrize(
    "make",
    [
        lambda: ec.generate_private_key(ec.SECP384R1()).public_key(),
        lambda: ec.generate_private_key(ec.SECP256K1()).public_key(),
        lambda: ed25519.Ed25519PrivateKey.generate().public_key(),
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(),
    ],
    ids=["p384", "secp256k1", "ed25519", "rsa"],
)
def test_trust_set_refuses_keys_other_than_p256(signing_key, make):
    good = tokens.public_pem(signing_key.public_key())
    with pytest.raises(ValueError, match="P-256"):
        tokens.TrustSet.from_pems([good, _pem(make())])


def test_load_private_pem_round_trip_and_refusal(signing_key):
    loaded = tokens.load_private_pem(tokens.private_pem(signing_key))
    assert tokens.key_id(loaded.public_key()) == tokens.key_id(signing_key.public_key())
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="P-256"):
        tokens.load_private_pem(p384)


def test_token_error_carries_reason_and_message():
    err = TokenError("expired", "the code has expired")
    assert isinstance(err, ValueError)
    assert err.reason == "expired"
    assert str(err) == "the code has expired"


def test_issued_header_is_es256_with_kid(signing_key, jws):
    token = tokens.issue_personal(signing_key, iss="pika", aud="r", sub="s", vid="v", jti="j",
                                  iat=1, exp=2)
    header = json.loads(jws.b64url_decode(token.split(".")[0]))
    assert header["alg"] == "ES256"
    assert header["kid"] == tokens.key_id(signing_key.public_key())
    assert not set(header) & {"jwk", "jku", "x5u", "x5c"}


# --- issuer and lifetimes (issue 14, finding 9) ------------------------------------------------------------


def test_the_issuer_is_compared_when_the_verifier_knows_it(verify, refused, jws):
    assert verify(jws.personal(), issuer=jws.issuer).kind == "personal"
    assert verify(jws.static(), issuer=jws.issuer).kind == "static"
    for other in ("pika-staging", "PIKA", "pika "):
        assert refused(jws.personal(iss=other), issuer=jws.issuer) == "bad_signature"
        assert refused(jws.static(iss=other), issuer=jws.issuer) == "bad_signature"
    # Before the verifier knows an issuer (a till whose catalog predates it), any is taken.
    assert verify(jws.personal(iss="pika-staging")).kind == "personal"


def test_another_issuer_is_refused_before_the_audience_is_looked_at(refused, jws):
    assert refused(jws.personal(iss="other", aud="ret-other"), issuer=jws.issuer) == "bad_signature"


@pytest.mark.parametrize("kind, longest", [("personal", tokens.MAX_PERSONAL_LIFETIME_S),
                                           ("static", tokens.MAX_STATIC_LIFETIME_S)])
def test_a_life_longer_than_policy_is_malformed(verify, refused, jws, kind, longest):
    make = jws.personal if kind == "personal" else jws.static
    now = jws.now
    assert verify(make(iat=now - 10, exp=now - 10 + longest)).kind == kind  # the longest we give
    assert refused(make(iat=now - 10, exp=now - 9 + longest)) == "malformed"  # a second more
    assert refused(make(iat=now - 10, exp=now + 5 * 365 * 86_400)) == "malformed"  # years ahead
    # Issued "in the future" to look short: the life left from now counts too.
    extra = {"nbf": now - 10} if kind == "personal" else {}
    assert refused(make(iat=now + 2 * longest, exp=now + 2 * longest + 60, **extra)) == "malformed"


def test_a_static_token_without_iat_is_bounded_from_now(verify, refused, jws):
    claims = jws.static_claims(exp=jws.now + tokens.MAX_STATIC_LIFETIME_S)
    del claims["iat"]
    assert verify(jws.encode(claims)).kind == "static"
    claims["exp"] += tokens.DEFAULT_LEEWAY_S + 1
    assert refused(jws.encode(claims)) == "malformed"


@pytest.mark.parametrize("change", [{"exp": tokens.MAX_TIME + 1}, {"exp": 10**30}, {"iat": -1}, {"nbf": -1},
                                    {"nbf": 10**400}, {"iat": 2**63}], ids=repr)
def test_times_outside_sane_years_are_malformed(refused, jws, change):
    assert refused(jws.personal(**change)) == "malformed"


def test_claims_nested_past_the_bound_are_malformed_whatever_python_could_parse(verify, refused, jws):
    inner = "1"
    for depth in range(2, 1400):
        inner = f"[{inner}]"
        if depth in (tokens.MAX_CLAIMS_DEPTH, tokens.MAX_CLAIMS_DEPTH + 1, 999, 1000, 1001, 1399):
            payload = json.dumps(jws.personal_claims(), separators=(",", ":"))[:-1] + f',"x":{inner}}}'
            token = jws.sign_parts(jws.b64url_json(jws.header()), jws.b64url(payload.encode()))
            if depth <= tokens.MAX_CLAIMS_DEPTH:
                assert verify(token).kind == "personal"
            elif len(token) <= tokens.MAX_TOKEN_LENGTH:
                assert refused(token) == "malformed"



@pytest.mark.parametrize("raw", [b"\t", b"\x00", b"\x1f", b"\x7f", "\u0085".encode(), "\u2028".encode(),
                                 b"\xed\xa0\x80"], ids=repr)  # the last: a surrogate written as raw UTF-8
def test_control_characters_written_raw_in_a_claim_are_malformed(refused, jws, raw):
    payload = json.dumps(jws.personal_claims(jti="JTI"), separators=(",", ":")).encode().replace(b"JTI", b"j" + raw)
    assert refused(jws.sign_parts(jws.b64url_json(jws.header()), jws.b64url(payload))) == "malformed"


def test_printable_non_ascii_claims_still_verify(verify, jws):
    assert verify(jws.personal(sub="José Ñandutí 🧉")).claims["sub"] == "José Ñandutí 🧉"
    raw = json.dumps(jws.personal_claims(sub="SUB"), separators=(",", ":")).encode().replace(b"SUB", "Ñ🧉".encode())
    assert verify(jws.sign_parts(jws.b64url_json(jws.header()), jws.b64url(raw))).claims["sub"] == "Ñ🧉"
