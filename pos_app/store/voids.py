"""Voids of this till's redemptions: recorded here and queued for the backend, and
listed with their sync state (a void heard from the feed is applied in catalog.py;
who may void what is `pos_app.core.voids`). A void made here carries the manager's
proof (`staff_proof`, pos_app.core.pins): a MAC keyed by the PIN they typed, which
this till could not make from the PIN hashes it holds.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from ..core import pins
from ..core import voids as void_rules

log = logging.getLogger(__name__)


class Voids:
    """A part of TillStore (needs StoreBase, Chain and `staff_member()`)."""

    def void(self, key: str, *, reason: str, staff_id: str, now: float | None = None,
             pin: str | None = None) -> dict:
        """Void this till's accepted redemption `key`: the void record, queued for the backend.

        The attempt row is never changed. A voided redemption does not make
        its code usable again (nor a printed code's use uncounted): the
        discount was given, and voiding only corrects the accounts.
        `pin` is the PIN the manager logged in with: the entry carries the proof
        made with it when the catalog gave the manager a proof salt (else none,
        and the backend records the void as unverified).
        Raises `pos_app.core.voids.VoidError` (codes forbidden, invalid_value,
        not_found, not_accepted, already_voided).
        """
        member = self.staff_member(staff_id) if isinstance(staff_id, str) else None
        if member is not None and member["store_id"] not in (None, self.store_id):
            member = None  # another store's staff cannot log in here either
        void_rules.check_staff(member["role"] if member else None)
        text = void_rules.check_reason(reason)
        if not isinstance(key, str):
            raise void_rules.VoidError(void_rules.VoidError.INVALID_VALUE, "a redemption key is a text")
        now = time.time() if now is None else float(now)
        void_id = uuid.uuid4().hex
        entry = {"type": "void", "key": void_id, "at": now, "redemption_key": key, "void_reason": text,
                 "staff_id": staff_id}
        # Before the transaction: the proof key is a slow derivation, not to be made holding the write lock.
        proof = self._staff_proof(pin, entry)
        if proof is not None:
            entry["staff_proof"] = proof
        with self.transaction():
            row = self.conn.execute(
                "SELECT a.state, a.status, v.id FROM attempts a LEFT JOIN voids v ON v.redemption_key = a.key"
                " WHERE a.key = ?", (key,)).fetchone()
            status = None if row is None else (row[1] if row[0] == "done" else "pending")
            void_rules.check_target(status, voided=row is not None and row[2] is not None)
            self.conn.execute(
                "INSERT INTO voids (id, redemption_key, reason, staff_id, at, origin) VALUES (?, ?, ?, ?, ?, 'local')",
                (void_id, key, text, staff_id, now))
            self.conn.execute("INSERT INTO outbox (key, payload, created_at) VALUES (?, ?, ?)",
                              (void_id, json.dumps(entry), now))
            # The till's log (chain.py): a void made here is a record; one heard from the feed is not.
            self._log_void(key=void_id, at=now, redemption_key=key, reason=text, staff_id=staff_id)
        return self._void_rows("v.id = ?", (void_id,))[0]

    def _staff_proof(self, pin: str | None, entry: dict) -> str | None:
        """The MAC over exactly what the backend checks (pins.check_void_proof), or None without a PIN or salt."""
        row = self.conn.execute("SELECT proof_salt FROM staff WHERE id = ?", (entry["staff_id"],)).fetchone()
        if not pin or row is None or not row[0]:
            return None
        try:
            key = pins.proof_key(pin, row[0])
        except ValueError as exc:  # a salt this till cannot use: the void goes unproven, not lost
            log.info("void %s goes without a proof: %s", entry["key"], exc)
            return None
        return pins.void_proof(key, void_key=entry["key"], redemption_key=entry["redemption_key"],
                               staff_id=entry["staff_id"], at=entry["at"], reason=entry["void_reason"])

    def voids(self, since: float | None = None, until: float | None = None) -> list[dict]:
        """Voids made with since <= at < until, oldest first, each with its sync state:
        queued, synced, parked (refused by the backend; `parked_reason` says why)."""
        return self._void_rows("v.at >= ? AND v.at < ?",
                               (float("-inf") if since is None else since, float("inf") if until is None else until))

    def _void_rows(self, where: str, params: tuple) -> list[dict]:
        cursor = self.conn.execute(
            "SELECT v.id, v.redemption_key, v.reason, v.staff_id, v.at, v.origin, v.synced_at, o.parked_reason,"
            " o.seq IS NOT NULL FROM voids v LEFT JOIN outbox o ON o.key = v.id"
            f" WHERE {where} ORDER BY v.at, v.id", params)
        out = []
        for void_id, redemption_key, reason, staff_id, at, origin, synced_at, parked, queued in cursor:
            state = "parked" if parked is not None else ("queued" if queued else "synced")
            out.append({"id": void_id, "redemption_key": redemption_key, "reason": reason, "staff_id": staff_id,
                        "at": at, "origin": origin, "synced_at": synced_at, "state": state,
                        "parked_reason": parked})
        return out
