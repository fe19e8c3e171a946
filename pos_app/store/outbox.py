"""The sync outbox: what this till must still tell the backend, oldest first, until the
backend confirms it (docs/sync.md); entries refused for good are parked, never dropped.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Mapping

from ..core import wire
from ..core.domain import Reason
from ..core.report import DISPUTES, GIVEN_BUT_REFUSED, TIME_FLAGS
from ..core.verdict import local_day
from .retention import Retention

log = logging.getLogger(__name__)

MAX_REQUEUED = 1_000_000  # entries put back from a damaged store: far past any real outbox


class Outbox(Retention):
    """A part of TillStore (needs StoreBase and Uses); what it confirmed is kept a while (retention.py)."""

    def requeue(self, entries: list[Mapping[str, Any]], *, now: float | None = None) -> int:
        """Put back outbox entries exported from this till's damaged store (store/recovery.py); returns how many.

        Each goes to the outbox as it was, key and all: the backend keeps a key it already has only once
        (`duplicate`), so sending one twice is harmless, while not sending it would lose a redemption. An
        accepted personal code is marked used here and a printed code's use counted, so the fresh store
        does not redeem them again offline before the backend has them. An entry that is not one this
        till could have written (the file was damaged) is left out; the exported file keeps it."""
        now = time.time() if now is None else float(now)
        put = 0
        with self.transaction():
            for entry in entries[:MAX_REQUEUED]:
                payload = entry.get("payload") if isinstance(entry, Mapping) else None
                if not wire.is_outbox_entry(payload):
                    continue
                added = self.conn.execute(
                    "INSERT OR IGNORE INTO outbox (key, payload, created_at) VALUES (?, ?, ?)",
                    (payload["key"], json.dumps(payload), now)).rowcount
                put += added
                if not added or payload.get("type") == "void" or payload.get("accepted") is not True:
                    continue
                if payload.get("kind") == "personal" and isinstance(payload.get("jti"), str):
                    self.conn.execute(
                        "INSERT OR IGNORE INTO used_tokens (jti, at, till, store_id, origin)"
                        " VALUES (?, ?, ?, ?, 'local')", (payload["jti"], payload["at"], self.device_name,
                                                          self.store_id))
                elif payload.get("kind") == "printed" and isinstance(payload.get("voucher_id"), str):
                    self.count_printed_use(payload["voucher_id"], self.store_id,
                                           local_day(payload["at"], self.store_timezone))
        return put

    def outbox_batch(self, limit: int = 500) -> list[dict]:
        """The next sync Entries to send, oldest first, parked ones left out.

        An entry queued before entries carried their `input` gets it here, from its attempt: without it
        the backend cannot judge the redemption, and records it as unproven."""
        cursor = self.conn.execute(
            "SELECT o.payload, a.input FROM outbox o LEFT JOIN attempts a ON a.key = o.key"
            " WHERE o.parked_reason IS NULL ORDER BY o.seq LIMIT ?", (limit,))
        batch = []
        for payload, scanned in cursor:
            entry = json.loads(payload)
            if "input" not in entry and entry.get("type") != "void" and isinstance(scanned, str):
                entry["input"] = scanned
            batch.append(entry)
        return batch

    def outbox_confirm(self, results: list[Mapping[str, Any]], *, now: float | None = None) -> None:
        """Take the backend's `/sync` results: confirmed entries leave the outbox, in one transaction with
        what the backend said of them (a conflict's winner, a dispute, a void's `verified`)."""
        now = time.time() if now is None else float(now)
        with self.transaction():
            for result in results:
                key, status = result.get("key"), result.get("status")
                if status in ("recorded", "duplicate", "conflict"):
                    over_limit = result.get("over_limit")
                    self.conn.execute(
                        "UPDATE attempts SET synced_at = coalesce(synced_at, ?),"
                        " over_limit = coalesce(?, over_limit) WHERE key = ?",
                        (now, over_limit if isinstance(over_limit, str) else None, key))
                if status in ("recorded", "duplicate", "conflict"):
                    self.keep_confirmed(key, now)  # sent again if the backend is restored from a backup
                if status in ("recorded", "duplicate"):
                    self.conn.execute("DELETE FROM outbox WHERE key = ?", (key,))
                    verified = result.get("verified")
                    self.conn.execute(
                        "UPDATE voids SET synced_at = coalesce(synced_at, ?), verified = coalesce(?, verified)"
                        " WHERE id = ?", (now, int(verified) if isinstance(verified, bool) else None, key))
                    # A duplicate carries the first answer's judgement too (a till that lost that answer).
                    self._judged(key, result)
                elif status == "conflict":
                    winner = result.get("winner") or {}
                    self.conn.execute("DELETE FROM outbox WHERE key = ?", (key,))
                    self.conn.execute(
                        "UPDATE attempts SET status = 'conflict', conflict = ? WHERE key = ?",
                        (json.dumps(winner), key))
                    if winner.get("jti"):
                        # The backend's first redemption is the one every till should tell of.
                        self.conn.execute(
                            "INSERT OR REPLACE INTO used_tokens (jti, at, till, store_id, origin)"
                            " VALUES (?, ?, ?, ?, 'feed')",
                            (winner["jti"], winner.get("at"), winner.get("till") or "",
                             winner.get("store_id") or ""))
                else:
                    log.warning("sync result %r for %r left in the outbox", status, key)
            self.forget_kept(now)
            self.forget_lan_printed(now)

    def _judged(self, key: str, result: Mapping[str, Any]) -> None:
        """Keep the backend's judgement of a redemption where it differs from this till's (docs/sync.md).

        A redemption this till accepted that the backend refuses is refused here too from now on, as a
        conflict is: the backend counts its own verdict, and so does this till's report, which lists it as
        a dispute (the discount was given; `accepted` and `reason` keep what the till said). A till's refusal
        the backend would have accepted stays refused: the customer got nothing."""
        dispute, reason, flag = result.get("dispute"), result.get("reason"), result.get("time_flag")
        dispute = dispute if dispute in DISPUTES else None  # only words the report knows are kept
        flag = flag if flag in TIME_FLAGS else None
        if dispute is None and flag is None:
            return
        reason = reason if reason in Reason.ALL else None
        self.conn.execute(
            "UPDATE attempts SET dispute = ?, backend_reason = ?, time_flag = ?,"
            " status = CASE WHEN ? THEN 'refused' ELSE status END"
            " WHERE key = ?", (dispute, reason if dispute else None, flag, dispute in GIVEN_BUT_REFUSED, key))

    def outbox_park(self, key: str, reason: str) -> None:
        """Set an entry aside that the backend refused for good (a permanent 4xx)."""
        self.conn.execute("UPDATE outbox SET parked_reason = ? WHERE key = ?", (reason, key))

    def outbox_unpark(self, keys: list[str] | None = None) -> int:
        """Put parked entries (all, or these keys) back in line, e.g. after the backend was fixed."""
        with self.transaction():
            if keys is None:
                cursor = self.conn.execute("UPDATE outbox SET parked_reason = NULL WHERE parked_reason IS NOT NULL")
                return cursor.rowcount
            return sum(self.conn.execute("UPDATE outbox SET parked_reason = NULL WHERE key = ?", (key,)).rowcount
                       for key in keys)

    def outbox_note_failure(self, keys: list[str], error: str) -> None:
        with self.transaction():
            self.conn.executemany(
                "UPDATE outbox SET tries = tries + 1, last_error = ? WHERE key = ?",
                [(error, key) for key in keys])

    def unsynced(self, leaving: list[str] = ()) -> tuple[int, float | None]:
        """Entries the backend has not confirmed (parked ones too) and when the oldest was queued, as the till
        reports them (`till.outbox`); `leaving`: keys of a batch on its way, counted as gone."""
        return self.conn.execute(
            "SELECT count(*), min(created_at) FROM outbox WHERE key NOT IN (SELECT value FROM json_each(?))",
            (json.dumps(list(leaving)),)).fetchone()

    def parked_unsynced(self) -> tuple[int, float | None]:
        """Entries the backend refused for good, set aside here, and when the oldest was queued (`till.parked`,
        `till.parked_oldest_at`: the backend's reconciliation flags old ones)."""
        return self.conn.execute(
            "SELECT count(*), min(created_at) FROM outbox WHERE parked_reason IS NOT NULL").fetchone()

    def outbox_rows(self) -> list[dict]:
        """Every entry the backend has not confirmed, oldest first, parked ones marked (an export for the
        operator: store/outbox_export.py)."""
        cursor = self.conn.execute(
            "SELECT key, payload, created_at, tries, last_error, parked_reason FROM outbox ORDER BY seq")
        rows = []
        for key, payload, created, tries, error, reason in cursor:
            entry = json.loads(payload)
            rows.append({"key": key, "type": "void" if entry.get("type") == "void" else "redemption",
                         "parked": reason is not None, "parked_reason": reason, "created_at": created,
                         "tries": tries, "last_error": error, "payload": entry})
        return rows

    def outbox_size(self) -> int:
        return self.conn.execute(
            "SELECT count(*) FROM outbox WHERE parked_reason IS NULL").fetchone()[0]
