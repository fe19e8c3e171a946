"""A redemption at the till: the backend first when it can be asked, the till's own store otherwise.

The attempt and its idempotency key are committed locally before the first
network call, so a crash at any point leaves a key the till can ask about
again, and nothing is counted twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from .backend_client import BackendClient, Refused, Unreachable
from .core import verdict
from .core.domain import Method, Verdict


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    decided: str  # "online" or "offline"
    key: str | None
    note: str = ""  # why the till decided offline, when it did

    def to_json(self) -> dict:
        data = {**self.verdict.to_json(), "decided": self.decided, "key": self.key}
        if self.note:
            data["note"] = self.note
        return data


def redeem(store, text: str | bytes, *, method: str = Method.TYPED, staff_id: str | None = None,
           client: BackendClient | None = None, clock: Callable[[], float] = time.time) -> Outcome:
    """Decide one input and record it; online through `client` when given."""
    now = clock()
    printed_only = method == Method.PRINTED
    if client is not None:
        # Inputs that cannot pass anywhere (garbage, forged, foreign) need no round trip.
        reading = verdict.read(text, store.context(now))
        if reading.refusal is None:
            key = store.begin_online(reading.text, method=method, staff_id=staff_id, now=now)
            try:
                status, body = client.redeem(key, input=reading.text, method=method, staff_id=staff_id, at=now)
            except (Unreachable, Refused) as exc:
                v, _ = store.redeem_offline(reading.text, method=method, staff_id=staff_id, now=now,
                                            printed_only=printed_only, key=key)
                return Outcome(v, "offline", key, note=str(exc))
            v = Verdict.from_json(body["verdict"])
            store.finish_online(key, v, now=now)
            return Outcome(v, "online", key)
    v, _ = store.redeem_offline(text, method=method, staff_id=staff_id, now=now, printed_only=printed_only)
    return Outcome(v, "offline", None)
