"""What the sync panel, the status bar and `python -m pos_app status` show.

Read from the till's store by whichever thread owns that store; the engine
adds what only a running engine knows (online, next retry).
"""

from __future__ import annotations

DEFAULT_MAX_SKEW_S = 120.0
PARKED_SHOWN = 50


def max_skew_s(store) -> float:
    """The setting `max_clock_skew_s`: beyond it the till's clock is flagged."""
    value = store.get("max_clock_skew_s", DEFAULT_MAX_SKEW_S)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return DEFAULT_MAX_SKEW_S
    return float(value)


def store_status(store) -> dict:
    """The figures kept in the store, with parked entries and the skew verdict."""
    status = store.sync_figures()
    skew = status["clock_skew_s"]
    limit = max_skew_s(store)
    status["max_clock_skew_s"] = limit
    status["clock_skew_flagged"] = isinstance(skew, (int, float)) and abs(skew) > limit
    status["parked_entries"] = [
        {"key": row["key"], "reason": row["parked_reason"], "at": row["payload"].get("at"),
         "accepted": row["payload"].get("accepted"), "created_at": row["created_at"], "tries": row["tries"]}
        for row in store.parked()[:PARKED_SHOWN]]
    return status
