"""What the sync panel, the status bar and `python -m pos_app status` show.

Read from the till's store by whichever thread owns that store; the engine
adds what only a running engine knows (online, next retry).
"""

from __future__ import annotations

from ..store import settings

PARKED_SHOWN = 50


def store_status(store) -> dict:
    """The figures kept in the store, with parked entries and the skew verdict."""
    status = store.sync_figures()
    skew = status["clock_skew_s"]
    limit = settings.value(store, "max_clock_skew_s")
    status["max_clock_skew_s"] = limit
    status["clock_skew_flagged"] = isinstance(skew, (int, float)) and abs(skew) > limit
    status["parked_entries"] = [
        {"key": row["key"], "reason": row["parked_reason"], "at": row["payload"].get("at"),
         "accepted": row["payload"].get("accepted"), "created_at": row["created_at"], "tries": row["tries"]}
        for row in store.parked()[:PARKED_SHOWN]]
    return status
