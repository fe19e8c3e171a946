"""What the backend's checks found wrong, kept until a person resolves it.

A finding has a stable `code` (a till's log: `log_*`, pos_app.core.till_log;
reconciliation: operations/reconcile.py) and a `subject` naming the thing
found (a device, a voucher and day…): one open finding per code and subject,
so a check that finds the same thing again only says it was seen again. A
finding whose condition went away is marked `gone_at` but stays open: only a
person closes it (`resolve`, audited), and the same drift found after that
opens a new one.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any, Iterable

from ..errors import Conflict, Invalid, NotFound
from . import audit
from .context import Context

DETAIL_CHARS = 16000  # a finding's detail as kept (records named, counts): bounded, for a person to read
NOTE_CHARS = 500
LIST_MAX = 500
STATES = ("open", "resolved", "all")
# Not in a note a person reads later (the console's forms refuse the same): control characters, lone
# surrogates, private use, unassigned, line or paragraph separators, and direction marks, which would make it
# read backwards.
_NOT_IN_NOTES = frozenset({"Cc", "Cs", "Co", "Cn", "Zl", "Zp"})
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_COLUMNS = ("id", "retailer_id", "store_id", "device_id", "code", "subject", "detail", "opened_at", "seen_at",
            "gone_at", "resolved_at", "resolved_by", "resolution")


# Lists a detail can do without, when it is too long: the largest is halved (its tail dropped) until it fits,
# so what was found first of each, the counts and the message stay.
_SHORTENED = ("evidence", "messages", "keys", "named", "seqs")


def _detail_text(detail: dict) -> str:
    def dumps(value) -> str:
        return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)

    text = dumps(detail)
    detail, shortened = dict(detail), []
    while len(text) > DETAIL_CHARS:
        sizes = {f: len(dumps(detail[f])) for f in _SHORTENED if isinstance(detail.get(f), list) and detail[f]}
        if not sizes:
            return dumps({"truncated": True, "summary": text[:DETAIL_CHARS - 100]})
        field = max(sizes, key=sizes.get)
        detail[field] = detail[field][:len(detail[field]) // 2]
        shortened = sorted(set(shortened) | {field})
        detail["shortened"] = shortened
        text = dumps(detail)
    return text


def raise_finding(db, *, code: str, subject: str, detail: dict, now: float, retailer_id: str | None = None,
                  store_id: str | None = None, device_id: str | None = None) -> int:
    """Inside a write: open a finding, or, if one of that code and subject is open, say it was seen again
    (its detail replaced, `gone_at` cleared). Returns its id."""
    row = db.execute("SELECT id FROM findings WHERE code = ? AND subject = ? AND resolved_at IS NULL",
                     (code, subject)).fetchone()
    text = _detail_text(detail)
    if row is not None:
        db.execute("UPDATE findings SET detail = ?, seen_at = ?, gone_at = NULL WHERE id = ?", (text, now, row[0]))
        return int(row[0])
    db.execute(
        "INSERT INTO findings (retailer_id, store_id, device_id, code, subject, detail, opened_at, seen_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (retailer_id, store_id, device_id, code, subject, text, now, now))
    return int(db.execute("SELECT id FROM findings WHERE code = ? AND subject = ? AND resolved_at IS NULL",
                          (code, subject)).fetchone()[0])


def mark_gone(db, *, codes: Iterable[str], still: set[tuple[str, str]], now: float,
              retailer_id: str | None = None) -> int:
    """Inside a write: open findings of `codes` (of one retailer, when given) not in `still` ((code, subject)
    pairs a check found again) are marked gone, once. Returns how many were marked."""
    codes = list(codes)
    if not codes:
        return 0
    where = f"code IN ({', '.join('?' * len(codes))}) AND resolved_at IS NULL AND gone_at IS NULL"
    params: list[Any] = list(codes)
    if retailer_id is not None:
        where += " AND retailer_id = ?"
        params.append(retailer_id)
    gone = [fid for fid, code, subject in db.execute(f"SELECT id, code, subject FROM findings WHERE {where}",
                                                       params).fetchall() if (code, subject) not in still]
    for fid in gone:
        db.execute("UPDATE findings SET gone_at = ? WHERE id = ?", (now, fid))
    return len(gone)


def _row(values) -> dict:
    row = dict(zip(_COLUMNS, values))
    try:
        row["detail"] = json.loads(row["detail"])
    except ValueError:
        row["detail"] = {"text": row["detail"]}
    row["state"] = "resolved" if row["resolved_at"] is not None else ("gone" if row["gone_at"] is not None else "open")
    return row


def list_findings(ctx: Context, *, retailer_id: str | None = None, store_id: str | None = None,
                  state: str = "open", code: str | None = None, limit: int = 100, offset: int = 0) -> dict:
    """Findings newest first, scoped to a retailer (and store) when given: {findings, total}."""
    if state not in STATES:
        raise Invalid("invalid_value", f"state is one of {', '.join(STATES)}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= LIST_MAX:
        raise Invalid("invalid_value", f"limit is a whole number from 1 to {LIST_MAX}")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= 10_000_000:
        raise Invalid("invalid_value", "offset is a whole number from 0 to 10000000")
    where, params = ["1 = 1"], []
    for column, value in (("retailer_id", retailer_id), ("store_id", store_id), ("code", code)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if state == "open":
        where.append("resolved_at IS NULL")
    elif state == "resolved":
        where.append("resolved_at IS NOT NULL")
    db = ctx.storage.read()
    clause = " AND ".join(where)
    total = db.execute(f"SELECT count(*) FROM findings WHERE {clause}", params).fetchone()[0]
    rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM findings WHERE {clause} ORDER BY id DESC LIMIT ? OFFSET ?",
                      (*params, limit, offset)).fetchall()
    return {"findings": [_row(r) for r in rows], "total": int(total)}


def get_finding(ctx: Context, finding_id: int) -> dict:
    if isinstance(finding_id, bool) or not isinstance(finding_id, int) or not 1 <= finding_id <= 2 ** 62:
        raise NotFound("not_found", "no such finding")
    row = ctx.storage.read().execute(f"SELECT {', '.join(_COLUMNS)} FROM findings WHERE id = ?",
                                     (finding_id,)).fetchone()
    if row is None:
        raise NotFound("not_found", "no such finding")
    return _row(row)


def resolve(ctx: Context, finding_id: int, note: str, *, retailer_id: str | None = None) -> dict:
    """A person closes a finding with a note (what they did about it); audited. `retailer_id`: the caller
    may only close that retailer's findings (another's is not found)."""
    if not isinstance(note, str) or not note.strip() or len(note.strip()) > NOTE_CHARS \
            or any(c in _BIDI_CONTROLS or unicodedata.category(c) in _NOT_IN_NOTES for c in note):
        raise Invalid("invalid_value", f"a note is 1 to {NOTE_CHARS} characters on one line, "
                                       "without control or direction marks")
    note = unicodedata.normalize("NFC", note.strip())
    found = get_finding(ctx, finding_id)
    if retailer_id is not None and found["retailer_id"] != retailer_id:
        raise NotFound("not_found", "no such finding")
    if found["resolved_at"] is not None:
        raise Conflict("already_resolved", "this finding was resolved already")
    actor = audit.current()
    now = ctx.clock()

    def write(db):
        done = db.execute("UPDATE findings SET resolved_at = ?, resolved_by = ?, resolution = ? "
                          "WHERE id = ? AND resolved_at IS NULL", (now, actor.label()[:200], note, finding_id))
        if done.rowcount != 1:
            raise Conflict("already_resolved", "this finding was resolved already")
        audit.write(ctx, db, actor, "finding.resolve", str(finding_id), retailer_id=found["retailer_id"],
                    detail={"code": found["code"], "subject": found["subject"], "note": note})
    ctx.storage.submit(write)
    return get_finding(ctx, finding_id)
