"""The till's tamper-evident log in its store: one record per attempt it finishes and per void it makes,
appended in that record's own transaction (the rules are pos_app.core.till_log).

A chain alone shows a record deleted, edited, moved or cut off the end; it cannot show an edit of the
attempts or voids tables, which are what the reports and the sync read. So the store also checks its
records against those rows (`log_self_check`): a row gone, a row whose fields differ from its record,
a seq missing. The sync round sends what it finds with the records (docs/sync.md, "The till's log").

The chain's cost rides on every verdict: one indexed read of the last (seq, hash), one body in fixed
order (no sorted-keys JSON), one sha256, one insert (bench/till_log_cost.py).
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import date
from typing import Any

from ..core import till_log
from ..core.report import window

LOG_KEY = "log_private_key"  # the till's Ed25519 key (base64), made before it enrolls
ACKED = "log_acked_seq"  # the last seq the backend holds of this till's log
# The backend was restored from a backup: at the next round the till asks what it holds of the log (the
# answer `resend` says from where), even with no new record to send.
ASK = "log_ask_held"
CHECK = "log_check"  # {"cursor": the rotating self-check's last seq, "at": when it last ran}
SELF_CHECK_WINDOW = 20_000  # records checked per pass: a whole chain is covered over rounds
SELF_CHECK_EVERY_S = 30.0  # a round more often than this checks only the records it is about to send
MAX_TAMPERED = 100  # what one check lists; the backend takes at most this many
EXPORT_FORMAT = "pika-till-log/1"
# What the self-check finds (stable codes, sent to the backend as `tampered[].problem`).
ROW_MISSING, ROW_CHANGED, CHAIN_MISSING = "row_missing", "row_changed", "chain_missing"
CHAIN_EDITED = "chain_edited"  # a record that no longer links: said at the till and in its export's check

_LAST = "SELECT seq, hash FROM log_chain ORDER BY seq DESC LIMIT 1"  # the rowid's b-tree: one page read
_APPEND = "INSERT INTO log_chain (seq, kind, key, body, hash) VALUES (?, ?, ?, ?, ?)"
# The attempt's columns a record says, by the body's field index (till_log.ATTEMPT_FIELDS).
_ATTEMPT_COLUMNS = (("at", 2), ("reason", 4), ("kind", 5), ("voucher_id", 6), ("jti", 7), ("code", 8),
                    ("method", 9), ("staff_id", 10), ("decided", 11))
_VOID_COLUMNS = (("at", 2), ("redemption_key", 3), ("reason", 4), ("staff_id", 5))


class Chain:
    """A part of TillStore (needs StoreBase)."""

    # --- appending (inside the record's own transaction) --------------------------------

    def _chain_append(self, kind: str, key: str, body: str) -> None:
        # Read inside the caller's write transaction: the window's connection and the sync engine's may
        # both append, and BEGIN IMMEDIATE orders them, so each sees the other's last record.
        last = self.conn.execute(_LAST).fetchone()
        seq, prev = (1, till_log.GENESIS) if last is None else (last[0] + 1, last[1])
        self.conn.execute(_APPEND, (seq, kind, key, body, till_log.link(prev, body)))

    def _log_attempt(self, *, key: str, at: float, accepted: bool, attempt: dict, method: str,
                     staff_id: str | None, decided: str, day: str, input_text: str | None,
                     input_sha: str | None = None) -> None:
        """The record of an attempt reaching 'done' (`attempt`: _attempt_values of its verdict; `input_sha`:
        till_log.input_digest of `input_text` if made before the transaction)."""
        self._chain_append(till_log.ATTEMPT, key, till_log.attempt_body(
            key=key, at=at, status="accepted" if accepted else "refused", reason=attempt["reason"],
            kind=attempt["kind"], voucher_id=attempt["voucher_id"], jti=attempt["jti"], code=attempt["code"],
            method=method, staff_id=staff_id, decided=decided, day=day, store_id=self.store_id,
            till=self.device_name, input_text=input_text, input_sha=input_sha))

    def _log_void(self, *, key: str, at: float, redemption_key: str, reason: str, staff_id: str | None) -> None:
        self._chain_append(till_log.VOID, key, till_log.void_body(
            key=key, at=at, redemption_key=redemption_key, reason=reason, staff_id=staff_id,
            store_id=self.store_id, till=self.device_name))

    # --- reading --------------------------------------------------------------------------

    def log_head(self) -> tuple[int, str]:
        """The last record's (seq, hash); (0, GENESIS) for an empty log."""
        last = self.conn.execute(_LAST).fetchone()
        return (0, till_log.GENESIS) if last is None else (last[0], last[1])

    def log_since(self, after: int, limit: int = 1000) -> list[dict]:
        """Records after seq `after`, in order: {seq, body, hash}."""
        cursor = self.conn.execute("SELECT seq, body, hash FROM log_chain WHERE seq > ? ORDER BY seq LIMIT ?",
                                   (int(after), int(limit)))
        return [{"seq": seq, "body": body, "hash": hash_} for seq, body, hash_ in cursor]

    def log_acked(self) -> int:
        """The last seq the backend said it holds (0: none yet)."""
        acked = self.stored(ACKED).get(ACKED)
        return acked if till_log.is_seq(acked) else 0

    def note_log_acked(self, seq: int) -> None:
        with self.transaction():
            self.write_setting(ACKED, int(seq))
        self.keep_setting(ACKED, int(seq))

    def log_ask_due(self) -> bool:
        """Whether the backend's copy of the log is to be asked for (it was restored since the last answer)."""
        return self.stored(ASK).get(ASK) is True

    def log_asked(self) -> None:
        self.set(ASK, False)

    # --- the till's key -------------------------------------------------------------------

    def log_key_for_enrollment(self) -> str:
        """The private key to enroll with: the till's own if it has one, else a new one, kept by
        `save_enrollment(..., log_private_key=)` once the backend enrolled its public half."""
        kept = self.stored(LOG_KEY).get(LOG_KEY)
        return kept if isinstance(kept, str) and kept else till_log.new_private_key()

    def _log_private_key(self) -> str:
        kept = self.get(LOG_KEY)
        if isinstance(kept, str) and kept:
            return kept
        # A till enrolled before its log existed makes its key now; under the write lock, so the window's
        # connection and the engine's cannot each make one (the backend takes the first it is sent).
        with self.transaction():
            kept = self.stored(LOG_KEY).get(LOG_KEY)
            if not (isinstance(kept, str) and kept):
                kept = till_log.new_private_key()
                self.write_setting(LOG_KEY, kept)
        self.keep_setting(LOG_KEY, kept)
        return kept

    def log_public_key(self) -> str:
        return till_log.public_key_of(self._log_private_key())

    def signed_head(self) -> dict:
        """The log's head signed with the till's key: {seq, hash, sig}."""
        seq, hash_ = self.log_head()
        return {"seq": seq, "hash": hash_, "sig": self.sign_log_head(seq, hash_)}

    def sign_log_head(self, seq: int, hash_: str) -> str:
        """The till's signature over its record `seq` having hash `hash_` (a batch's last record)."""
        return till_log.sign_head(self._log_private_key(), self.device_id, seq, hash_)

    # --- the self-check ----------------------------------------------------------------------

    def log_self_check(self, *, after: int | None = None, window: int = SELF_CHECK_WINDOW,
                       rotate: bool = False, whole: bool = False, now: float | None = None) -> list[dict]:
        """What was changed by hand: [{seq, key, problem, detail}] (at most MAX_TAMPERED), problems
        row_missing, row_changed, chain_missing, chain_edited.

        `after`: the records after it (those about to be sent, up to `window`), and a log ending before it
        (its records gone). `rotate`: also the next `window` records from the cursor kept in the setting
        log_check, at most every SELF_CHECK_EVERY_S, so the whole chain is covered over rounds. `whole`:
        every record (a command's check)."""
        head, _ = self.log_head()
        found: list[dict] = []
        if whole:
            for lo in range(1, head + 1, window):
                found += self._check_range(lo, min(head, lo + window - 1))
        if after is not None:
            if after > head:  # the log ends before what the backend holds: its last records were deleted
                found += [_item(seq, None, CHAIN_MISSING, "the record is gone from log_chain (the log ends at"
                                f" {head}, the backend holds up to {after})")
                          for seq in range(head + 1, min(after, head + MAX_TAMPERED) + 1)]
            elif after < head:
                found += self._check_range(after + 1, min(head, after + window))
        if rotate and not whole:
            found += self._rotate(head, window, time.time() if now is None else float(now))
        unique = {(item["seq"], item["problem"]): item for item in found}
        return sorted(unique.values(), key=lambda item: (item["seq"], item["problem"]))[:MAX_TAMPERED]

    def _rotate(self, head: int, window: int, now: float) -> list[dict]:
        kept = self.stored(CHECK).get(CHECK)
        kept = kept if isinstance(kept, dict) else {}
        at, cursor = kept.get("at"), kept.get("cursor")
        if isinstance(at, (int, float)) and 0 <= now - at < SELF_CHECK_EVERY_S:
            return []
        cursor = cursor if till_log.is_seq(cursor) and cursor < head else 0
        end = min(head, cursor + window)
        found = self._check_range(cursor + 1, end) if end > cursor else []
        with self.transaction():
            self.write_setting(CHECK, {"cursor": 0 if end >= head else end, "at": now})
        return found

    def _check_range(self, lo: int, hi: int) -> list[dict]:
        """The records lo..hi: each seq present, each linking to the one before, each matching its row."""
        if hi < lo:
            return []
        rows = self.conn.execute("SELECT seq, key, body, hash FROM log_chain WHERE seq BETWEEN ? AND ?"
                                 " ORDER BY seq", (max(1, lo - 1), hi)).fetchall()
        keys = {seq: key for seq, key, _, _ in rows}
        found = []
        records = [{"seq": seq, "body": body, "hash": hash_} for seq, _, body, hash_ in rows]
        if lo == 1:
            after, prev = 0, till_log.GENESIS
        elif records and records[0]["seq"] == lo - 1:
            after, prev = lo - 1, records.pop(0)["hash"]
        else:  # the record before the range is gone too: links are checked from the first one here
            after, prev = (records[0]["seq"], records.pop(0)["hash"]) if records else (hi, "")
            found += [_item(seq, None, CHAIN_MISSING, "the record is gone from log_chain")
                      for seq in range(lo, min(after, lo + MAX_TAMPERED))]
        for problem in till_log.verify_segment(records, prev=prev, after=after):
            code = CHAIN_MISSING if problem.code == till_log.GAP else CHAIN_EDITED
            detail = "the record is gone from log_chain" if code == CHAIN_MISSING else problem.message
            found += [_item(seq, keys.get(seq), code, detail) for seq in problem.seqs[:MAX_TAMPERED]]
        if len(records) < hi - after:  # a record missing past the last present one
            last = records[-1]["seq"] if records else after
            found += [_item(seq, None, CHAIN_MISSING, "the record is gone from log_chain")
                      for seq in range(last + 1, min(hi, last + MAX_TAMPERED) + 1)]
        return found + self._check_rows(lo, hi)

    def _check_rows(self, lo: int, hi: int) -> list[dict]:
        found = []
        for seq, key, body, state, at, reason, kind, voucher_id, jti, code, method, staff_id, decided, \
                status, accepted, dispute, stored_input in self.conn.execute(
                "SELECT c.seq, c.key, c.body, a.state, a.at, a.reason, a.kind, a.voucher_id, a.jti, a.code,"
                " a.method, a.staff_id, a.decided, a.status, a.accepted, a.dispute, a.input FROM log_chain c"
                " LEFT JOIN attempts a ON a.key = c.key WHERE c.seq BETWEEN ? AND ? AND c.kind = 'attempt'",
                (lo, hi)):
            fields = _fields(body)
            if fields is None:
                continue  # a body that is not one: the chain's check said so
            if state is None:
                found.append(_item(seq, key, ROW_MISSING, "the attempt's row is gone from attempts"))
                continue
            row = dict(at=at, reason=reason, kind=kind, voucher_id=voucher_id, jti=jti, code=code,
                       method=method, staff_id=staff_id, decided=decided)
            changed = [name for name, index in _ATTEMPT_COLUMNS if row[name] != fields[index]]
            if state != "done":
                changed.append("state")
            if not _status_agrees(fields[3], status, accepted, dispute):
                changed.append("status")
            if fields[15] != _digest(stored_input):
                changed.append("input")
            if changed:
                found.append(_item(seq, key, ROW_CHANGED, _changed(changed, fields, row, _ATTEMPT_COLUMNS)))
        for seq, key, body, row_id, at, redemption_key, reason, staff_id, origin in self.conn.execute(
                "SELECT c.seq, c.key, c.body, v.id, v.at, v.redemption_key, v.reason, v.staff_id, v.origin"
                " FROM log_chain c LEFT JOIN voids v ON v.id = c.key WHERE c.seq BETWEEN ? AND ?"
                " AND c.kind = 'void'", (lo, hi)):
            fields = _fields(body)
            if fields is None:
                continue
            if row_id is None:
                found.append(_item(seq, key, ROW_MISSING, "the void's row is gone from voids"))
                continue
            row = dict(at=at, redemption_key=redemption_key, reason=reason, staff_id=staff_id)
            changed = [name for name, index in _VOID_COLUMNS if row[name] != fields[index]]
            if origin != "local":
                changed.append("origin")
            if changed:
                found.append(_item(seq, key, ROW_CHANGED, _changed(changed, fields, row, _VOID_COLUMNS)))
        return found

    # --- the export ---------------------------------------------------------------------------

    def log_export(self, since: date | None = None, until: date | None = None, *,
                   now: float | None = None) -> dict:
        """The records of the store's local days since..until (both included; None: from the first, to
        the last) as one contiguous segment, with what checks it: the record before it (`after`, `prev`)
        and the head at its last record, signed now (docs/sync.md, "The till's log")."""
        tz = self.store_timezone
        start = window(since, since, tz)[0] if since else float("-inf")
        end = window(until, until, tz)[1] if until else float("inf")
        # A record's time is its body's third field, whatever its kind; times need not rise with seq (an
        # offline fallback keeps its scan's time), so the segment runs from the first to the last in range.
        first, last = self.conn.execute(
            "SELECT min(seq), max(seq) FROM log_chain WHERE json_valid(body)"
            " AND json_extract(body, '$[2]') >= ? AND json_extract(body, '$[2]') < ?",
            (max(start, -1e300), min(end, 1e300))).fetchone()
        records = [] if first is None else [
            {"seq": seq, "body": body, "hash": hash_} for seq, body, hash_ in self.conn.execute(
                "SELECT seq, body, hash FROM log_chain WHERE seq BETWEEN ? AND ? ORDER BY seq", (first, last))]
        before = self.conn.execute(
            "SELECT seq, hash FROM log_chain WHERE seq < ? ORDER BY seq DESC LIMIT 1",
            (first if first is not None else self.log_head()[0] + 1,)).fetchone()
        # The record just before, or the nearest one kept: records deleted there show as a gap in the file.
        after, prev = (0, till_log.GENESIS) if before is None else before
        if first is None:
            head_seq, head_hash = after, prev
        else:
            head_seq, head_hash = records[-1]["seq"], records[-1]["hash"]
        sig = self.sign_log_head(head_seq, head_hash)
        return {"format": EXPORT_FORMAT, "device_id": self.device_id, "device_name": self.device_name,
                "retailer_id": self.retailer_id, "store_id": self.store_id, "public_key": self.log_public_key(),
                "since": since.isoformat() if since else None, "until": until.isoformat() if until else None,
                "after": after, "prev": prev, "records": records,
                "head": {"seq": head_seq, "hash": head_hash, "sig": sig},
                "exported_at": time.time() if now is None else float(now)}


