"""The sync panel's figures, read from the store: queue, parked entries and feed events,
conflicts, success rate, delays (docs/sync.md). Read-only: it writes nothing and needs only
the store's public reading interface (`conn`, `stored()`, `outbox_size()`).
"""

from __future__ import annotations

import json
import math

from . import standing

# Attempts sampled for the delay percentiles: the recent past, at a bounded cost.
DELAY_SAMPLE = 1000


class Figures:
    """A part of TillStore (needs StoreBase and Outbox)."""

    def stats(self) -> dict:
        """Figures for the sync panel."""
        one = lambda sql: self.conn.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "outbox": self.outbox_size(),
            "parked": one("SELECT count(*) FROM outbox WHERE parked_reason IS NOT NULL"),
            "pending_online": one("SELECT count(*) FROM attempts WHERE state = 'pending'"),
            "conflicts": one("SELECT count(*) FROM attempts WHERE status = 'conflict'"),
            "last_sync": self.stored("last_sync").get("last_sync"),
        }

    def conflicts(self, limit: int = 200) -> list[dict]:
        """Redemptions another till won first, newest first, each with its winner {jti, at, till, store_id}."""
        cursor = self.conn.execute(
            "SELECT key, at, jti, voucher_id, staff_id, decided, conflict FROM attempts"
            " WHERE status = 'conflict' ORDER BY at DESC LIMIT ?", (limit,))
        names = ("key", "at", "jti", "voucher_id", "staff_id", "decided", "winner")
        rows = [dict(zip(names, row)) for row in cursor]
        for row in rows:
            row["winner"] = json.loads(row["winner"]) if row["winner"] else {}
        return rows

    def parked(self) -> list[dict]:
        """Outbox entries the backend refused for good, oldest first, payloads decoded."""
        cursor = self.conn.execute(
            "SELECT seq, key, payload, created_at, tries, last_error, parked_reason"
            " FROM outbox WHERE parked_reason IS NOT NULL ORDER BY seq")
        names = ("seq", "key", "payload", "created_at", "tries", "last_error", "parked_reason")
        rows = [dict(zip(names, row)) for row in cursor]
        for row in rows:
            row["payload"] = json.loads(row["payload"])
        return rows

    def sync_figures(self) -> dict:
        """What the sync panel and `status` show besides the queue (docs/sync.md)."""
        one = lambda sql: self.conn.execute(sql).fetchone()[0]  # noqa: E731
        done = one("SELECT count(*) FROM attempts WHERE state = 'done'")
        offline = one("SELECT count(*) FROM attempts WHERE state = 'done' AND decided = 'offline'")
        accepted = one("SELECT count(*) FROM attempts WHERE accepted = 1")
        conflicts = one("SELECT count(*) FROM attempts WHERE status = 'conflict'")
        delays = sorted(max(0.0, d) for (d,) in self.conn.execute(
            "SELECT synced_at - at FROM attempts WHERE synced_at IS NOT NULL ORDER BY synced_at DESC LIMIT ?",
            (DELAY_SAMPLE,)))
        now = self.stored("sync_runs_ok", "sync_runs_failed", "last_sync", "last_error", "clock_skew_s")
        ok, failed = int(now.get("sync_runs_ok") or 0), int(now.get("sync_runs_failed") or 0)
        oldest = one("SELECT min(created_at) FROM outbox WHERE parked_reason IS NULL")
        return {
            "outbox": self.outbox_size(),
            "outbox_oldest_at": oldest,
            "parked": one("SELECT count(*) FROM outbox WHERE parked_reason IS NOT NULL"),
            "pending_online": one("SELECT count(*) FROM attempts WHERE state = 'pending'"),
            "last_sync": now.get("last_sync"),
            "last_error": now.get("last_error"),
            "clock_skew_s": now.get("clock_skew_s"),
            "redemptions": done,
            "accepted": accepted,
            "conflicts": conflicts,
            "conflict_rate": round(conflicts / accepted, 4) if accepted else 0.0,
            "offline_share": round(offline / done, 4) if done else 0.0,
            "over_limit": one("SELECT count(*) FROM attempts WHERE over_limit IS NOT NULL"),
            "sync_runs": ok + failed,
            "sync_success_rate": round(ok / (ok + failed), 4) if ok + failed else None,
            "delay_p50_s": percentile(delays, 0.50),
            "delay_p95_s": percentile(delays, 0.95),
            "feed_cursor": self.feed_cursor,
            **self.feed_parked_figures(),
            # Where the till stands with the backend (store/standing.py): withdrawn, and when it last heard.
            "withdrawn": standing.withdrawn(self),
            "last_heard_at": self.stored(standing.LAST_HEARD_KEY).get(standing.LAST_HEARD_KEY),
        }

    def feed_parked_figures(self) -> dict:
        """Feed events this till could not apply (set aside, the cursor moved on) and the last one's reason."""
        count = self.conn.execute("SELECT count(*) FROM feed_parked").fetchone()[0]
        last = self.conn.execute("SELECT reason FROM feed_parked ORDER BY at DESC, seq DESC LIMIT 1").fetchone()
        return {"feed_parked": count, "feed_parked_reason": last[0] if last else None}


def percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values, rounded to the millisecond."""
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))], 3)
