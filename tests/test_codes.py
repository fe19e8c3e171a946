"""Short codes: what a cashier types must come back canonical, and a typo must
be caught by the check symbol, never looked up."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pos_app.core import codes
from pos_app.core.codes import ALPHABET, CODE_LENGTH, ShortCodeError

GROUPED = re.compile(r"^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]$")


def _seeded_codes(count: int, seed: int = 20240601) -> list[str]:
    """Reproducible valid codes (new_short_code draws from `secrets`)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        body = "".join(rng.choice(ALPHABET) for _ in range(codes.BODY_LENGTH))
        out.append(body + codes.check_symbol(body))
    return out


# Fixed codes that exercise every symbol in every position at least a few times.
SAMPLE = _seeded_codes(40) + [body + codes.check_symbol(body) for body in ("00000000", "ZZZZZZZZ")]


def _is_canonical(code: str) -> bool:
    return (
        len(code) == CODE_LENGTH
        and all(ch in ALPHABET for ch in code)
        and codes.check_symbol(code[:-1]) == code[-1]
    )


# --- round trip ---------------------------------------------------------------


def test_new_codes_are_canonical_and_round_trip():
    seen = set()
    for _ in range(300):
        code = codes.new_short_code()
        assert _is_canonical(code)
        grouped = codes.format_short_code(code)
        assert GROUPED.match(grouped), grouped
        assert grouped.replace("-", "") == code
        assert codes.parse_short_code(grouped) == code
        assert codes.parse_short_code(code) == code
        assert codes.looks_like_short_code(grouped)
        seen.add(code)
    # 40 random bits: 300 draws that collide would mean the generator is broken.
    assert len(seen) == 300


def test_format_groups_as_in_the_spec():
    assert codes.format_short_code("K7QF3M2XT") == "K7QF-3M2X-T"


def test_check_symbol_is_in_the_alphabet_for_every_body_symbol():
    for ch in ALPHABET:
        body = ch * codes.BODY_LENGTH
        assert codes.check_symbol(body) in ALPHABET


# --- forgiveness ---------------------------------------------------------------

# A code that holds 0 and 1, so O and I/L forgiveness can be seen.
_BODY = "K7QF0M1X"
CODE = _BODY + codes.check_symbol(_BODY)


@pytest.mark.parametrize(
    "typed",
    [
        CODE,
        codes.format_short_code(CODE),
        codes.format_short_code(CODE).lower(),
        CODE.lower(),
        " ".join(CODE),  # spaces between every symbol
        f"  {codes.format_short_code(CODE)}  ",
        CODE[:4] + " " + CODE[4:8] + " " + CODE[8:],
        CODE[:4] + "\t" + CODE[4:],
        CODE[:4] + "\u2013" + CODE[4:],  # en dash from a phone keyboard
        CODE[:4] + "_" + CODE[4:],
        CODE.replace("0", "O"),
        CODE.replace("0", "o"),
        CODE.replace("1", "I"),
        CODE.replace("1", "i"),
        CODE.replace("1", "L"),
        CODE.replace("1", "l"),
        codes.format_short_code(CODE).lower().replace("0", "o").replace("1", "l"),
    ],
)
def test_typing_is_forgiven(typed):
    assert codes.parse_short_code(typed) == CODE
    assert codes.looks_like_short_code(typed)


def test_normalize_folds_forgiven_symbols():
    assert codes.normalize("k7qf-om lx-a") == "K7QF0M1XA"
    assert codes.normalize("iIlLoO") == "111100"


# --- typos are caught by the check symbol ---------------------------------------


def test_every_single_substitution_is_mistyped():
    checked = 0
    for code in SAMPLE:
        for pos in range(CODE_LENGTH):
            for ch in ALPHABET:
                if ch == code[pos]:
                    continue
                typo = code[:pos] + ch + code[pos + 1:]
                with pytest.raises(ShortCodeError) as err:
                    codes.parse_short_code(typo)
                assert err.value.reason == "mistyped", typo
                # The till can still tell it has the shape of a short code.
                assert codes.looks_like_short_code(typo)
                checked += 1
    assert checked == len(SAMPLE) * CODE_LENGTH * (len(ALPHABET) - 1)


def test_every_transposition_of_two_different_symbols_is_mistyped():
    checked = 0
    for code in SAMPLE:
        for i in range(CODE_LENGTH):
            for j in range(i + 1, CODE_LENGTH):
                if code[i] == code[j]:
                    continue
                swapped = list(code)
                swapped[i], swapped[j] = swapped[j], swapped[i]
                typo = "".join(swapped)
                with pytest.raises(ShortCodeError) as err:
                    codes.parse_short_code(typo)
                assert err.value.reason == "mistyped", (code, i, j)
                # Grouped as the customer sees it, the swap is still caught.
                with pytest.raises(ShortCodeError) as err:
                    codes.parse_short_code(codes.format_short_code(typo))
                assert err.value.reason == "mistyped"
                checked += 1
    assert checked > len(SAMPLE) * 30


def test_forgiven_lookalike_typed_in_place_of_a_different_symbol_is_mistyped():
    # The cashier types O where the code has Q: O folds to 0, and the check catches it.
    body = "ABCQ7XYZ"
    code = body + codes.check_symbol(body)
    with pytest.raises(ShortCodeError) as err:
        codes.parse_short_code(code.replace("Q", "O"))
    assert err.value.reason == "mistyped"


# --- malformed input -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "-",
        "----------",
        CODE[:-1],  # 8 symbols: the check is missing
        CODE[:4],
        CODE + "7",  # 10 symbols
        CODE + CODE,
        CODE[:-1] + "U",  # U is not in Crockford base32
        "U" + CODE[1:],
        CODE[:4] + "-" + CODE[4:8] + "-" + "!",
        CODE[:8] + "\U0001F600",  # emoji in the check position
        "\U0001F600" * 9,
        CODE[:4] + "\U0001F600" + CODE[4:],
        CODE[:8] + "\u00e9",
        CODE + "\x00",
        "x" * 100_000,
        CODE * 11_112,  # 100 KB of otherwise valid symbols
        "COFFEE10",
        "eyJhbGciOi.eyJ.sig",
    ],
)
def test_malformed_input(text):
    with pytest.raises(ShortCodeError) as err:
        codes.parse_short_code(text)
    assert err.value.reason == "malformed"


def test_short_code_error_is_a_value_error_with_a_message():
    with pytest.raises(ValueError) as err:
        codes.parse_short_code("nope")
    assert isinstance(err.value, ShortCodeError)
    assert str(err.value)


# --- properties --------------------------------------------------------------------

_TYPED = st.text(alphabet=ALPHABET + ALPHABET.lower() + "oOiIlLuU -_\u00a0", min_size=0, max_size=16)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.text(max_size=20), _TYPED))
def test_parse_returns_canonical_or_raises_short_code_error(text):
    try:
        code = codes.parse_short_code(text)
    except ShortCodeError as exc:
        assert exc.reason in ("malformed", "mistyped")
        if exc.reason == "mistyped":
            assert codes.looks_like_short_code(text)
        return
    assert _is_canonical(code)
    assert codes.parse_short_code(codes.format_short_code(code)) == code


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=ALPHABET, min_size=8, max_size=8), st.sampled_from(["", "-", " ", "lower"]))
def test_every_valid_body_round_trips(body, style):
    code = body + codes.check_symbol(body)
    typed = codes.format_short_code(code)
    if style == "lower":
        typed = typed.lower()
    else:
        typed = typed.replace("-", style)
    assert codes.parse_short_code(typed) == code
