"""The camera sees one code many times a second: after a verdict, the same
code seen again shows that verdict again instead of redeeming it twice."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from ..core import codes
from ..core.verdict import clean_input, printed_form

DEFAULT_HOLD_S = 4.0
MAX_ENTRIES = 256


def repeat_key(text: str | bytes) -> str:
    """One key for every reading of the same code, from camera, scanner or keyboard.

    Cleaned as the core cleans input (whitespace, a scanner's keyboard-layout
    damage), short codes and printed codes folded to their canonical form."""
    cleaned = clean_input(text)
    if cleaned is None:
        # Garbage is remembered too (its verdict is `malformed`), under a short key.
        raw = text if isinstance(text, (bytes, bytearray)) else str(text).encode("utf-8", "surrogatepass")
        return "raw:" + hashlib.blake2b(bytes(raw), digest_size=16).hexdigest()
    if codes.looks_like_short_code(cleaned):
        return "short:" + codes.normalize(cleaned)
    printed = printed_form(cleaned)
    if printed is not None:
        return "printed:" + printed
    return cleaned


class RepeatFilter:
    """Outcomes of recent verdicts by code, held for `hold_s` after the code was last seen.

    Each sighting within the hold renews it, so a phone left in front of the
    camera keeps showing its verdict instead of turning into `already_redeemed`
    once the hold runs out. Memory is bounded by `max_entries`."""

    def __init__(self, hold_s: float = DEFAULT_HOLD_S, *, max_entries: int = MAX_ENTRIES):
        self.hold_s = hold_s
        self.max_entries = max_entries
        self._seen: OrderedDict[str, tuple[object, float]] = OrderedDict()

    def lookup(self, text: str | bytes, now: float) -> object | None:
        """The outcome remembered for this code if it was seen within the hold, else None."""
        key = repeat_key(text)
        entry = self._seen.get(key)
        if entry is None:
            return None
        outcome, last_seen = entry
        if now - last_seen > self.hold_s or now < last_seen - self.hold_s:  # expired, or the clock jumped back
            del self._seen[key]
            return None
        self._seen[key] = (outcome, max(now, last_seen))
        self._seen.move_to_end(key)
        return outcome

    def remember(self, text: str | bytes, outcome: object, now: float) -> None:
        """Hold the outcome of a verdict for this code."""
        key = repeat_key(text)
        self._seen[key] = (outcome, now)
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)

    def forget(self, text: str | bytes) -> None:
        """Drop a code's outcome (e.g. the cashier asked to scan it again)."""
        self._seen.pop(repeat_key(text), None)

    def clear(self) -> None:
        self._seen.clear()

    def __len__(self) -> int:
        return len(self._seen)
