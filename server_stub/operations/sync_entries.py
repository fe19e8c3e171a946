"""A till's outbox synced: every redemption entry is a proof the backend judges itself (docs/sync.md).

An entry brings what the till scanned (`input`). The backend reads it in the
request's thread (signature, audience, times: as `redeem` does) and judges
it in the single writer against its own state as of the attempt's time. The
attempt row holds the backend's verdict; what the till said is kept beside
it (`till_verdict`, `till_at`), and where the two differ `dispute` names
how. Nothing an entry names (voucher, token id, code, reason, staff member)
is taken on trust, and no claim is marked used that the entry did not prove.

Times: the till's clock is corrected by the skew it showed when it sent the
batch (`till_time`), and believed only within [enrolment or 90 days ago,
now], each end with the leeway; outside, the attempt is recorded at the
nearest end with a `time_flag`.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from pos_app.core import verdict
from pos_app.core.domain import Method, Reason, Verdict
from pos_app.core.report import TILL_ACCEPTED, TILL_REFUSED, UNPROVEN

from ..storage.state import BackendState
from . import devices, holds
from .context import Context
from .redemptions import stored_text, till_time
from .voids import record_void

OLDEST_S = 90 * 24 * 3600  # an offline attempt older than this, when it arrives, is not believed
MAX_SKEW_S = 100 * 366 * 24 * 3600  # a bound, so every time stays a sane number
# A skew this small is the network's delay, not the till's clock: the till's times are kept
# as they are (correcting by it would reorder a queue's times from one batch to the next).
SKEW_NOISE_S = 5.0
# A time the backend could not believe (core.report.TIME_FLAGS); the disputes' words are core.report's.
FUTURE, TOO_OLD = "future", "too_old"
_NO_INPUT = verdict.Reading(None, refusal=Verdict(accepted=False, reason=Reason.MALFORMED,
                                                  message="the entry carries no input to judge"))
_COLUMNS = ("key", "retailer_id", "store_id", "device_id", "at", "received_at", "status", "reason", "kind",
            "voucher_id", "jti", "code", "method", "staff_id", "decided", "conflict_with", "input", "till_verdict",
            "till_at", "dispute", "time_flag")
_INSERT = f"INSERT INTO attempts ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


class Proof(NamedTuple):
    """A redemption entry read in the request's thread: what the writer judges and records."""

    entry: dict
    at: float  # the time the backend records and judges (the till's, corrected and bounded)
    time_flag: str | None
    reading: verdict.Reading
    vctx: verdict.Context
    input: str | None
    staff_id: str | None  # only a staff member who may work at this till
    till_verdict: str  # JSON: what the till said


class Window(NamedTuple):
    """When the attempts of one batch can have happened, on the backend's clock."""

    skew: float
    earliest: float
    latest: float

    def place(self, claimed: float) -> tuple[float, str | None]:
        """(the time to record, its flag) for a time the till gave."""
        at = claimed - self.skew
        if at > self.latest:
            return self.latest, FUTURE
        if at < self.earliest:
            return self.earliest, TOO_OLD
        return at, None


