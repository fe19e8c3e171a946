"""One round of sync between a till's store and the backend.

Push the outbox (FIFO, batches of at most 500, an entry leaves only when the
backend confirmed it), settle attempts a crash left pending, then pull the
catalog and the feed. The background engine of a later issue calls this on a
schedule; `python -m pos_app sync` and the sync panel call it once.
"""

from __future__ import annotations

import time
from typing import Callable

from .backend_client import BackendClient, Refused, Unreachable
from .core.domain import Verdict

BATCH = 500


def _push(store, client: BackendClient, summary: dict) -> None:
    while True:
        batch = store.outbox_batch(BATCH)
        if not batch:
            return
        try:
            answer = client.sync(batch)
        except Refused as exc:
            if len(batch) == 1:
                # A permanent refusal: park it with its reason, never retry forever.
                store.outbox_park(batch[0]["key"], f"{exc.status} {exc.code}")
                summary["parked"] += 1
                continue
            # One bad entry must not hold up the rest: send them one by one.
            for entry in batch:
                try:
                    _settle(store, client.sync([entry]), summary)
                except Refused as single:
                    store.outbox_park(entry["key"], f"{single.status} {single.code}")
                    summary["parked"] += 1
            continue
        except Unreachable:
            store.outbox_note_failure([e["key"] for e in batch], "backend unreachable")
            raise
        _settle(store, answer, summary)
        summary["server_time"] = answer.get("server_time")


def _settle(store, answer: dict, summary: dict) -> None:
    results = answer["results"]
    store.outbox_confirm(results)
    for result in results:
        status = result["status"]
        if status in ("recorded", "duplicate", "conflict"):
            summary["pushed"] += 1
            summary[{"recorded": "recorded", "duplicate": "duplicates", "conflict": "conflicts"}[status]] += 1
        else:
            store.outbox_park(result["key"], result.get("reason", status))
            summary["parked"] += 1


def _settle_pending(store, client: BackendClient, summary: dict) -> None:
    """Attempts a crash left between 'key written' and 'answer recorded'."""
    for attempt in store.pending_online():
        found = client.lookup_redemption(attempt["key"])
        if found is not None:
            store.finish_online(attempt["key"], Verdict.from_json(found["answer"]["verdict"]))
        else:
            # The backend never saw it and the till crashed before deciding
            # offline: no verdict was shown, so there is no redemption to keep.
            store.abandon_pending(attempt["key"])
        summary["pending_settled"] += 1


def _pull(store, client: BackendClient, summary: dict) -> None:
    catalog = client.catalog()
    store.apply_catalog(catalog)
    summary["server_time"] = catalog.get("server_time", summary.get("server_time"))
    cursor = int(store.get("feed_cursor", 0) or 0)
    while True:
        page = client.feed(cursor)
        store.apply_feed(page["events"], page["cursor"])
        summary["feed_events"] += len(page["events"])
        cursor = page["cursor"]
        if not page.get("more"):
            return


def sync_once(store, client: BackendClient, *, clock: Callable[[], float] = time.time) -> dict:
    """Push, settle, pull; returns a summary. Network trouble ends the round, not the till."""
    summary = {"pushed": 0, "recorded": 0, "duplicates": 0, "conflicts": 0, "parked": 0,
               "pending_settled": 0, "feed_events": 0, "error": None}
    started = clock()
    try:
        _push(store, client, summary)
        _settle_pending(store, client, summary)
        _pull(store, client, summary)
    except (Unreachable, Refused) as exc:
        summary["error"] = str(exc)
        store.set("last_error", {"at": started, "error": str(exc)})
    else:
        store.set("last_sync", clock())
        if summary.get("server_time"):
            store.set("clock_skew_s", round(started - float(summary["server_time"]), 3))
    summary["outbox"] = store.outbox_size()
    summary["last_sync"] = store.get("last_sync")
    summary["clock_skew_s"] = store.get("clock_skew_s")
    summary.pop("server_time", None)
    return summary
