"""The verifier's fast paths give exactly the answers of the plain code they
replace: shape check vs the JWS regex, DER vs encode_dss_signature, the JSON
shortcut vs json.loads, and the verdict's token fast path vs clean_input."""

from __future__ import annotations

import json
import math
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from pos_app.core import tokens, verdict

_JWS_REGEX = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@given(st.text(alphabet=_ALPHABET + ".=+/ \n'?ä", max_size=40))
def test_shape_check_matches_the_jws_regex(text):
    assert tokens.looks_like_jwt(text) == (_JWS_REGEX.fullmatch(text) is not None)


@pytest.mark.parametrize("text", ["a.b.c", "a.b.", "ab.cd.ef", ".b.c", "a..c", "a.b", "a.b.c.", "..", "...",
                                  "a.b.c\n", " a.b.c", "a.b.c" + "c" * tokens.MAX_TOKEN_LENGTH])
def test_shape_check_edges(text):
    assert tokens.looks_like_jwt(text) == (len(text) <= tokens.MAX_TOKEN_LENGTH
                                           and _JWS_REGEX.fullmatch(text) is not None)


@pytest.mark.parametrize("r0", [0x00, 0x01, 0x7F, 0x80, 0xFF])
@pytest.mark.parametrize("s0", [0x00, 0x01, 0x7F, 0x80, 0xFF])
@pytest.mark.parametrize("r1", [0x00, 0x42, 0x80])
def test_der_of_raw_signature_matches_encode_dss(r0, s0, r1):
    r = bytes([r0, r1]) + bytes(range(30))
    s = bytes([s0]) + bytes(range(31, 0, -1))
    raw = r + s
    assert tokens._der_signature(raw) == encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))


@pytest.mark.parametrize("text", ['{"a":1}', ' {"a":1}', '{"a":1} ', '\n{"a": [1, 2]}\t', "[1]", '"x"', "1",
                                  "NaN", "{}", '{"a":1}{', "", " ", "{", '{"a":1} x', '{"a":"\\u00e9"}'])
def test_json_shortcut_matches_json_loads(text):
    try:
        expected = json.loads(text)
    except ValueError:
        with pytest.raises(ValueError):
            tokens._json_value(text)
        return
    got = tokens._json_value(text)
    assert got == expected or (math.isnan(got) and math.isnan(expected))


def test_payload_with_whitespace_around_its_json_still_verifies(jws):
    # Not what the backend issues, but a valid JWS: the fast path falls back.
    payload = " " + json.dumps(jws.personal_claims()) + "\n"
    token = jws.sign_parts(jws.b64url_json(jws.header()), jws.b64url(payload.encode()))
    got = tokens.verify(token, tokens.TrustSet({jws.kid: jws.key.public_key()}), audience=jws.retailer, now=jws.now)
    assert got.jti == "jti-1"


def test_token_fast_path_reads_like_the_cleaned_input(trust, jws):
    ctx = verdict.Context(trust=trust, retailer_id=jws.retailer, store_id="store-1", now=jws.now, day="2025-10-09")
    token = jws.personal()
    for variant in (token, f"  {token}\n", token.encode()):
        reading = verdict.read(variant, ctx)
        assert reading.refusal is None and reading.text == token
        assert reading.token.jti == "jti-1" and reading.token.kind == "personal"


def test_signatures_of_every_der_shape_verify(trust, jws):
    # Real signatures whose r or s has its top bit set or a leading zero octet
    # (about 1 in 128): each DER shape reaches OpenSSL and verifies.
    seen = set()
    for i in range(4000):
        token = jws.personal(jti=f"j{i}")
        sig = jws.b64url_decode(token.rsplit(".", 1)[1])
        shape = tuple("zero" if b == 0 else "high" if b > 0x7F else "low" for b in (sig[0], sig[32]))
        if shape in seen:
            continue
        seen.add(shape)
        assert tokens.verify(token, trust, audience=jws.retailer, now=jws.now).jti == f"j{i}"
        if any("zero" in s for s in seen) and len(seen) >= 5:
            break
    assert {("low", "low"), ("high", "low"), ("low", "high"), ("high", "high")} <= seen
    assert any("zero" in s for s in seen)
