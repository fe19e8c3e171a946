"""How long a till waits before asking an unreachable backend again.

Exponential growth with full jitter and a cap: a shop's tills that lost the
backend together do not come back in step, and a long outage costs one
request per `cap_s`, not a storm.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays for successive failures: random in [0, min(cap, base * 2^n)], never below `floor_s`."""

    def __init__(self, base_s: float = 1.0, cap_s: float = 60.0, *, floor_s: float = 0.1,
                 rng: random.Random | None = None):
        if not 0 < base_s <= cap_s:
            raise ValueError("backoff needs 0 < base_s <= cap_s")
        self.base_s = base_s
        self.cap_s = cap_s
        self.floor_s = min(floor_s, base_s)
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """Count one more failure and return how long to wait before the next try."""
        ceiling = min(self.cap_s, self.base_s * 2 ** min(self.failures, 32))
        self.failures += 1
        return max(self.floor_s, self._rng.uniform(0, ceiling))

    def reset(self) -> None:
        """The backend answered: the next failure starts small again."""
        self.failures = 0