def sync(ctx: Context, device: dict, entries: list[dict], sent_at: Any = None, report: dict | None = None) -> dict:
    """Record a batch of a till's outbox; each entry answered on its own. The till was seen now, with what it
    `report`s of itself (devices.till_report), written in the batch's own write."""
    sent_at = till_time(sent_at, "till_time")
    now = ctx.clock()
    window = _window(ctx, device, now, sent_at)
    staff = _staff_here(ctx, device, entries)
    work = [entry if entry.get("type") == "void" else _read(ctx, device, entry, window, staff)
            for entry in entries]
    keys = [item.entry["key"] for item in work if isinstance(item, Proof)]
    # Over PostgreSQL the batch holds, once and first, every name its entries decide under (`holds`).
    names = [holds.device_name(device["id"]), holds.device_life_name(device["id"]), *map(holds.key_name, keys),
             *(n for item in work if not isinstance(item, Proof) for n in holds.void_names(item["key"],
                                                                                          item["redemption_key"]))]

    def write(db):
        if ctx.storage.CONCURRENT_WRITES:
            ctx.storage.hold(db, *names, *holds.reading_names(
                db, device["retailer_id"], (item.reading for item in work if isinstance(item, Proof))))
        devices.refuse_if_withdrawn(db, device["id"])  # a revoke committed since the request's check wins
        seen = _seen(db, keys)
        results: list = [None] * len(work)
        # Redemptions first, then voids (a void changes no verdict): a void writes its feed event at once,
        # taking the feed counter's lock, and over PostgreSQL no attempt may be inserted after that in the
        # same write — an online insert of the same key or token id, holding its unique entry and waiting
        # for the counter as it commits, would wait for this write while this write waits for it.
        for i, item in enumerate(work):
            if isinstance(item, Proof):
                results[i] = _record(ctx, db, device, item, now, seen.get(item.entry["key"]))
        for i, item in enumerate(work):
            if not isinstance(item, Proof):
                # A void's time is placed in the same window as a redemption's (its proof covers the time as sent).
                results[i] = record_void(ctx, db, device, item, now, at=window.place(float(item["at"]))[0])
        devices.record_seen(db, device, now, report)  # last: the till's row is locked only to the commit
        return results
    return {"results": holds.submit_judged(ctx.storage, write), "server_time": now}


def _window(ctx: Context, device: dict, now: float, sent_at: float | None) -> Window:
    skew = 0.0 if sent_at is None else max(-MAX_SKEW_S, min(MAX_SKEW_S, sent_at - now))
    if abs(skew) <= SKEW_NOISE_S:
        skew = 0.0
    enrolled = ctx.one("SELECT enrolled_at FROM devices WHERE id = ?", (device["id"],))
    leeway = ctx.config["leeway_s"]
    earliest = max((enrolled[0] or 0.0) if enrolled else 0.0, now - OLDEST_S)
    return Window(skew, earliest - leeway, now + leeway)


def _staff_here(ctx: Context, device: dict, entries: list[dict]) -> set[str]:
    """The staff ids the entries name that belong to the device's retailer and may work at its store."""
    named = sorted({e["staff_id"] for e in entries if e.get("type") != "void" and isinstance(e.get("staff_id"), str)})
    if not named:
        return set()
    # The rule of staff_auth.may_work_at: this store's staff, and head office where the retailer lets them.
    rows = ctx.storage.read().execute(
        f"SELECT s.id FROM staff s JOIN retailers r ON r.id = s.retailer_id WHERE s.retailer_id = ? "
        f"AND (s.store_id = ? OR (s.store_id IS NULL AND r.staff_anywhere <> 0)) "
        f"AND s.id IN ({', '.join('?' * len(named))})", (device["retailer_id"], device["store_id"], *named))
    return {row[0] for row in rows}


def _read(ctx: Context, device: dict, entry: dict, window: Window, staff: set[str]) -> Proof:
    at, flag = window.place(float(entry["at"]))
    vctx = verdict.Context(
        trust=ctx.trust, retailer_id=device["retailer_id"], store_id=device["store_id"], now=at,
        day=verdict.local_day(at, device["timezone"]), leeway=ctx.config["leeway_s"],
        velocity_limit=ctx.config["velocity_limit"], issuer=ctx.config["issuer"])
    raw = entry.get("input")
    reading = _NO_INPUT if raw is None else verdict.read(raw, vctx)
    said = {name: entry.get(name) for name in ("accepted", "kind", "voucher_id", "jti", "code", "staff_id")}
    said["reason"] = entry.get("reason") if entry.get("reason") in Reason.ALL else None
    staff_id = entry.get("staff_id") if entry.get("staff_id") in staff else None
    return Proof(entry, at, flag, reading, vctx, None if raw is None else stored_text(raw), staff_id,
                 json.dumps(said, separators=(",", ":")))


def _seen(db, keys: list[str]) -> dict[str, tuple]:
    """The attempts already recorded under these keys (one query for the batch)."""
    if not keys:
        return {}
    rows = db.execute(f"SELECT key, device_id, status, conflict_with, input, dispute, reason, time_flag "
                      f"FROM attempts WHERE key IN ({', '.join('?' * len(keys))})", keys)
    return {row[0]: row[1:] for row in rows}


