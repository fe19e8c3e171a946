"""The scan screen's gate, without a window: what it says of each input, on a clock the test sets."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pos_app.core.domain import Method
from pos_app.scan.gate import HOLD_S, MAX_WAITING, Admission, Answer, ScanGate
from pos_app.scan.repeat import repeat_key

TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJhLWIifQ.c2ln-X_y"
ADMIT, SHOW_AGAIN, IGNORE, FLOOD = Admission.ADMIT, Admission.SHOW_AGAIN, Admission.IGNORE, Admission.FLOOD


@dataclass
class Clock:
    t: float = 1_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gate(clock) -> ScanGate:
    return ScanGate(clock=clock)


def test_a_code_is_admitted_then_in_flight_until_decided(gate):
    assert gate.admit(TOKEN, Method.CAMERA) == Answer(ADMIT)
    assert gate.in_flight == (TOKEN,)
    assert gate.admit(TOKEN, Method.CAMERA) == Answer(IGNORE)  # the camera sees it again meanwhile
    assert gate.admit(TOKEN, Method.SCANNER) == Answer(IGNORE)
    assert gate.in_flight == (TOKEN,)
    gate.decided(TOKEN, Method.CAMERA, "accepted")
    assert gate.in_flight == ()


def test_a_decided_code_still_seen_shows_its_verdict_again(gate, clock):
    gate.admit(TOKEN, Method.CAMERA)
    outcome = object()
    gate.decided(TOKEN, Method.CAMERA, outcome)
    clock.t += 1
    answer = gate.admit(TOKEN, Method.CAMERA)
    assert answer.admission is SHOW_AGAIN and answer.outcome is outcome
    assert gate.admit(TOKEN, Method.IMAGE).outcome is outcome  # whoever reads it: picture, scanner
    assert gate.admit(f"  {TOKEN}\r\n", Method.SCANNER).outcome is outcome
    # A US-layout scanner on a Spanish keyboard types ' for - and ? for _: the same code.
    assert gate.admit(TOKEN.replace("-", "'").replace("_", "?"), Method.SCANNER).outcome is outcome
    assert gate.in_flight == ()  # nothing shown again is decided again


def test_typed_and_printed_codes_are_never_repeats(gate):
    """A person typing a code again means it: the store's thread says it is already used."""
    gate.admit("CAFE50", Method.PRINTED)
    gate.decided("CAFE50", Method.PRINTED, "accepted")
    assert gate.admit("CAFE50", Method.PRINTED) == Answer(ADMIT)
    assert gate.admit("CAFE50", Method.TYPED) == Answer(ADMIT)  # even while the first is in flight
    assert gate.in_flight == ("CAFE50", "CAFE50")
    gate.decided("CAFE50", Method.TYPED, "already_redeemed")
    assert gate.in_flight == ("CAFE50",)
    assert gate.admit("CAFE50", Method.CAMERA) == Answer(IGNORE)  # the camera waits for the one in flight
    gate.decided("CAFE50", Method.PRINTED, "already_redeemed")
    assert gate.admit("CAFE50", Method.CAMERA) == Answer(ADMIT)  # what was typed is not held for the camera


def test_the_hold_runs_from_the_last_sighting_on_the_clock_passed_in(gate, clock):
    gate.admit(TOKEN, Method.CAMERA)
    gate.decided(TOKEN, Method.CAMERA, "accepted")
    for _second in range(20):  # a phone left in front of the camera for 20 s
        clock.t += 1
        assert gate.admit(TOKEN, Method.CAMERA).admission is SHOW_AGAIN
    clock.t += HOLD_S + 0.01
    assert gate.admit(TOKEN, Method.CAMERA) == Answer(ADMIT)  # gone for the hold: a new redemption


def test_a_clock_that_jumps_back_does_not_keep_a_verdict(gate, clock):
    gate.admit(TOKEN, Method.CAMERA)
    gate.decided(TOKEN, Method.CAMERA, "accepted")
    clock.t -= 3600  # the till's clock was set back an hour
    assert gate.admit(TOKEN, Method.CAMERA) == Answer(ADMIT)


