"""Redemptions: an online one decided and recorded, the answer once given looked up, a till's outbox synced.

Decisions are the core's (`pos_app.core.verdict`), reached in the request's
thread on a read snapshot; the database's unique index on accepted token ids
settles any race (see `redeem`).
"""

from __future__ import annotations

import json
import time
from typing import NamedTuple

from pos_app.core import verdict
from pos_app.core.domain import Method, Reason

from ..errors import Conflict, NotFound
from .context import Context
from .voids import record_void

SYNC_BATCH_MAX = 500
ATTEMPT_COLUMNS = ("key", "retailer_id", "store_id", "device_id", "at", "received_at", "method", "staff_id",
                   "decided", "status", "reason", "kind", "voucher_id", "jti", "code", "answer")


class Answered(NamedTuple):
    """An online redemption's answer and its status, as recorded: a replayed key gets both again, and
    the lookup returns them (`StoredRedemption`), so the status belongs to the record."""

    status: int
    body: dict


def answer_status(v: verdict.Verdict) -> int:
    if v.accepted:
        return 201
    return 409 if v.reason == Reason.ALREADY_REDEEMED else 422


def _answer(v: verdict.Verdict, now: float) -> dict:
    """The body of an online redemption's answer (an accepted one gains its redemption_id)."""
    if v.accepted:
        return {"accepted": True, "verdict": v.to_json(), "server_time": now}
    return {"error": {"code": v.reason, "message": v.message}, "verdict": v.to_json(), "server_time": now}


def _attempt_row(base: tuple, v: verdict.Verdict) -> tuple[int, dict, tuple]:
    """The answer to an online redemption and the attempts row that keeps it."""
    status = answer_status(v)
    answer = _answer(v, base[5])
    row = (*base, "accepted" if v.accepted else "refused", v.reason, v.kind,
           v.voucher.id if v.voucher else None, v.jti, v.code,
           json.dumps([status, answer], separators=(",", ":")))
    return status, answer, row


def _with_id(status: int, answer: dict, rowid: int) -> Answered:
    if answer.get("accepted"):  # the feed event came with the insert (schema trigger)
        answer["redemption_id"] = rowid
    return Answered(status, answer)


def _verdict_context(ctx: Context, device: dict, now: float) -> verdict.Context:
    return verdict.Context(
        trust=ctx.trust, retailer_id=device["retailer_id"], store_id=device["store_id"], now=now,
        day=verdict.local_day(now, device["timezone"]), leeway=ctx.config["leeway_s"],
        velocity_limit=ctx.config["velocity_limit"],
    )


def redeem(ctx: Context, device: dict, key: str, body: dict) -> Answered:
    """Online redemption: decide now, record, answer; a replayed key gets the first answer.

    The verdict is reached in the request's thread on a read snapshot
    (verification and lookups run in parallel, in several processes), so
    the writer only inserts the row. The database keeps one accepted
    attempt per `jti` (a unique index): if a till raced us to the same
    code, or the same key came twice, the insert fails and the writer
    judges again on its own, current view. Printed codes count their
    limits in the writer.
    """
    # A replayed key is not looked up first: it is rare, and its insert
    # fails on the key's unique index, so the writer returns the first answer.
    storage = ctx.storage
    now = ctx.clock()
    vctx = _verdict_context(ctx, device, now)
    method = body["method"]
    printed_only = method == Method.PRINTED
    reading = verdict.read(body["input"], vctx)
    first = verdict.judge(reading, storage.redemption_state(storage.read(), device, vctx.velocity_limit, ctx.vouchers),
                          vctx, printed_only=printed_only)
    base = (key, device["retailer_id"], device["store_id"], device["id"], float(body.get("at") or now), now,
            method, body.get("staff_id"), "online")

    def judged_in_writer(db):
        again = _stored_answer(db, device, key)
        if again is not None:  # the same key raced in twice: the first answer stands
            return again
        v = verdict.judge(reading, storage.redemption_state(db, device, vctx.velocity_limit, ctx.vouchers), vctx,
                          printed_only=printed_only)
        status, answer, row = _attempt_row(base, v)
        rowid = db.execute(f"INSERT INTO attempts ({', '.join(ATTEMPT_COLUMNS)}) VALUES "
                           f"({', '.join('?' * len(ATTEMPT_COLUMNS))})", row).lastrowid
        return _with_id(status, answer, rowid)

    if first.accepted and first.kind == "printed":
        return storage.submit(judged_in_writer)
    status, answer, row = _attempt_row(base, first)
    try:
        rowid = storage.insert_row("attempts", ATTEMPT_COLUMNS, row)
    except storage.IntegrityError:  # a race on this jti or key: the writer decides
        return storage.submit(judged_in_writer)
    return _with_id(status, answer, rowid)


