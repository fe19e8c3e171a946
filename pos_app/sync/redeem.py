"""A redemption at the till: the backend first when it can be asked, the till's own store otherwise.

The attempt and its idempotency key are committed locally before the first
network call, so a crash at any point leaves a key the till can ask about
again, and nothing is counted twice. If the till cannot write (a full disk),
the cashier is told so and no verdict is shown as accepted.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Callable

from .client import BackendClient, Refused, Unreachable, verdict_from_answer
from ..core import verdict
from ..core.domain import Method, Reason, Verdict
from ..store import settings, standing


class NotRecorded(sqlite3.OperationalError):
    """The till could not record this redemption (its disk is full or its store failed).

    No verdict may be shown as accepted: the cashier must not give the
    discount. If the backend had already accepted it online, the till learns
    that answer by its key once it can write again.
    """

    def __init__(self, cause: sqlite3.Error):
        full = "full" in str(cause).lower()
        super().__init__(
            "the till's disk is full: this redemption was not recorded, do not give the discount"
            if full else f"the till could not record this redemption ({cause}): do not give the discount")
        self.disk_full = full


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
    """Decide one input and record it; online through `client` when given.

    Raises NotRecorded when the store cannot write: then nothing was recorded
    and no verdict may be shown. Raises standing.Withdrawn when the backend
    withdrew this till or replaced its token (now, or before): nothing is
    decided, online or offline.
    """
    try:
        return _redeem(store, text, method=method, staff_id=staff_id, client=client, clock=clock)
    except NotRecorded:
        raise
    except sqlite3.OperationalError as exc:
        raise NotRecorded(exc) from exc


def _redeem(store, text: str | bytes, *, method: str, staff_id: str | None,
            client: BackendClient | None, clock: Callable[[], float]) -> Outcome:
    standing.check(store)  # a withdrawn till decides nothing, and says so
    now = clock()
    printed_only = method == Method.PRINTED
    if client is not None:
        # Inputs that cannot pass anywhere (garbage, forged, foreign) need no round trip.
        ctx = store.context(now)
        reading = verdict.read(text, ctx)
        # A code this till knows is used (here, or from the feed) is refused
        # here: the backend may not have heard yet of an offline redemption
        # still in the outbox, and must not be asked to accept it twice.
        known_used = reading.refusal is None and verdict.judge(
            reading, store, ctx, printed_only=printed_only).reason == Reason.ALREADY_REDEEMED
        if reading.refusal is None and not known_used:
            key = store.begin_online(reading.text, method=method, staff_id=staff_id, now=now)
            try:
                status, body = client.redeem(key, input=reading.text, method=method, staff_id=staff_id, at=now,
                                             timeout=settings.value(store, "online_timeout_s"))
                v = verdict_from_answer(body)
            except (Unreachable, Refused) as exc:  # BadAnswer is Unreachable: garbage is no verdict
                if isinstance(exc, Refused) and exc.withdrawal:  # the credential is ended: no offline verdict
                    store.abandon_pending(key)
                    standing.mark(store, exc.withdrawal, str(exc))
                    raise standing.Withdrawn(exc.withdrawal) from exc
                v, _ = store.redeem_offline(reading.text, method=method, staff_id=staff_id, now=now,
                                            printed_only=printed_only, key=key)
                return Outcome(v, "offline", key, note=str(exc))
            store.finish_online(key, v, now=clock())  # the time the backend's answer came
            return Outcome(v, "online", key)
    v, _ = store.redeem_offline(text, method=method, staff_id=staff_id, now=now, printed_only=printed_only)
    return Outcome(v, "offline", None)
