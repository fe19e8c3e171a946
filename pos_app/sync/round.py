"""One round of sync between a till's store and the backend.

Push the outbox (FIFO, batches of at most 500, an entry leaves only when the
backend confirmed it), settle attempts a crash left pending, send the till's
log (log_push.py), then pull the feed (and the catalog when the feed says it
changed). The background engine (`engine.py`) runs rounds on a schedule;
`python -m pos_app sync` runs one.
Whatever the backend answers, a round ends with a summary, never a crash:
garbage is an error to retry, and nothing of it reaches the store.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from .client import BackendClient, BadAnswer, RateLimited, Refused, Unreachable, server_time, verdict_from_answer
from .log_push import push_log

from .. import __version__
from ..core import wire
from ..store import standing

log = logging.getLogger(__name__)

BATCH = 500
# Feed pages pulled in one round at most: a backlog is caught up over rounds,
# and a feed that claims `more` for ever cannot hold the round.
MAX_FEED_PAGES = 50
# Feed events that change the catalog: a round that saw one downloads it whole.
CATALOG_EVENTS = ("voucher", "printed_code", "staff", "staff_removed", "keys", "lan")
# Otherwise the catalog is downloaded this often, as a safety net.
CATALOG_REFRESH_S = 900.0
# 4xx statuses about the till, not about an entry: parking entries would not help.
TILL_REFUSALS = (401, 403, 404, 405, 411, 415)
_CONFIRMED = {"recorded": "recorded", "duplicate": "duplicates", "conflict": "conflicts"}
# A round that pushed nothing still tells the backend of the till (POST /sync with no entries) when
# that changed since it last did, or this long after.
TILL_REPORT_S = 600.0
TILL_REPORT_KEY = "till_report_sent"  # {"report": the last `till` sent, "at": when}


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
    retry_after_s: float | None = None  # the backend's 429 asked the till to wait this long (the engine does)
    log_sent: int = 0  # records of the till's log sent (log_push.py)
    log_status: str | None = None  # the backend's last word on the log: ok, resend, flagged; skipped, refused...

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
        self.resent = 0  # entries put back to send again: the backend was restored from a backup
        self.restored = False  # the feed said the backend was restored (even with nothing to send again)
        self.heard_at: float | None = None  # the last answer that was not a refusal (the offline policy's)
        self.withdrawal: Refused | None = None  # the backend ended this till's credential
        self.till_report = True  # False once a backend refused the `till` field (older than it)
        self.reported: dict | None = None  # the `till` a batch of this round carried last

    def __call__(self, name: str, *args, **kwargs) -> Any:
        if self.should_stop():
            raise Stopped()
        before = self.clock()
        try:
            answer = getattr(self.client, name)(*args, **kwargs)
        except (Refused, BadAnswer) as exc:
            self.reached = True
            if isinstance(exc, Refused) and exc.withdrawal:
                self.withdrawal = exc
            raise
        self.reached = True
        after = self.clock()
        self.heard_at = after
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
    report = _till_report(store, call, [entry["key"] for entry in batch])
    try:
        answer = call("sync", batch, till_time=now(), till=report)  # the till's clock, as the entries' times
    except Refused as exc:
        if _refused_till_report(exc, call, report):
            _send(store, call, batch, summary, now)  # an older backend: the same batch without the report
            return
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
    call.reported = report
    _settle(store, batch, answer, summary, now())


def _till_report(store, call: _Clocked, leaving: list[str]) -> dict | None:
    """What the till tells the backend of itself with a sync (the operator's device list): its version, and
    its unconfirmed entries once the batch on its way (`leaving`) is taken; None to an older backend."""
    if not call.till_report:
        return None
    count, oldest = store.unsynced(leaving)
    parked, parked_oldest = store.parked_unsynced()
    return {"app_version": __version__, "outbox": count, "outbox_oldest_at": oldest, "parked": parked,
            "parked_oldest_at": parked_oldest}


def _refused_till_report(exc: Refused, call: _Clocked, report: dict | None) -> bool:
    """True (and no report from now on) when a backend older than the `till` field refused it."""
    if report is None or exc.status != 400 or exc.code != "unknown_field" or "'till'" not in str(exc):
        return False
    log.info("sync: the backend does not take the till's report (an older version): sending without it")
    call.till_report = False
    return True


def _report_till(store, call: _Clocked, now: Callable[[], float]) -> None:
    """After the push: a round whose batches carried no report tells the backend of the till (a sync with
    no entries) when that changed since it last did, or TILL_REPORT_S after."""
    report = call.reported or _till_report(store, call, [])
    if report is None:
        return
    sent = store.stored(TILL_REPORT_KEY).get(TILL_REPORT_KEY)
    sent = sent if isinstance(sent, dict) else {}
    fresh = isinstance(sent.get("at"), (int, float)) and 0 <= now() - sent["at"] < TILL_REPORT_S
    if call.reported is None:
        if sent.get("report") == report and fresh:
            return
        try:
            call("sync", [], till_time=now(), till=report)
        except Refused as exc:
            if _refused_till_report(exc, call, report):
                return
            raise
    store.set(TILL_REPORT_KEY, {"report": report, "at": now()})


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
        if isinstance(exc, RateLimited) or (isinstance(exc, Unreachable) and not isinstance(exc, BadAnswer)
                                            and exc.__cause__ is not None):
            raise  # the backend could not be reached at all, or asked to wait: the catalog cannot come either
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
        resent = _restored(store, page)
        if resent is not None:  # the backend was restored: its feed again from the start (store/retention.py)
            call.resent += resent
            call.restored = True
            cursor, changed = store.feed_cursor, True
            continue
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


def _restored(store, page: Any) -> int | None:
    """None, or how many entries this till put back to send again: the page shows a restored backend."""
    try:
        return store.notice_epoch(wire.parse_epoch(page, "feed"))
    except ValueError as exc:
        raise BadAnswer(str(exc)) from exc


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
    withdrawn = standing.withdrawn(store)
    if withdrawn is not None:  # its credential is ended: asking again would only hammer the backend
        return SyncSummary(error=f"{withdrawn}: {standing.Withdrawn(withdrawn)}", outbox=store.outbox_size(),
                           last_sync=store.get("last_sync"), clock_skew_s=store.get("clock_skew_s"))
    summary = SyncSummary().to_json()  # counted up by the steps below, then frozen
    call = _Clocked(client, clock, should_stop)
    requests_before = client.requests
    try:
        _push(store, call, summary, clock)
        _settle_pending(store, call, summary, pending_begun_before)
        _report_till(store, call, clock)
        push_log(store, call, summary, clock=clock)  # the till's log, checked by the backend
        if pull:
            _pull(store, call, summary, clock)
            if call.resent:
                _push(store, call, summary, clock)  # what a restored backend lost, sent again at once
            if call.restored:
                push_log(store, call, summary, clock=clock)  # and its log, from what the backend still holds
    except Stopped:
        summary["error"] = "stopped"
    except (Unreachable, Refused) as exc:
        summary["error"] = str(exc)[:500]
        if isinstance(exc, RateLimited):  # the round ends at the first 429; nothing more is sent meanwhile
            summary["retry_after_s"] = exc.retry_after_s
    except sqlite3.Error as exc:
        # The till's own store failed (a full disk): nothing was confirmed, all is retried.
        summary["error"] = f"till store: {exc}"
        log.error("sync round: the till's store failed: %s", exc)
    summary["reached"] = call.reached
    summary["requests"] = client.requests - requests_before
    try:
        if call.skew is not None:
            store.set("clock_skew_s", call.skew)
        if call.heard_at is not None:
            standing.note_heard(store, call.heard_at)
        if call.withdrawal is not None:
            standing.mark(store, call.withdrawal.withdrawal, str(call.withdrawal), now=clock())
        if summary["error"] != "stopped":
            store.note_sync_run(summary["error"] is None, summary["error"], now=clock())
        summary["outbox"] = store.outbox_size()
    except sqlite3.Error as exc:
        summary["error"] = summary["error"] or f"till store: {exc}"
        summary["outbox"] = None
    summary["last_sync"] = store.get("last_sync")
    summary["clock_skew_s"] = store.get("clock_skew_s")
    return SyncSummary(**summary)