def _item(seq: int, key: str | None, problem: str, detail: str) -> dict:
    return {"seq": seq, "key": key, "problem": problem, "detail": detail[:300]}


def _fields(body: Any) -> list | None:
    try:
        fields = json.loads(body)
    except (TypeError, ValueError, RecursionError):
        return None
    names = till_log.ATTEMPT_FIELDS if isinstance(fields, list) and fields[:1] == ["attempt"] \
        else till_log.VOID_FIELDS
    return fields if isinstance(fields, list) and len(fields) == len(names) else None


def _digest(stored_input: str | None) -> str | None:
    # As till_log.attempt_body makes it.
    return None if stored_input is None else \
        hashlib.sha256(stored_input.encode("utf-8", "backslashreplace")).hexdigest()[:32]


def _status_agrees(said: Any, status: str | None, accepted: int | None, dispute: str | None) -> bool:
    """The row's status as the sync may have changed it since: an acceptance the backend found a conflict,
    or refused in a dispute (store/outbox.py); a refusal stays one."""
    if said == "accepted":
        return accepted == 1 and (status in ("accepted", "conflict") or (status == "refused" and dispute is not None))
    return said == "refused" and accepted == 0 and status == "refused"


def _changed(names: list[str], fields: list, row: dict, columns: tuple) -> str:
    index = dict(columns)
    shown = [f"{name}: {fields[index[name]]!r} in the log, {row[name]!r} in the row" if name in index else name
             for name in names]
    return "changed: " + "; ".join(shown)