def lookup_redemption(ctx: Context, device: dict, key: str) -> dict:
    """The answer once given for a key, so a till that crashed mid-call learns it."""
    stored = _stored_answer(ctx.storage.read(), device, key)
    if stored is None:
        raise NotFound("not_found", "no redemption was made with this key")
    return {"status": stored.status, "answer": stored.body}


def _stored_answer(db, device: dict, key: str) -> Answered | None:
    row = db.execute("SELECT id, device_id, answer FROM attempts WHERE key = ?", (key,)).fetchone()
    if row is None:
        return None
    if row[1] != device["id"]:
        raise Conflict("conflict", "this idempotency key belongs to another till")
    if row[2] is None:
        raise Conflict("conflict", "this key was used to sync an offline redemption, not to redeem online")
    status, answer = json.loads(row[2])
    if answer.get("accepted"):
        answer["redemption_id"] = row[0]
    return Answered(status, answer)


def sync(ctx: Context, device: dict, entries: list[dict]) -> dict:
    """Record a batch of a till's outbox; each entry answered on its own."""
    now = ctx.clock()

    def write(db):
        results = []
        for entry in entries:
            results.append(_record_entry(ctx, db, device, entry, now))
        return results
    return {"results": ctx.storage.submit(write), "server_time": now}


def _record_entry(ctx: Context, db, device: dict, entry: dict, now: float) -> dict:
    if entry.get("type") == "void":
        return record_void(ctx, db, device, entry, now)
    key = entry["key"]
    row = db.execute("SELECT device_id, status, conflict_with FROM attempts WHERE key = ?", (key,)).fetchone()
    if row is not None:
        if row[0] != device["id"]:
            return {"key": key, "status": "rejected", "reason": "key belongs to another till"}
        if row[1] == "conflict":
            return {"key": key, "status": "conflict", "winner": _winner(db, row[2])}
        return {"key": key, "status": "duplicate"}
    status = "accepted" if entry["accepted"] else "refused"
    winner_id = None
    if entry["accepted"] and entry.get("jti"):
        winner = db.execute(
            "SELECT id FROM attempts WHERE retailer_id = ? AND jti = ? AND status = 'accepted'",
            (device["retailer_id"], entry["jti"])).fetchone()
        if winner is not None:
            status, winner_id = "conflict", winner[0]
    db.execute(
        "INSERT INTO attempts (key, retailer_id, store_id, device_id, at, received_at, status, reason, kind, "
        "voucher_id, jti, code, method, staff_id, decided, conflict_with) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (key, device["retailer_id"], device["store_id"], device["id"], entry["at"], now, status,
         entry.get("reason"), entry.get("kind"), entry.get("voucher_id"), entry.get("jti"), entry.get("code"),
         entry["method"], entry.get("staff_id"), entry["decided"], winner_id))
    if status == "conflict":
        return {"key": key, "status": "conflict", "winner": _winner(db, winner_id)}
    if status == "accepted" and entry.get("kind") == "printed" and entry.get("voucher_id"):
        over = _printed_overshoot(ctx, db, device, entry)
        if over is not None:
            # Tills decided offline and together went past a limit: the
            # redemptions were given and stay recorded; the till is told.
            return {"key": key, "status": "recorded", "over_limit": over}
    return {"key": key, "status": "recorded"}


def _printed_overshoot(ctx: Context, db, device: dict, entry: dict) -> str | None:
    """Which limit of a printed voucher this recorded redemption went past, if any."""
    v = ctx.vouchers.get(db, entry["voucher_id"], time.monotonic())
    if v is None or (v.total_limit is None and v.store_day_limit is None):
        return None
    state = ctx.storage.redemption_state(db, device, 0, ctx.vouchers)
    at_store_today, in_all = state.printed_uses(v.id, device["store_id"],
                                                verdict.local_day(entry["at"], device["timezone"]))
    if v.total_limit is not None and in_all > v.total_limit:
        return "total_limit"
    if v.store_day_limit is not None and at_store_today > v.store_day_limit:
        return "store_day_limit"
    return None


def _winner(db, attempt_id: int) -> dict:
    row = db.execute(
        "SELECT a.jti, a.at, coalesce(d.name, a.device_id), a.store_id FROM attempts a "
        "LEFT JOIN devices d ON d.id = a.device_id WHERE a.id = ?", (attempt_id,)).fetchone()
    return dict(zip(("jti", "at", "till", "store_id"), row))
