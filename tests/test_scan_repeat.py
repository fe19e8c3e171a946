"""The repeat filter: a code seen again right after its verdict shows that
verdict again, whoever read it (camera, USB scanner, keyboard)."""

from __future__ import annotations

from pos_app.core import codes
from pos_app.scan.repeat import RepeatFilter, repeat_key

TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJhLWIifQ.c2ln-X_y"


def test_the_outcome_is_shown_again_within_the_hold():
    f = RepeatFilter(hold_s=4.0)
    assert f.lookup(TOKEN, 100.0) is None
    f.remember(TOKEN, "accepted", 100.0)
    assert f.lookup(TOKEN, 101.0) == "accepted"
    assert f.lookup(TOKEN, 104.9) == "accepted"
    assert f.lookup("other", 101.0) is None


def test_the_hold_runs_from_the_last_sighting():
    """A phone left in front of the camera keeps its verdict; once gone for the hold, it is forgotten."""
    f = RepeatFilter(hold_s=4.0)
    f.remember(TOKEN, "accepted", 0.0)
    for t in range(1, 20):  # seen every second for 19 s
        assert f.lookup(TOKEN, float(t)) == "accepted"
    assert f.lookup(TOKEN, 19.0 + 4.01) is None
    assert len(f) == 0


def test_expired_and_clock_jumps():
    f = RepeatFilter(hold_s=2.0)
    f.remember(TOKEN, "refused", 50.0)
    assert f.lookup(TOKEN, 52.5) is None
    f.remember(TOKEN, "refused", 50.0)
    assert f.lookup(TOKEN, 10.0) is None  # the clock went back a long way: do not trust the entry


def test_scanner_camera_and_typed_readings_share_a_key():
    # A US-layout scanner on a Spanish keyboard types ' for - and ? for _ (the core repairs it).
    scanned = TOKEN.replace("-", "'").replace("_", "?")
    assert repeat_key(scanned) == repeat_key(TOKEN) == repeat_key(f"  {TOKEN}\r\n")
    code = codes.new_short_code()
    typed = codes.format_short_code(code).lower().replace("0", "o").replace("1", "l")
    assert repeat_key(typed) == repeat_key(code)
    assert repeat_key("cafe 50") == repeat_key("CAFE50")
    assert repeat_key(TOKEN) != repeat_key(TOKEN[:-1])
    f = RepeatFilter()
    f.remember(TOKEN, "accepted", 0.0)
    assert f.lookup(scanned, 1.0) == "accepted"
    assert f.lookup(TOKEN.encode(), 1.0) == "accepted"


def test_garbage_is_held_under_a_short_key():
    junk = "\x00" * 100_000
    key = repeat_key(junk)
    assert key.startswith("raw:") and len(key) < 40
    assert repeat_key(b"\xff\xfe") != key
    f = RepeatFilter()
    f.remember(junk, "malformed", 0.0)
    assert f.lookup(junk, 1.0) == "malformed"


def test_memory_is_bounded_oldest_first():
    f = RepeatFilter(hold_s=60, max_entries=100)
    for i in range(1000):
        f.remember(f"CODE{i:04d}X", i, float(i) / 100)
    assert len(f) == 100
    assert f.lookup("CODE0000X", 10.0) is None
    assert f.lookup("CODE0999X", 10.0) == 999


def test_forget_and_clear():
    f = RepeatFilter()
    f.remember(TOKEN, "accepted", 0.0)
    f.remember("CAFE50", "accepted", 0.0)
    f.forget(TOKEN.replace("-", "'"))
    assert f.lookup(TOKEN, 0.5) is None and f.lookup("cafe50", 0.5) == "accepted"
    f.clear()
    assert len(f) == 0
