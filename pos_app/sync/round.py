"""One round of sync between a till's store and the backend.

Push the outbox (FIFO, batches of at most 500, an entry leaves only when the
backend confirmed it), settle attempts a crash left pending, then pull the
feed (and the catalog when the feed says it changed). The background engine
(`engine.py`) runs rounds on a schedule; `python -m pos_app sync` runs one.
Whatever the backend answers, a round ends with a summary, never a crash:
garbage is an error to retry, and nothing of it reaches the store.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from .client import BackendClient, BadAnswer, Refused, Unreachable, server_time, verdict_from_answer

log = logging.getLogger(__name__)

BATCH = 500
# Feed pages pulled in one round at most: a backlog is caught up over rounds,
# and a feed that claims `more` for ever cannot hold the round.
MAX_FEED_PAGES = 50
# Feed events that change the catalog: a round that saw one downloads it whole.
CATALOG_EVENTS = ("voucher", "printed_code", "staff")
# Otherwise the catalog is downloaded this often, as a safety net.
CATALOG_REFRESH_S = 900.0
# 4xx statuses about the till, not about an entry: parking entries would not help.
TILL_REFUSALS = (401, 403, 404, 405, 411, 415)
_CONFIRMED = {"recorded": "recorded", "duplicate": "duplicates", "conflict": "conflicts"}


@dataclass(frozen=True)
class SyncSummary:
    """What one round did (docs/sync.md); `python -m pos_app sync` prints `to_json()`."""

    pushed: int = 0
    recorded: int = 0
    duplicates: int = 0
    conflicts: int = 0
    parked: int = 0
    over_limit: int = 0
    pending_settled: int = 0
    feed_events: int = 0
    catalog: bool = False  # the whole catalog was downloaded
    error: str | None = None  # why the round ended early ("stopped": the engine is stopping)
    reached: bool = False  # the backend answered at all, even with a refusal
    requests: int = 0
    outbox: int | None = None  # entries still queued; None if the store could not say
    last_sync: float | None = None
    clock_skew_s: float | None = None
    feed_parked: int = 0  # feed events newly set aside, unappliable (last: the keys printed before keep their order)

    def to_json(self) -> dict:
        return asdict(self)


class Stopped(Exception):
    """The engine is stopping: the round ends between two requests."""


class _Clocked:
    """Calls the client and keeps the last answer's server time with the till's
    time half-way through the request: the skew, less half the round trip."""

    def __init__(self, client: BackendClient, clock: Callable[[], float], should_stop: Callable[[], bool]):
        self.client = client
        self.clock = clock
        self.should_stop = should_stop
        self.skew: float | None = None
        self.reached = False  # any answer at all, even a refusal, shows the backend is there

    def __call__(self, name: str, *args, **kwargs) -> Any:
        if self.should_stop():
            raise Stopped()
        before = self.clock()
        try:
            answer = getattr(self.client, name)(*args, **kwargs)
        except (Refused, BadAnswer):
            self.reached = True
            raise
        self.reached = True
        after = self.clock()
        stamp = server_time(answer)
        if stamp is not None:
            self.skew = round((before + after) / 2 - stamp, 3)
        return answer


def _entry_refusal(exc: Refused) -> str:
    return f"{exc.status} {exc.code}"


def _push(store, call: _Clocked, summary: dict, now: Callable[[], float]) -> None:
    while True:
        batch = store.outbox_batch(BATCH)
        if not batch:
            return
        _send(store, call, batch, summary, now)


def _send(store, call: _Clocked, batch: list[dict], summary: dict, now: Callable[[], float]) -> None:
    """Send a batch; a permanent refusal is narrowed down by halves to the entries that cause it."""
    try:
        answer = call("sync", batch, till_time=now())  # the till's clock, as the entries' times
    except Refused as exc:
        if exc.status in TILL_REFUSALS:
            raise
        if len(batch) == 1:
            # A permanent refusal of this entry: park it with its reason, never retry forever.
            store.outbox_park(batch[0]["key"], _entry_refusal(exc))
            summary["parked"] += 1
            return
        half = len(batch) // 2
        _send(store, call, batch[:half], summary, now)
        _send(store, call, batch[half:], summary, now)
        return
    except Unreachable:
        store.outbox_note_failure([e["key"] for e in batch], "backend unreachable")
        raise
    _settle(store, batch, answer, summary, now())


def _results(batch: list[dict], answer: dict) -> list[dict]:
    """The answer's results for keys of this batch; BadAnswer if they are not results."""
    results = answer.get("results")
    if not isinstance(results, list) or len(results) > len(batch):
        raise BadAnswer("the sync answer holds no list of results for this batch")
    keys = {entry["key"] for entry in batch}
    checked = []
    for result in results:
        if not (isinstance(result, dict) and result.get("key") in keys and isinstance(result.get("status"), str)):
            raise BadAnswer("a sync result is not {key, status} for a key that was sent")
        winner = result.get("winner")
        if result["status"] == "conflict" and not (
                isinstance(winner, dict) and isinstance(winner.get("jti"), str)
                and isinstance(winner.get("at"), (int, float)) and not isinstance(winner.get("at"), bool)
                and all(isinstance(winner.get(n) or "", str) for n in ("till", "store_id"))):
            raise BadAnswer("a conflict result names no winner")
        checked.append(result)
    return checked


