"""The scan screen's gate: what happens to an input before the store's thread decides it.

Every input of the window (camera, scanner, picture, typed, printed) is asked
through `ScanGate.admit`. Its rules are the screen's, not the verdict's, so
they live here without Qt and are tested on their own:

- a code still in view, or scanned twice, shows its verdict again instead of
  a second redemption (the repeat filter, for camera, scanner and picture);
- a code already being decided is ignored (the in-flight list);
- more than `max_waiting` behind the one being decided is a flood (a stuck
  scanner or a prank), refused.

The window tells the gate when a redemption was decided (its outcome is then
held for repeats) or is done without one (it failed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from typing import Callable

from ..core.domain import Method
from .repeat import RepeatFilter

MAX_WAITING = 3  # redemptions queued behind the one being decided; more is a stuck scanner or a prank
HOLD_S = 4.0  # how long a verdict is shown again for a code still seen
# A person typing a code twice means it: only what a device reads again and again is a repeat.
REPEATABLE = (Method.CAMERA, Method.SCANNER, Method.IMAGE)


class Admission(Enum):
    ADMIT = "admit"  # decide it: it is in flight until `decided` or `done`
    SHOW_AGAIN = "show_again"  # a repeat: show `Answer.outcome` again, decide nothing
    IGNORE = "ignore"  # the same code is being decided already
    FLOOD = "flood"  # too many waiting: refuse it with a message


@dataclass(frozen=True)
class Answer:
    admission: Admission
    outcome: object | None = None  # the outcome held for a repeat (SHOW_AGAIN only)


class ScanGate:
    """The in-flight list and the repeat filter of one screen; `clock` gives seconds (the till's clock)."""

    def __init__(self, *, clock: Callable[[], float] = time.time, hold_s: float = HOLD_S,
                 max_waiting: int = MAX_WAITING):
        self.clock = clock
        self.max_waiting = max_waiting
        self.repeats = RepeatFilter(hold_s=hold_s)
        self._in_flight: list[str] = []  # texts handed to the store's thread, oldest first

    @property
    def in_flight(self) -> tuple[str, ...]:
        return tuple(self._in_flight)

    def admit(self, text: str, method: str) -> Answer:
        """What to do with `text` read by `method`; an admitted text is in flight from now on."""
        if method in REPEATABLE:
            seen = self.repeats.lookup(text, self.clock())  # a sighting renews the hold
            if seen is not None:
                return Answer(Admission.SHOW_AGAIN, seen)
            if text in self._in_flight:
                return Answer(Admission.IGNORE)
        if len(self._in_flight) > self.max_waiting:
            return Answer(Admission.FLOOD)
        self._in_flight.append(text)
        return Answer(Admission.ADMIT)

    def decided(self, text: str, method: str, outcome: object) -> None:
        """`text` was decided: no longer in flight, and its outcome shown again while it is still seen."""
        self.done(text)
        if method in REPEATABLE:
            self.repeats.remember(text, outcome, self.clock())

    def done(self, text: str) -> None:
        """`text` left the store's thread without an outcome to hold (it failed)."""
        if text in self._in_flight:
            self._in_flight.remove(text)