def test_the_hold_and_the_queue_are_the_gates_own(clock):
    gate = ScanGate(clock=clock, hold_s=0.5, max_waiting=0)
    gate.admit(TOKEN, Method.CAMERA)
    assert gate.admit("other", Method.CAMERA) == Answer(FLOOD)  # nothing may wait behind the one deciding
    gate.decided(TOKEN, Method.CAMERA, "accepted")
    clock.t += 0.6
    assert gate.admit(TOKEN, Method.CAMERA) == Answer(ADMIT)


def test_more_than_three_waiting_is_a_flood(gate):
    codes = [f"code-{i}" for i in range(MAX_WAITING + 3)]
    answers = [gate.admit(code, Method.SCANNER).admission for code in codes]
    assert answers == [ADMIT] * (MAX_WAITING + 1) + [FLOOD] * 2  # one deciding, three waiting
    assert gate.in_flight == tuple(codes[:MAX_WAITING + 1])
    assert gate.admit("typed", Method.TYPED) == Answer(FLOOD)  # a flood is a flood, however it came
    assert gate.admit(codes[0], Method.SCANNER) == Answer(IGNORE)  # one still in flight is ignored, not refused
    gate.decided(codes[0], Method.SCANNER, "accepted")
    assert gate.admit(codes[0], Method.SCANNER).admission is SHOW_AGAIN  # a decided one shows in a flood too
    assert gate.admit(codes[-1], Method.SCANNER) == Answer(ADMIT)  # room again for one
    assert gate.admit("one more", Method.SCANNER) == Answer(FLOOD)


def test_a_failed_redemption_is_not_held(gate):
    gate.admit(TOKEN, Method.CAMERA)
    gate.done(TOKEN)  # the store could not save it: nothing to show again, the cashier may retry
    assert gate.in_flight == ()
    assert gate.admit(TOKEN, Method.CAMERA) == Answer(ADMIT)
    gate.done("never admitted")  # harmless
    assert gate.in_flight == (TOKEN,)


@pytest.mark.parametrize("text", [
    "\u202eevil\u202c",  # right-to-left override
    "e\u0301\u0301\u0301",  # combining accents
    "🧉" * 50,
    "\ud800 lone surrogate",
    "\x00\x01\x1b[2J",
    "ｃａｆｅ５０",  # fullwidth letters look like a printed code but are not one
    "",
])
def test_odd_unicode_is_gated_like_any_code(gate, clock, text):
    assert gate.admit(text, Method.SCANNER) == Answer(ADMIT)
    assert gate.admit(text, Method.CAMERA) == Answer(IGNORE)
    gate.decided(text, Method.SCANNER, "malformed")
    clock.t += 1
    assert gate.admit(text, Method.CAMERA) == Answer(SHOW_AGAIN, "malformed")
    assert gate.admit(text + "x", Method.CAMERA) == Answer(ADMIT)  # another text is another code


def test_oversize_texts_are_held_under_a_short_key(gate, clock):
    huge = "A" * 1_000_000
    other = "A" * 999_999 + "B"
    assert gate.admit(huge, Method.CAMERA) == Answer(ADMIT)
    assert gate.admit(other, Method.CAMERA) == Answer(ADMIT)
    gate.decided(huge, Method.CAMERA, "malformed")
    gate.decided(other, Method.CAMERA, "refused")
    assert len(repeat_key(huge)) < 40 and len(gate.repeats) == 2  # the filter keeps digests, not megabytes
    clock.t += 1
    assert gate.admit(huge, Method.CAMERA) == Answer(SHOW_AGAIN, "malformed")
    assert gate.admit(other, Method.CAMERA) == Answer(SHOW_AGAIN, "refused")


def test_an_answer_names_an_outcome_only_to_show_again(gate):
    answers = [gate.admit(TOKEN, Method.CAMERA), gate.admit(TOKEN, Method.CAMERA)]
    assert [a.outcome for a in answers] == [None, None]