def _settle(store, batch: list[dict], answer: dict, summary: dict, now: float) -> None:
    results = _results(batch, answer)
    store.outbox_confirm(results, now=now)
    for result in results:
        status = result["status"]
        if status in _CONFIRMED:
            summary["pushed"] += 1
            summary[_CONFIRMED[status]] += 1
            if isinstance(result.get("over_limit"), str):
                summary["over_limit"] += 1
        else:
            # `rejected` (the key is another till's) or a status this till does not know.
            reason = result.get("reason") if isinstance(result.get("reason"), str) else status
            store.outbox_park(result["key"], reason[:200])
            summary["parked"] += 1
    if len({result["key"] for result in results}) < len(batch):
        # Unanswered entries stay queued; sending them again now would loop.
        raise BadAnswer("the backend answered for only part of the batch")


def _settle_pending(store, call: _Clocked, summary: dict, begun_before: float | None) -> None:
    """Attempts a crash left between 'key written' and 'answer recorded'."""
    for attempt in store.pending_online(begun_before):
        found = call("lookup_redemption", attempt["key"])
        if found is not None:
            answer = found.get("answer")
            store.finish_online(attempt["key"], verdict_from_answer(answer))
        else:
            # The backend never saw it and the till crashed before deciding
            # offline: no verdict was shown, so there is no redemption to keep.
            store.abandon_pending(attempt["key"])
        summary["pending_settled"] += 1


def _pull(store, call: _Clocked, summary: dict, now: Callable[[], float]) -> None:
    """Feed pages, then the whole catalog if the feed showed it changed, it is old, or the feed failed."""
    try:
        changed = _pull_feed(store, call, summary)
    except (Unreachable, Refused) as exc:
        if isinstance(exc, Unreachable) and not isinstance(exc, BadAnswer) and exc.__cause__ is not None:
            raise  # the backend could not be reached at all: the catalog cannot come either
        # The backend answered, but not with a feed page this till could take (garbage,
        # a refusal, a 5xx): that must not keep it on an old catalog for good, so the
        # catalog is asked for anyway, and the round ends with the feed's error.
        try:
            _pull_catalog(store, call, summary)
        except (Unreachable, Refused) as catalog_exc:
            log.info("sync round: the catalog after a failed feed failed too: %s", catalog_exc)
        raise exc
    if changed or store.get("catalog_at") is None or now() - float(store.get("catalog_at") or 0) > CATALOG_REFRESH_S:
        _pull_catalog(store, call, summary)


def _pull_feed(store, call: _Clocked, summary: dict) -> bool:
    """The feed's pages; True if one brought an event that changes the catalog."""
    cursor = store.feed_cursor
    changed = False
    for _ in range(MAX_FEED_PAGES):
        page = call("feed", cursor)
        events, next_cursor = page.get("events"), page.get("cursor")
        if isinstance(next_cursor, bool) or not isinstance(next_cursor, int) or next_cursor < cursor:
            raise BadAnswer("the feed's cursor is missing or went backwards")
        try:
            # An event this till cannot apply is parked there; only a malformed page is refused.
            summary["feed_parked"] += store.apply_feed(events, next_cursor)
        except (ValueError, KeyError, TypeError) as exc:
            raise BadAnswer(f"feed: {exc}") from exc
        summary["feed_events"] += len(events)
        changed = changed or any(event.get("type") in CATALOG_EVENTS for event in events)
        if page.get("more") is not True or next_cursor == cursor:
            break
        cursor = next_cursor
    return changed


def _pull_catalog(store, call: _Clocked, summary: dict) -> None:
    # The feed's changes are applied already; the catalog download reconciles
    # what the feed cannot say (removals, keys, the store's own settings).
    try:
        store.apply_catalog(call("catalog"))
    except ValueError as exc:
        raise BadAnswer(f"catalog: {exc}") from exc
    summary["catalog"] = True


def sync_once(store, client: BackendClient, *, clock: Callable[[], float] = time.time,
              pending_begun_before: float | None = None, pull: bool = True,
              should_stop: Callable[[], bool] = lambda: False) -> SyncSummary:
    """Push, settle, pull; returns a summary. Network trouble ends the round, not the till.

    `pending_begun_before`: settle only pending attempts begun before this
    time (the engine leaves young ones to the redemption still asking).
    """
    summary = SyncSummary().to_json()  # counted up by the steps below, then frozen
    call = _Clocked(client, clock, should_stop)
    requests_before = client.requests
    try:
        _push(store, call, summary, clock)
        _settle_pending(store, call, summary, pending_begun_before)
        if pull:
            _pull(store, call, summary, clock)
    except Stopped:
        summary["error"] = "stopped"
    except (Unreachable, Refused) as exc:
        summary["error"] = str(exc)[:500]
    except sqlite3.Error as exc:
        # The till's own store failed (a full disk): nothing was confirmed, all is retried.
        summary["error"] = f"till store: {exc}"
        log.error("sync round: the till's store failed: %s", exc)
    summary["reached"] = call.reached
    summary["requests"] = client.requests - requests_before
    try:
        if call.skew is not None:
            store.set("clock_skew_s", call.skew)
        if summary["error"] != "stopped":
            store.note_sync_run(summary["error"] is None, summary["error"], now=clock())
        summary["outbox"] = store.outbox_size()
    except sqlite3.Error as exc:
        summary["error"] = summary["error"] or f"till store: {exc}"
        summary["outbox"] = None
    summary["last_sync"] = store.get("last_sync")
    summary["clock_skew_s"] = store.get("clock_skew_s")
    return SyncSummary(**summary)
