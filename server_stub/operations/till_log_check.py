"""A till's whole log checked at once: the backend's copy of it, or a file a till exported.

`python -m server_stub verify-till-log` (commands/till_log.py) asks this. The
backend's copy is checked from its first record: every link, the last head
the till signed (with the key registered for it), and every record against
what the backend recorded from that till. An export is checked against the
till's registered key, so a file handed over in a dispute proves itself.
"""

from __future__ import annotations

from typing import Any

from pos_app.core import till_log

from ..errors import Invalid, NotFound
from .context import Context
from .till_logs import MISMATCH, differences

PAGE = 5000
EXPORT_FORMAT = "pika-till-log/1"
MAX_EXPORT_RECORDS = 5_000_000


def verify_device(ctx: Context, device_id: str) -> dict:
    """{ok, device_id, records, cut, head, problems} for the backend's copy of a till's log (`cut`: records
    it held and cut off when the till sent another chain, kept in till_log_cut)."""
    db = ctx.storage.read()
    row = db.execute("SELECT log_key, log_seq, log_head, log_head_sig FROM devices WHERE id = ?",
                     (device_id,)).fetchone()
    if row is None:
        raise NotFound("not_found", f"no till {device_id}")
    key, held_seq, held_hash, sig = row
    problems: list[dict] = []
    after, prev, count = 0, till_log.GENESIS, 0
    while True:
        records = [{"seq": s, "body": b, "hash": h} for s, b, h in db.execute(
            "SELECT seq, body, hash FROM till_log WHERE device_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (device_id, after, PAGE)).fetchall()]
        if not records:
            break
        problems += [p.to_json() for p in till_log.verify_segment(records, prev=prev, after=after)]
        problems += [{"code": MISMATCH, "seqs": [m["seq"]], "message": f"record {m['seq']} ({m['key']}) says "
                      f"otherwise than the backend recorded: {', '.join(m['fields'])}"}
                     for m in differences(db, device_id, records)]
        count += len(records)
        after, prev = records[-1]["seq"], records[-1]["hash"]
    if (after, prev if after else None) != (int(held_seq or 0), held_hash):
        problems.append({"code": till_log.EDITED, "seqs": [int(held_seq or 0)], "message": "the log kept does not "
                         f"end at the record the backend verified last ({held_seq})"})
    if held_seq and key and sig and not till_log.head_signed(key, device_id, int(held_seq), held_hash, sig):
        problems.append({"code": till_log.BAD_SIGNATURE, "seqs": [int(held_seq)], "message": "the head kept is "
                         "not signed by the till's registered key"})
    cut = db.execute("SELECT count(*) FROM till_log_cut WHERE device_id = ?", (device_id,)).fetchone()[0]
    return {"ok": not problems, "device_id": device_id, "records": count, "cut": int(cut),
            "head": {"seq": int(held_seq or 0), "hash": held_hash, "signed": bool(sig)},
            "public_key": key, "problems": problems[:1000]}


def verify_export(ctx: Context | None, doc: Any, public_key: str | None = None) -> dict:
    """{ok, device_id, records, problems} for an exported file's JSON: checked against `public_key`, else the
    key the backend registered for its device (`ctx`), never only the key the file names itself."""
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
        raise Invalid("invalid_value", f"not a till's log export (format {EXPORT_FORMAT})")
    device_id, records = doc.get("device_id"), doc.get("records")
    if not isinstance(device_id, str) or not 1 <= len(device_id) <= 64 or not isinstance(records, list) \
            or len(records) > MAX_EXPORT_RECORDS or not all(isinstance(r, dict) for r in records):
        raise Invalid("invalid_value", "an export names its device and holds a list of records")
    after, prev, head = doc.get("after", 0), doc.get("prev", till_log.GENESIS), doc.get("head")
    if not (after == 0 or till_log.is_seq(after)) or not till_log.is_hash(prev) or not isinstance(head, dict):
        raise Invalid("invalid_value", "an export has after, prev and a signed head")
    if public_key is None:
        if ctx is None:
            raise Invalid("invalid_value", "the till's public key is needed")
        row = ctx.storage.read().execute("SELECT log_key FROM devices WHERE id = ?", (device_id,)).fetchone()
        if row is None or row[0] is None:
            raise NotFound("not_found", f"the backend holds no log key of till {device_id}")
        public_key = row[0]
    try:
        till_log.parse_public_key(public_key)
    except ValueError as exc:
        raise Invalid("invalid_value", f"public key: {exc}") from None
    problems = till_log.verify_segment(records, prev=prev, after=after, head=head, public_key=public_key,
                                       device_id=device_id)
    if doc.get("public_key") not in (None, public_key):
        problems.append(till_log.Problem("log_key_changed", (), "the file names another key than the till's"))
    return {"ok": not problems, "device_id": device_id, "records": len(records),
            "problems": [p.to_json() for p in problems][:1000]}
