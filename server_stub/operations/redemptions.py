"""Online redemptions: one decided and recorded, the answer once given looked up.

Decisions are the core's (`pos_app.core.verdict`), reached in the request's
thread on a read snapshot; the database's unique index on accepted token ids
settles any race (see `redeem`). The backend's clock decides: an attempt's
`at` is when the backend received it, the till's own time is only kept
(`till_at`). A till's outbox is synced by `sync_entries`.
"""

from __future__ import annotations

import hashlib
import json
from typing import NamedTuple

from pos_app.core import verdict, wire
from pos_app.core.domain import Method, Reason

from ..errors import Conflict, Invalid, NotFound, Unprocessable
from . import holds
from .context import Context

SYNC_BATCH_MAX = 500
MAX_INPUT_STORED = 8192  # as the request bodies take it
ATTEMPT_COLUMNS = ("key", "retailer_id", "store_id", "device_id", "at", "received_at", "method", "staff_id",
                   "decided", "input", "till_at", "body_hash", "status", "reason", "kind", "voucher_id", "jti",
                   "code", "answer")


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


def stored_text(raw: str) -> str:
    """Text SQLite can hold: bounded, and valid UTF-8 whatever came (a lone surrogate cannot be bound)."""
    return raw[:MAX_INPUT_STORED].encode("utf-8", "backslashreplace").decode("utf-8")


def till_time(value: object, name: str = "at") -> float | None:
    """A time a till gave, kept only if it can be one (400 invalid_value otherwise: `at: 1e300` is no time)."""
    if value is None:
        return None
    if not wire.is_time(value):
        raise Invalid("invalid_value", f"{name} must be a time in seconds since 1970, before 2200")
    return float(value)


def body_hash(text: str, method: str, staff_id: str | None) -> str:
    """What an honest retry sends again (pos_app.sync.redeem): the input as read, the method, the staff
    member; not `at`, the till's clock."""
    return hashlib.sha256(json.dumps([text, method, staff_id]).encode()).hexdigest()


def _with_id(status: int, answer: dict, rowid: int) -> Answered:
    if answer.get("accepted"):  # the feed event came with the insert (schema trigger)
        answer["redemption_id"] = rowid
    return Answered(status, answer)


def _verdict_context(ctx: Context, device: dict, now: float) -> verdict.Context:
    return verdict.Context(
        trust=ctx.trust, retailer_id=device["retailer_id"], store_id=device["store_id"], now=now,
        day=verdict.local_day(now, device["timezone"]), leeway=ctx.config["leeway_s"],
        velocity_limit=ctx.config["velocity_limit"], issuer=ctx.config["issuer"],
    )


def redeem(ctx: Context, device: dict, key: str, body: dict) -> Answered:
    """Online redemption: decide now, record, answer; a replayed key gets the first answer.

    The verdict is reached in the request's thread on a read snapshot
    (verification and lookups run in parallel, in several processes), so
    the writer only inserts the row. The database keeps one accepted
    attempt per `jti` (a unique index): if a till raced us to the same
    code, or the same key came twice, the insert fails and the writer
    judges again on its own, current view. Printed codes count their
    limits in the writer. Over PostgreSQL writes run side by side, so a
    write that judges holds the names of its key, token id, voucher and till
    first (`holds`): printed limits exact, and a key or token id that lost
    its race answered from the winner's row. A personal token's accepted-
    looking attempt is inserted as it is over SQLite: the unique index alone
    keeps one accept per `jti`, where judging every one again in its write
    would add three round trips to the commonest redemption.
    """
    # A replayed key is not looked up first: it is rare, and its insert
    # fails on the key's unique index, so the writer returns the first answer.
    storage = ctx.storage
    claimed_at = till_time(body.get("at"))  # before anything: a till's time that is no time is refused
    now = ctx.clock()
    vctx = _verdict_context(ctx, device, now)
    method = body["method"]
    printed_only = method == Method.PRINTED
    reading = verdict.read(body["input"], vctx)
    first = verdict.judge(reading, storage.redemption_state(storage.read(), device, vctx.velocity_limit, ctx.vouchers),
                          vctx, printed_only=printed_only)
    text = stored_text(reading.text if reading.text is not None else body["input"])
    digest = body_hash(text, method, body.get("staff_id"))
    # The backend's clock decides: velocity and per-day limits count by `at`, the time received.
    base = (key, device["retailer_id"], device["store_id"], device["id"], now, now,
            method, body.get("staff_id"), "online", text, claimed_at, digest)

    def judged_in_writer(db):
        if storage.CONCURRENT_WRITES:
            storage.hold(db, *holds.verdict_names(device, key, first))
        again = _stored_answer(db, device, key, digest)
        if again is not None:  # the same key raced in twice: the first answer stands
            return again
        v = verdict.judge(reading, storage.redemption_state(db, device, vctx.velocity_limit, ctx.vouchers), vctx,
                          printed_only=printed_only)
        status, answer, row = _attempt_row(base, v)
        (rowid,) = db.execute(f"INSERT INTO attempts ({', '.join(ATTEMPT_COLUMNS)}) VALUES "
                              f"({', '.join('?' * len(ATTEMPT_COLUMNS))}) RETURNING id", row).fetchone()
        return _with_id(status, answer, rowid)

    if first.accepted and first.kind == "printed":
        return holds.submit_judged(storage, judged_in_writer)
    status, answer, row = _attempt_row(base, first)
    try:
        rowid = storage.insert_row("attempts", ATTEMPT_COLUMNS, row)
    except storage.IntegrityError:  # a race on this jti or key: the writer decides
        return holds.submit_judged(storage, judged_in_writer)
    return _with_id(status, answer, rowid)


def lookup_redemption(ctx: Context, device: dict, key: str) -> dict:
    """The answer once given for a key, so a till that crashed mid-call learns it."""
    stored = _stored_answer(ctx.storage.read(), device, key)
    if stored is None:
        raise NotFound("not_found", "no redemption was made with this key")
    return {"status": stored.status, "answer": stored.body}


def _stored_answer(db, device: dict, key: str, digest: str | None = None) -> Answered | None:
    """The answer once given for `key`; with `digest` (a request's body_hash), 422 idempotency_mismatch if
    the key was first sent with another body (a replay answers only the request it replays)."""
    row = db.execute("SELECT id, device_id, answer, body_hash FROM attempts WHERE key = ?", (key,)).fetchone()
    if row is None:
        return None
    if row[1] != device["id"]:
        raise Conflict("conflict", "this idempotency key belongs to another till")
    if row[2] is None:
        raise Conflict("conflict", "this key was used to sync an offline redemption, not to redeem online")
    if digest is not None and row[3] is not None and row[3] != digest:
        raise Unprocessable("idempotency_mismatch", "this idempotency key was used with another request body")
    status, answer = json.loads(row[2])
    if answer.get("accepted"):
        answer["redemption_id"] = row[0]
    return Answered(status, answer)
