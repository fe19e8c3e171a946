"""The till's embedded store: what a till must know to decide offline, and
what it must never lose once a cashier has seen a verdict.

One SQLite file holds the catalog, the used token ids, every redemption
attempt and the sync outbox. A verdict and everything it implies (attempt,
used `jti`, printed count, outbox entry) are written in one transaction, so
a crash, a power cut or a full disk leaves either all of it or none.

`TillStore` is one class made of parts, each in a module of its own: the
file, its transactions and settings (base.py), what the backend sends
(catalog.py), the codes already used (uses.py), the outbox (outbox.py), voids
(voids.py), the sync panel's figures (figures.py) and the till's tamper-evident log
(chain.py: a record in the transaction of each attempt finished and void made), and what the
store's other tills' logs used, heard over the LAN (lan.py). Here: deciding and
recording redemptions, the staff, and the rows the day report reads.

A store belongs to the thread that opened it (sqlite's check_same_thread):
the GUI gives all store work to one worker thread.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from pathlib import Path
from typing import Iterator

from ..core import till_log, wire
from ..core.domain import IDEMPOTENCY_KEY, Method, Verdict
from ..core.verdict import Context, decide, local_day
from . import pin_lockout, settings, standing
from .base import StoreBase
from .catalog import ASSET_KEYS_DIR, Catalog
from .chain import Chain
from .figures import Figures
from .lan import Lan
from .outbox import Outbox
from .uses import Uses
from .voids import Voids

MAX_INPUT_STORED = 4096
# A measured skew below this is the request's own latency, not a wrong clock.
SKEW_NOISE_S = 1.0


class TillStore(Figures, Voids, Lan, Chain, Outbox, Uses, Catalog, StoreBase):
    """The till's SQLite store; also the `RedemptionState` offline verdicts read."""

    def __init__(self, path: str | Path, *, device_name: str = "",
                 asset_keys_dir: Path | None = ASSET_KEYS_DIR):
        # The parts load their caches in turn: settings (StoreBase), the catalog's, the recent acceptances.
        super().__init__(path, device_name=device_name, asset_keys_dir=asset_keys_dir)

    def context(self, now: float | None = None, leeway: float | None = None) -> Context:
        """Who decides, and when, for an offline verdict (settings: leeway_s, velocity_limit)."""
        till_now = time.time() if now is None else float(now)
        # Token and voucher times are the backend's: judge them on its clock.
        now = till_now - self.clock_skew()
        if leeway is None:
            leeway = settings.value(self, "leeway_s")
        # The backend's issuer, from enrollment or the catalog; a till that has not
        # heard it yet (enrolled with an older backend) checks no `iss`.
        issuer = self.get("issuer")
        return Context(trust=self.trust_set(), retailer_id=self.retailer_id, store_id=self.store_id,
                       now=now, day=local_day(now, self.store_timezone), leeway=leeway,
                       velocity_limit=settings.value(self, "velocity_limit"),
                       issuer=issuer if isinstance(issuer, str) else "",
                       offline_too_long=standing.days_unheard(self, till_now))

    def clock_skew(self) -> float:
        """This till's clock minus the backend's, as last measured; 0 when unknown or within noise."""
        skew = self.get("clock_skew_s")
        if isinstance(skew, bool) or not isinstance(skew, (int, float)) or not math.isfinite(skew):
            return 0.0
        return float(skew) if abs(skew) >= SKEW_NOISE_S else 0.0

    def redeem_offline(self, text: str | bytes, *, method: str, staff_id: str | None = None,
                       now: float | None = None, printed_only: bool = False,
                       key: str | None = None) -> tuple[Verdict, str]:
        """Decide locally and record the verdict; returns it and the attempt id.

        With `key` of a pending online attempt, that attempt is decided and
        finished; with the key of a finished one, its verdict is returned again.
        """
        _check_method(method)
        if key is not None:
            _check_key(key)
        now = time.time() if now is None else float(now)
        self.catch_up()  # the sync engine's connection may have changed the catalog since
        self.digest_ahead(text)
        stored = _stored_input(text)
        digest = till_log.input_digest(stored)  # the log record's, made before the write lock is held
        with self.transaction():
            row = None if key is None else self._attempt_row(key)
            if row is not None and row["state"] == "done":
                return Verdict.from_json(json.loads(row["verdict"])), row["id"]
            ctx = self.context(now)
            verdict = decide(text, self, ctx, printed_only=printed_only)
            attempt = _attempt_values(verdict)
            if row is None:
                attempt_id, key, at = uuid.uuid4().hex, key or uuid.uuid4().hex, now
                self.conn.execute(
                    "INSERT INTO attempts (id, key, at, input, method, staff_id, state)"
                    " VALUES (?, ?, ?, ?, ?, ?, 'pending')",
                    (attempt_id, key, at, stored, method, staff_id))
                logged = (stored, method, staff_id)
            else:
                # Keep the scan's own time: the fallback happens later than the scan.
                attempt_id, at = row["id"], row["at"]
                logged = (row["input"], row["method"], row["staff_id"])  # the record says what the row holds
            self._finish(attempt_id, attempt, verdict, "offline", now)
            self.record_use(verdict, at, ctx.day)
            self._log_attempt(key=key, at=at, accepted=verdict.accepted, attempt=attempt, input_text=logged[0],
                              method=logged[1], staff_id=logged[2], decided="offline", day=ctx.day,
                              input_sha=digest if logged[0] == stored else None)
            # `input`: what was scanned, the proof the backend judges again (docs/sync.md).
            entry = dict(attempt, key=key, at=at, method=method, staff_id=staff_id, decided="offline",
                         input=stored)
            self.conn.execute(
                "INSERT INTO outbox (key, payload, created_at) VALUES (?, ?, ?)",
                (key, json.dumps({name: entry[name] for name in wire.ENTRY_FIELDS}), now))
        if verdict.accepted:
            self.note_accept(at)
        return verdict, attempt_id

    def begin_online(self, text: str | bytes, *, method: str, staff_id: str | None = None,
                     now: float | None = None) -> str:
        """Write a pending attempt before asking the backend; returns its idempotency key."""
        _check_method(method)
        now = time.time() if now is None else float(now)
        key = uuid.uuid4().hex
        with self.transaction():
            self.conn.execute(
                "INSERT INTO attempts (id, key, at, input, method, staff_id, state)"
                " VALUES (?, ?, ?, ?, ?, ?, 'pending')",
                (uuid.uuid4().hex, key, now, _stored_input(text), method, staff_id))
        return key

    def finish_online(self, key: str, verdict: Verdict, *, now: float | None = None) -> str:
        """Record the backend's verdict for a pending attempt; returns the attempt id.

        Nothing goes to the outbox: the backend has it already. A finished
        attempt is left as it is.
        """
        now = time.time() if now is None else float(now)
        with self.transaction():
            row = self._attempt_row(key)
            if row is None:
                raise KeyError(f"no attempt has the key {key!r}")
            if row["state"] == "done":
                return row["id"]
            attempt = _attempt_values(verdict)
            self._finish(row["id"], attempt, verdict, "online", now, synced_at=now)
            standing.note_heard(self, now)  # the backend's answer: the offline policy counts from here
            day = local_day(row["at"], self.store_timezone)
            self.record_use(verdict, row["at"], day)
            self._log_attempt(key=key, at=row["at"], accepted=verdict.accepted, attempt=attempt,
                              input_text=row["input"], method=row["method"], staff_id=row["staff_id"],
                              decided="online", day=day)
            self.remember_limit(verdict, row["at"])
            if verdict.used is not None and verdict.jti:
                # The backend's knowledge of an earlier redemption is ours now too.
                used = verdict.used
                self.conn.execute(
                    "INSERT OR IGNORE INTO used_tokens (jti, at, till, store_id, origin)"
                    " VALUES (?, ?, ?, ?, 'feed')",
                    (used.jti or verdict.jti, used.at, used.till, used.store_id))
        if verdict.accepted:
            self.note_accept(row["at"])
        return row["id"]

    def pending_online(self, begun_before: float | None = None) -> list[dict]:
        """Attempts begun online but never finished (a crash, a lost answer), oldest first;
        only those begun before `begun_before` when given."""
        cursor = self.conn.execute(
            "SELECT key, input, method, staff_id, at FROM attempts WHERE state = 'pending' AND at < ? ORDER BY at",
            (float("inf") if begun_before is None else begun_before,))
        return [dict(zip(("key", "input", "method", "staff_id", "at"), row)) for row in cursor]

    def abandon_pending(self, key: str, *, now: float | None = None) -> None:
        """Close a pending attempt the backend never received: no verdict was
        ever shown for it, so it becomes no redemption (and nothing to sync)."""
        with self.transaction():
            self.conn.execute(
                "UPDATE attempts SET state = 'abandoned', finished_at = ? WHERE key = ? AND state = 'pending'",
                (time.time() if now is None else now, key))

    def _attempt_row(self, key: str) -> dict | None:
        cursor = self.conn.execute(
            "SELECT id, at, state, verdict, input, method, staff_id FROM attempts WHERE key = ?", (key,))
        row = cursor.fetchone()
        return None if row is None else dict(zip(("id", "at", "state", "verdict", "input", "method", "staff_id"),
                                                 row))

    def _finish(self, attempt_id: str, attempt: dict, verdict: Verdict, decided: str, now: float,
                synced_at: float | None = None) -> None:
        self.conn.execute(
            "UPDATE attempts SET state = 'done', accepted = :accepted, reason = :reason, kind = :kind,"
            " source = :source, voucher_id = :voucher_id, jti = :jti, code = :code,"
            " decided = :decided, status = :status, verdict = :verdict, finished_at = :now,"
            " synced_at = :synced_at WHERE id = :id",
            dict(attempt, source=verdict.source, decided=decided, id=attempt_id, now=now, synced_at=synced_at,
                 status="accepted" if verdict.accepted else "refused",
                 verdict=json.dumps(verdict.to_json())))

    def attempts(self, since: float | None = None, until: float | None = None) -> list[dict]:
        """Attempts with since <= at < until, oldest first, JSON columns decoded."""
        cursor = self.conn.execute(
            "SELECT * FROM attempts WHERE at >= ? AND at < ? ORDER BY at",
            (float("-inf") if since is None else since, float("inf") if until is None else until))
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row)) for row in cursor]
        for row in rows:
            for name in ("verdict", "conflict"):
                if row[name] is not None:
                    row[name] = json.loads(row[name])
            if row["accepted"] is not None:
                row["accepted"] = bool(row["accepted"])
        return rows

    def report_rows(self, since: float, until: float, *, batch: int = 5000) -> Iterator[list[tuple]]:
        """Finished attempts with since <= at < until, as tuples for the day report (`pos_app.store.report`):
        key, at, status, decided, method, staff_id, reason, kind, voucher_id, code, jti, finished_at, conflict,
        then its void's reason, staff_id and at (None when not voided), and the limit the backend said its use
        went past (`over_limit`, or None).

        Oldest first (by at, then key: the report's own order, so its sorts find the work done), in lists of
        up to `batch` rows: a busy day is read a piece at a time, and a caller can let other threads run
        between pieces instead of waiting for one list of 100,000.
        """
        cursor = self.conn.execute(
            "SELECT a.key, a.at, a.status, a.decided, a.method, a.staff_id, a.reason, a.kind, a.voucher_id, a.code,"
            " a.jti, a.finished_at, a.conflict, v.reason, v.staff_id, v.at, a.over_limit FROM attempts a"
            " LEFT JOIN voids v ON v.redemption_key = a.key"
            " WHERE a.at >= ? AND a.at < ? AND a.state = 'done' ORDER BY a.at, a.key", (since, until))
        try:
            while rows := cursor.fetchmany(batch):
                yield rows
        finally:
            cursor.close()

    def note_sync_run(self, ok: bool, error: str | None = None, *, now: float | None = None) -> None:
        """Count a sync round for the success rate; a failed one is also the last error."""
        now = time.time() if now is None else float(now)
        with self.transaction():
            name = "sync_runs_ok" if ok else "sync_runs_failed"
            runs = int(self.get(name) or 0) + 1
            self.keep_setting(name, runs)
            self.write_setting(name, runs)
            if ok:
                self.keep_setting("last_sync", now)
                self.write_setting("last_sync", now)
            else:
                last_error = {"at": now, "error": str(error)[:500]}
                self.keep_setting("last_error", last_error)
                self.write_setting("last_error", last_error)

    def staff_member(self, staff_id: str) -> dict | None:
        """A staff member without the PIN hash, or None."""
        row = self.conn.execute(
            "SELECT id, name, role, store_id FROM staff WHERE id = ?", (staff_id,)).fetchone()
        return None if row is None else dict(zip(("id", "name", "role", "store_id"), row))

    def staff_members(self) -> list[dict]:
        """Everyone who may log in at this till (its store's staff and retailer-wide staff), by name."""
        rows = self.conn.execute(
            "SELECT id, name, role, store_id FROM staff WHERE store_id IS NULL OR store_id = ? ORDER BY name, id",
            (self.get("store_id") or "",)).fetchall()
        return [dict(zip(("id", "name", "role", "store_id"), row)) for row in rows]

    def check_staff_pin(self, staff_id: str, pin: str, *, now: float | None = None) -> dict | None:
        """The staff member if the PIN is theirs and the lockout lets them try now, else None (`staff_login`
        says which)."""
        return self.staff_login(staff_id, pin, now=now).member

    def staff_login(self, staff_id: str, pin: str, *, now: float | None = None) -> pin_lockout.PinCheck:
        """A login at this till: the member, or a wrong PIN, or the lockout's wait (store/pin_lockout.py)."""
        return pin_lockout.check(self, staff_id, pin, time.time() if now is None else float(now))



# --- shapes -------------------------------------------------------------------------


def _check_method(method: str) -> None:
    if method not in Method.ALL:
        raise ValueError(f"unknown input method {method!r}")


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not IDEMPOTENCY_KEY.match(key):
        raise ValueError("an idempotency key is 8 to 64 of A-Z a-z 0-9 _ -")


def _stored_input(raw: str | bytes) -> str:
    """The input as text SQLite can hold: bounded, and valid UTF-8 whatever came in."""
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw[:MAX_INPUT_STORED]).decode("utf-8", "backslashreplace")
    text = str(raw)[:MAX_INPUT_STORED]
    # Lone surrogates cannot be encoded; sqlite3 would raise on binding them.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _attempt_values(verdict: Verdict) -> dict:
    return {
        "accepted": bool(verdict.accepted), "reason": verdict.reason, "kind": verdict.kind,
        "voucher_id": verdict.voucher.id if verdict.voucher else None,
        "jti": verdict.jti, "code": verdict.code,
    }