def _again(db, device: dict, proof: Proof, seen: tuple) -> dict:
    key = proof.entry["key"]
    device_id, status, conflict_with, stored_input, dispute, reason, time_flag = seen
    if device_id != device["id"]:
        return {"key": key, "status": "rejected", "reason": "key belongs to another till"}
    if proof.input is not None and stored_input is not None and proof.input != stored_input:
        return {"key": key, "status": "rejected", "reason": "idempotency_mismatch"}
    if status == "conflict":
        return {"key": key, "status": "conflict", "winner": winner(db, conflict_with)}
    # The judgement given the first time, again: a till that lost that answer still learns it.
    result: dict = {"key": key, "status": "duplicate"}
    if dispute is not None:
        result["dispute"] = dispute
        if reason is not None:
            result["reason"] = reason
    if time_flag is not None:
        result["time_flag"] = time_flag
    return result


def _record(ctx: Context, db, device: dict, proof: Proof, now: float, seen: tuple | None) -> dict:
    if seen is not None:
        return _again(db, device, proof, seen)
    entry = proof.entry
    state = BackendState(db, retailer_id=device["retailer_id"], store_id=device["store_id"], device_id=device["id"],
                         store_timezone=device["timezone"], velocity_cap=proof.vctx.velocity_limit,
                         vouchers=ctx.vouchers, as_of=proof.at)
    v = verdict.judge(proof.reading, state, proof.vctx, printed_only=entry["method"] == Method.PRINTED)
    status, dispute, over_limit, winner_id = _outcome(db, device, entry["accepted"], v, proof.input is None)
    voucher_id = v.voucher.id if v.voucher is not None and v.voucher.retailer_id == device["retailer_id"] else None
    db.execute(_INSERT, (
        entry["key"], device["retailer_id"], device["store_id"], device["id"], proof.at, now, status,
        v.reason if status == "refused" else None, v.kind, voucher_id, v.jti, v.code, entry["method"],
        proof.staff_id, entry["decided"], winner_id, proof.input, proof.till_verdict, float(entry["at"]),
        dispute, proof.time_flag))
    result: dict = {"key": entry["key"], "status": "conflict" if status == "conflict" else "recorded"}
    if status == "conflict":
        result["winner"] = winner(db, winner_id)
    if over_limit is not None:
        # Tills decided offline and together went past a limit: the
        # redemptions were given and stay recorded; the till is told.
        result["over_limit"] = over_limit
    if dispute is not None:
        result["dispute"] = dispute
        if v.reason is not None:
            result["reason"] = v.reason
    if proof.time_flag is not None:
        result["time_flag"] = proof.time_flag
    return result


def _outcome(db, device: dict, till_accepted: bool, v: Verdict,
             unproven: bool) -> tuple[str, str | None, str | None, int | None]:
    """(status, dispute, over_limit, conflict_with) from the till's word and the backend's verdict."""
    if not till_accepted:
        # The customer got nothing: the code stays unused, whatever the backend would say.
        return "refused", TILL_REFUSED if v.accepted else None, None, None
    if v.accepted:
        return "accepted", None, None, None
    if v.reason == Reason.ALREADY_REDEEMED and v.kind == "personal" and v.jti is not None:
        row = db.execute("SELECT id FROM attempts WHERE retailer_id = ? AND jti = ? AND status = 'accepted'",
                         (device["retailer_id"], v.jti)).fetchone()
        if row is not None:
            return "conflict", None, None, row[0]
    limit = verdict.reached_limit(v)
    if limit is not None:
        return "accepted", None, limit, None
    return "refused", UNPROVEN if unproven else TILL_ACCEPTED, None, None


def winner(db, attempt_id: int) -> dict:
    """The accepted attempt a conflicting one lost to, as tills are told of it."""
    row = db.execute(
        "SELECT a.jti, a.at, coalesce(d.name, a.device_id), a.store_id FROM attempts a "
        "LEFT JOIN devices d ON d.id = a.device_id WHERE a.id = ?", (attempt_id,)).fetchone()
    return dict(zip(("jti", "at", "till", "store_id"), row))
