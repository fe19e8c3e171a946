"""What the till keeps after the backend confirmed it, and what it does when the backend was restored.

A backend restored from a backup has lost whatever it recorded after the
backup was taken, and its event log is rewound: its seqs will be given again
to new events. So the till keeps every outbox entry the backend confirmed
for `retention_days` (`kept_entries`), and its online-accepted redemptions are
in its attempts already (its online refusals too). When the backend shows a NEW epoch (one it did not
have before), or an event log whose head is below this till's cursor, the
till: puts back in its outbox every kept entry and online answer
confirmed at or after the epoch's `since` (less a margin for clocks and the
moment of the copy), so the backend records again what it lost and answers
`duplicate` for what it still has (idempotency keys decide: nothing counts
twice); and reads the feed again from the start, its dedupe by seq
forgotten, since seqs are reused. Codes it knows as used stay used; printed
codes' counts are made again from its own redemptions plus the feed.
"""

from __future__ import annotations

import json
import logging
import time

from ..core import wire
from ..core.verdict import local_day
from . import settings
from .chain import ASK as LOG_ASK

log = logging.getLogger(__name__)

EPOCH_KEY = "backend_epoch"
# Sent again: what the backend confirmed from this long before the backup's time on (clocks differ, and a
# commit and its answer are not one instant).
RESEND_MARGIN_S = 900.0
DAY_S = 86_400.0
_ONLINE_FIELDS = ("key", "at", "accepted", "reason", "kind", "voucher_id", "jti", "code", "method", "staff_id",
                  "input")


class Retention:
    """A part of TillStore (needs StoreBase, Uses and the outbox's table)."""

    def keep_confirmed(self, key: str, now: float) -> None:
        """An entry the backend confirmed, kept before it leaves the outbox (inside the caller's transaction)."""
        self.conn.execute(
            "INSERT OR REPLACE INTO kept_entries (key, payload, confirmed_at) SELECT key, payload, ? FROM outbox"
            " WHERE key = ?", (now, key))

    def forget_kept(self, now: float) -> int:
        """Kept entries older than the retention period, gone (inside the caller's transaction)."""
        days = settings.value(self, "retention_days")
        return self.conn.execute("DELETE FROM kept_entries WHERE confirmed_at < ?", (now - days * DAY_S,)).rowcount

    def kept_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM kept_entries").fetchone()[0]

    def notice_epoch(self, seen: wire.Epoch, *, now: float | None = None) -> int | None:
        """What a feed page said of the backend's history. None if nothing changed; else the backend was restored
        (a new epoch, or a head below our cursor) and this till has put back what to send again (how many) and
        rewound its feed to the start."""
        known = self.get(EPOCH_KEY)
        rewound = seen.head is not None and seen.head < self.feed_cursor
        renewed = seen.epoch is not None and isinstance(known, str) and seen.epoch != known
        if not (rewound or renewed):
            if seen.epoch is not None and seen.epoch != known:
                self.set(EPOCH_KEY, seen.epoch)  # the first epoch this till hears: nothing to compare yet
            return None
        now = time.time() if now is None else float(now)
        since = (seen.since or 0.0) - RESEND_MARGIN_S + self.clock_skew()  # on this till's clock
        with self.transaction():
            resent = self._put_back(since, now)
            self._rewind_feed()
            self.write_setting(LOG_ASK, True)  # it may hold less of this till's log: ask at the next round
            if seen.epoch is not None:
                self.write_setting(EPOCH_KEY, seen.epoch)
        self.reload_settings()
        log.warning("the backend was restored (%s, since %s): %d entries confirmed since then sent again, "
                    "the feed read again from its start", "a new epoch" if renewed else
                    f"its event log's head {seen.head} is below this till's cursor", seen.since, resent)
        return resent

    def _put_back(self, since: float, now: float) -> int:
        """Kept entries and online answers confirmed since `since`, back in the outbox, oldest first."""
        entries = [(json.loads(payload), key) for key, payload in self.conn.execute(
            "SELECT key, payload FROM kept_entries WHERE confirmed_at >= ?", (since,))]
        for row in self.conn.execute(
                f"SELECT {', '.join(_ONLINE_FIELDS)} FROM attempts WHERE decided = 'online' AND state = 'done'"
                " AND synced_at >= ?", (since,)):
            # Refusals too: the backend's ledger counts them, and sent as refused they use nothing up.
            entry = dict(zip(_ONLINE_FIELDS, row), decided="online")
            entry["accepted"] = bool(entry["accepted"])
            entries.append(({name: entry[name] for name in wire.ENTRY_FIELDS}, entry["key"]))
        # In the order they happened: a void after the redemption it voids, a till's uses in its own order.
        entries.sort(key=lambda pair: (float(pair[0].get("at") or 0), pair[0].get("type") == "void", pair[1]))
        put = 0
        for entry, key in entries:
            put += self.conn.execute("INSERT OR IGNORE INTO outbox (key, payload, created_at) VALUES (?, ?, ?)",
                                     (key, json.dumps(entry), now)).rowcount
        return put

    def _rewind_feed(self) -> None:
        """The feed from its start: seqs are given again after a restore, so the dedupe by seq goes, and printed
        codes' counts are made again from this till's own uses (the feed brings the others' once more)."""
        self.conn.execute("DELETE FROM feed_seen")
        self.conn.execute("DELETE FROM printed_uses")
        timezone = self.store_timezone
        for voucher_id, at in self.conn.execute(
                "SELECT voucher_id, at FROM attempts WHERE state = 'done' AND accepted = 1 AND kind = 'printed'"
                " AND voucher_id IS NOT NULL").fetchall():
            self.count_printed_use(voucher_id, self.store_id, local_day(at, timezone))
        self.write_setting("feed_cursor", 0)
