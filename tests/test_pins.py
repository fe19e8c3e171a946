"""Staff PINs: stored only as salted slow hashes, checked offline, and a
damaged stored hash is a failed login, never a crash."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pos_app.core import pins


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def stored_1234() -> str:
    return pins.hash_pin("1234")


def test_hash_and_check_round_trip(stored_1234):
    assert pins.check_pin("1234", stored_1234) is True
    long_pin = "0" * 12
    assert pins.check_pin(long_pin, pins.hash_pin(long_pin)) is True


def test_hash_is_salted_slow_and_does_not_hold_the_pin(stored_1234):
    scheme, rounds, salt, digest = stored_1234.split("$")
    assert scheme == "pbkdf2_sha256"
    assert int(rounds) >= 100_000
    assert len(base64.urlsafe_b64decode(salt + "==")) == 16
    again = pins.hash_pin("1234")
    assert again != stored_1234  # fresh salt every time
    assert pins.check_pin("1234", again)


@pytest.mark.parametrize("pin", ["1235", "4321", "12345", "123", "01234", "", " 1234", "1234 ", "abcd"])
def test_wrong_pin_is_refused(stored_1234, pin):
    assert pins.check_pin(pin, stored_1234) is False


def test_hash_with_other_rounds_in_range_is_checked():
    # A stored hash records its own rounds, so a changed default keeps old hashes valid.
    salt = b"0123456789abcdef"
    digest = hashlib.pbkdf2_hmac("sha256", b"2468", salt, 1_000)
    stored = f"pbkdf2_sha256$1000${_b64(salt)}${_b64(digest)}"
    assert pins.check_pin("2468", stored) is True
    assert pins.check_pin("2469", stored) is False


def _with_rounds(rounds: str) -> str:
    salt = b"0123456789abcdef"
    digest = hashlib.pbkdf2_hmac("sha256", b"2468", salt, 1_000)
    return f"pbkdf2_sha256${rounds}${_b64(salt)}${_b64(digest)}"


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "$",
        "$$$",
        "$$$$",
        "1234",
        "pbkdf2_sha256",
        "pbkdf2_sha256$1000",
        "pbkdf2_sha256$1000$AAAA",
        "pbkdf2_sha256$1000$AAAA$AAAA$AAAA",
        "md5$1000$AAAA$AAAA",
        "PBKDF2_SHA256$1000$AAAA$AAAA",
        "pbkdf2_sha256$abc$AAAA$AAAA",
        "pbkdf2_sha256$$AAAA$AAAA",
        "pbkdf2_sha256$-1000$AAAA$AAAA",
        "pbkdf2_sha256$1e4$AAAA$AAAA",
        "pbkdf2_sha256$" + "9" * 5000 + "$AAAA$AAAA",  # beyond int()'s digit limit
        _with_rounds("999"),  # too few rounds to trust
        _with_rounds("0"),
        _with_rounds("10000001"),  # too many: a denial of service, not a login
        _with_rounds("100000000000"),  # would hash for hours if it were tried
        "pbkdf2_sha256$1000$A$AAAA",  # salt is not decodable base64
        "pbkdf2_sha256$1000$AAAA$A",  # digest is not decodable base64
        "pbkdf2_sha256$1000$AAAA$AAAAA",
        "pbkdf2_sha256$1000$ñandú$AAAA",  # non-ASCII salt
        "pbkdf2_sha256$1000$AAAA$ñandú",  # non-ASCII digest
        "pbkdf2_sha256$1000$AAAA$\U0001F600",
        "pbkdf2_sha256$1000$AAAA$",  # empty digest
        "pbkdf2_sha256$1000$$",
        "pbkdf2_sha256$1000$AAAA$AAAA\x00",
        "\x00" * 100,
        "x" * 100_000,
        None,
        b"pbkdf2_sha256$1000$AAAA$AAAA",
        1234,
    ],
)
def test_malformed_stored_hash_never_raises(stored):
    assert pins.check_pin("2468", stored) is False
    assert pins.check_pin("1234", stored) is False


@pytest.mark.parametrize("rounds", [1, 999])
def test_too_few_rounds_are_refused_even_when_the_digest_matches(rounds):
    salt = b"0123456789abcdef"
    digest = hashlib.pbkdf2_hmac("sha256", b"2468", salt, rounds)
    assert pins.check_pin("2468", f"pbkdf2_sha256${rounds}${_b64(salt)}${_b64(digest)}") is False


def test_check_pin_refuses_invalid_pins_even_with_matching_hash():
    # A hash made around validation (e.g. imported) must not let a non-PIN in.
    salt = b"0123456789abcdef"
    for pin in ("abcd", "12", "١٢٣٤"):
        digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, 1_000)
        assert pins.check_pin(pin, f"pbkdf2_sha256$1000${_b64(salt)}${_b64(digest)}") is False


@pytest.mark.parametrize("pin", ["0000", "1234", "987654", "123456789012"])
def test_valid_pins(pin):
    assert pins.valid_pin(pin) is True


@pytest.mark.parametrize(
    "pin",
    [
        "", "1", "123", "1234567890123", "12a4", "12 34", " 1234", "1234\n", "-123", "+1234",
        "12.3", "١٢٣٤",  # Arabic-Indic digits: isdigit(), but not ASCII
        "²³⁴⁵",  # superscripts: isdigit() too
        "１２３４",  # full-width digits
        None, 1234, b"1234", ["1", "2", "3", "4"],
    ],
)
def test_invalid_pins(pin):
    assert pins.valid_pin(pin) is False


@pytest.mark.parametrize("pin", ["", "123", "12a4", "١٢٣٤", "1234567890123", None])
def test_hash_pin_refuses_invalid_pins(pin):
    with pytest.raises(ValueError):
        pins.hash_pin(pin)


_PART = st.text(max_size=40) | st.sampled_from(["", "AAAA", "A", "AAAAA", "MDEyMzQ1Njc4OWFiY2RlZg"])


@settings(max_examples=300, deadline=None)
@given(
    pin=st.text(max_size=14) | st.from_regex(r"\A[0-9]{4,12}\Z"),
    stored=st.text(max_size=200)
    | st.builds(
        lambda scheme, rounds, salt, digest: "$".join((scheme, rounds, salt, digest)),
        st.sampled_from(["pbkdf2_sha256", "pbkdf2_sha1", ""]),
        st.sampled_from(["1000", "1001", "999", "x", "", "1_000", " 1000"]),
        _PART,
        _PART,
    ),
)
def test_check_pin_on_arbitrary_input_returns_a_bool(pin, stored):
    assert pins.check_pin(pin, stored) in (True, False)
