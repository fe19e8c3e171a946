"""A till's tamper-evident log checked as it arrives (docs/sync.md, "The till's log"): `POST /till-log`.

The till sends the records of its log after the last one the backend holds,
the head at the batch's last record signed with its own key, and what its
self-check found changed by hand in its file. The backend checks the
signature with the key registered at enrollment (or first seen, for a till
enrolled before the log), that the records follow from the last one it
holds, that the ones it held already came again unchanged, that the chain
does not end before a head it holds (a rewind), and that each record says
what the backend itself recorded from that till. Every break is a finding
naming the till and the records (operations/findings.py); then the till's
chain is taken from the break on, so what follows goes on being checked.
"""

from __future__ import annotations

import json
from typing import Any

from pos_app.core import till_log

from ..errors import Forbidden, Invalid
from . import audit, lan_keys
from .context import Context
from .findings import raise_finding

MAX_RECORDS = 1000
MAX_TAMPERED = 100
MAX_SIG = 200
EVIDENCE_MAX = 100  # records' bodies a finding keeps as evidence
SEQS_KEPT = 500  # seqs a finding names, all breaks of its kind together
CUT_KEPT = 200_000  # records cut off one till's copy kept in till_log_cut: a till cycling rewinds fills no disk
KEY_CHANGED, MISMATCH = "log_key_changed", "log_mismatch"
# What a till's self-check reports (pos_app/store/chain.py), and the finding each one is.
# `chain_edited`: records the backend already holds that no longer link in the till's file (it cannot see
# those itself: they are not sent again); the backend's copy is the record as it was.
TAMPERED = {"row_missing": "log_row_missing", "row_changed": "log_row_changed", "chain_missing": "log_chain_missing",
            "chain_edited": till_log.EDITED}
CODES = tuple(dict.fromkeys((till_log.GAP, till_log.EDITED, till_log.REORDERED, till_log.REWOUND,
                             till_log.BAD_SIGNATURE, till_log.MALFORMED, KEY_CHANGED, MISMATCH, *TAMPERED.values())))


def check_body(body: dict) -> dict:
    """The request's deeper shape (the web layer checked its fields and types): Invalid naming the problem."""
    try:
        till_log.parse_public_key(body["public_key"])
    except ValueError as exc:
        raise Invalid("invalid_value", f"public_key: {exc}") from None
    after = body["after"]
    if not (after == 0 or till_log.is_seq(after)):
        raise Invalid("invalid_value", "after is a whole number from 0")
    for i, record in enumerate(body["records"]):
        if not isinstance(record, dict) or set(record) != {"seq", "body", "hash"}:
            raise Invalid("invalid_value", f"records[{i}] is an object of seq, body and hash")
        if not till_log.is_seq(record["seq"]) or not till_log.is_hash(record["hash"]):
            raise Invalid("invalid_value", f"records[{i}] has a seq from 1 and a hash of 64 hex digits")
        if not isinstance(record["body"], str) or not 2 <= len(record["body"]) <= till_log.MAX_BODY:
            raise Invalid("invalid_value", f"records[{i}].body is a text of 2 to {till_log.MAX_BODY} characters")
    head = body["head"]
    if set(head) != {"seq", "hash", "sig"} or not (head["seq"] == 0 or till_log.is_seq(head["seq"])) \
            or not till_log.is_hash(head["hash"]) or not isinstance(head["sig"], str) or len(head["sig"]) > MAX_SIG:
        raise Invalid("invalid_value", "head is an object of seq, hash and sig (a signature)")
    for i, item in enumerate(body.get("tampered") or []):
        if not isinstance(item, dict) or not set(item) <= {"seq", "key", "problem", "detail"} \
                or item.get("problem") not in TAMPERED or not till_log.is_seq(item.get("seq")) \
                or not isinstance(item.get("key") or "", str) or len(item.get("key") or "") > 64 \
                or not isinstance(item.get("detail") or "", str) or len(item.get("detail") or "") > 300 \
                or "\x00" in (item.get("key") or "") + (item.get("detail") or ""):
            raise Invalid("invalid_value", f"tampered[{i}] is {{seq, key, problem, detail}} of a known problem")
    return body


def register_key(ctx: Context, db, device_id: str, store_id: str, key: str, actor: audit.Actor, now: float, *,
                 why: str) -> None:
    """Inside a write: the till's log key kept with its device (at enrollment, a roll, or first use); its
    store's tills hear of it (the roster lists the key)."""
    old = db.execute("SELECT log_key FROM devices WHERE id = ?", (device_id,)).fetchone()
    if old is None or old[0] == key:
        return
    db.execute("UPDATE devices SET log_key = ? WHERE id = ?", (key, device_id))
    retailer = db.execute("SELECT retailer_id FROM devices WHERE id = ?", (device_id,)).fetchone()[0]
    audit.write(ctx, db, actor, "device.log_key", device_id, retailer_id=retailer,
                detail={"why": why, "replaced": old[0] is not None})
    lan_keys.lan_changed(ctx, db, store_id, origin=device_id)


def receive(ctx: Context, device: dict, body: dict) -> dict:
    """Check and keep a batch of a till's log; the answer says what the backend holds now."""
    check_body(body)
    now = ctx.clock()
    actor = audit.current()
    device_id = device["id"]

    def write(db):
        ctx.storage.hold(db, f"till-log:{device_id}")
        row = db.execute("SELECT kind, log_key, log_seq, log_head, log_head_sig FROM devices WHERE id = ?",
                         (device_id,)).fetchone()
        if row is None or row[0] != "till":
            raise Forbidden("not_a_till", "only a till program keeps a log: a browser's till has none")
        batch = _Batch(ctx, db, device, now)
        key, held_seq, held_hash = row[1], int(row[2] or 0), row[3] or till_log.GENESIS
        start = (held_seq, held_hash)
        if key is not None and key != body["public_key"]:
            batch.flag(KEY_CHANGED, (), "the till signs with another key than the one registered: nothing of "
                       "its log was taken", {"registered": key, "sent": body["public_key"]})
            return batch.answer(held_seq, held_hash)
        head = body["head"]
        # Checked with the key it will be held to: a key first seen is taken only with a head it signed.
        if not till_log.head_signed(key or body["public_key"], device_id, head["seq"], head["hash"], head["sig"]):
            batch.flag(till_log.BAD_SIGNATURE, (head["seq"],), f"the head at record {head['seq']} is not signed "
                       "by this till's key: nothing of the batch was taken")
            return batch.answer(held_seq, held_hash)
        if key is None:
            register_key(ctx, db, device_id, device["store_id"], body["public_key"], actor, now, why="first use")
        if body["after"] > held_seq:  # a restored backend lost records the till still has: no finding
            return batch.answer(held_seq, held_hash, "resend")
        records = body["records"]
        first = batch.compare_held([r for r in records if r["seq"] <= held_seq])
        if first is not None:  # the till's version from the break on: the held one is the finding's evidence
            held_seq, held_hash = batch.cut(first - 1)
        # Records past the head are not signed for: not kept now, sent again under a later head.
        records = [r for r in records if held_seq < r["seq"] <= head["seq"]]
        if head["seq"] < start[0]:
            held_seq, held_hash = batch.rewind(head, start[0], held_seq)
        elif head["seq"] == held_seq and not records and head["hash"] != held_hash:
            batch.flag(till_log.EDITED, (held_seq,), f"record {held_seq} differs from the one the till sent before",
                       batch.held_bodies(held_seq, held_seq))
            held_seq, held_hash = batch.cut(held_seq - 1)  # the answer asks for the till's version of it
        # A head the records cannot reach because the backend cut its own copy is asked for again, not a rewind.
        reach = head if records or held_seq >= head["seq"] else None
        for problem in till_log.verify_segment(records, prev=held_hash, after=held_seq, head=reach):
            batch.flag(problem.code, problem.seqs, problem.message)
        kept = batch.keep(records)
        if kept:
            held_seq, held_hash = kept[-1]["seq"], kept[-1]["hash"]
        batch.mismatches(kept)
        batch.tampered(body.get("tampered") or [])
        # The till's signature of the record held last: this head's, else the one kept if nothing moved.
        if (head["seq"], head["hash"]) == (held_seq, held_hash):
            signed = head["sig"]
        else:
            signed = row[4] if (held_seq, held_hash) == start else None
        db.execute("UPDATE devices SET log_seq = ?, log_head = ?, log_head_sig = ?, log_claimed_seq = ?,"
                   " log_claimed_at = ? WHERE id = ?",
                   (held_seq, None if held_seq == 0 else held_hash, signed, head["seq"], now, device_id))
        return batch.answer(held_seq, held_hash)
    return ctx.storage.submit(write)


class _Batch:
    """One request's work inside its write: the findings it raises, the records it keeps."""

    def __init__(self, ctx: Context, db, device: dict, now: float):
        self.ctx, self.db, self.device, self.now = ctx, db, device, now
        self.codes: list[str] = []
        self.dropped: list[dict] = []  # held records cut off because the till's chain differs from them

    def flag(self, code: str, seqs, message: str, evidence: Any = None, keys=()) -> None:
        """A finding about this till's log, merged with the open one of its code (the seqs of every break)."""
        subject = self.device["id"]
        old = self.db.execute("SELECT detail FROM findings WHERE code = ? AND subject = ? AND resolved_at IS NULL",
                              (code, subject)).fetchone()
        before = {}
        if old is not None:
            try:
                before = json.loads(old[0])
            except ValueError:
                before = {}
        seen = [s for s in before.get("seqs", []) if isinstance(s, int)]
        merged = sorted(set(seen) | {s for s in seqs if isinstance(s, int)})[:SEQS_KEPT]
        detail = {"device_id": subject, "till": self.device.get("name"), "seqs": merged,
                  "keys": sorted(set(before.get("keys", [])) | {k for k in keys if k})[:SEQS_KEPT],
                  "message": message, "messages": (before.get("messages", []) + [message])[-20:]}
        kept = before.get("evidence")  # the first breaks' evidence stays: it is what a person looks at first
        if isinstance(kept, list) and isinstance(evidence, list):
            evidence = (kept + evidence)[:EVIDENCE_MAX]
        elif evidence is None:
            evidence = kept
        if evidence is not None:
            detail["evidence"] = evidence
        raise_finding(self.db, code=code, subject=subject, detail=detail, now=self.now,
                      retailer_id=self.device["retailer_id"], store_id=self.device["store_id"], device_id=subject)
        if code not in self.codes:
            self.codes.append(code)

    def answer(self, seq: int, hash_: str, status: str | None = None) -> dict:
        status = status or ("flagged" if self.codes else "ok")
        return {"log": {"status": status, "seq": seq, "hash": hash_ if seq else till_log.GENESIS,
                        "findings": self.codes}, "server_time": self.now}

    def compare_held(self, again: list[dict]) -> int | None:
        """Records the backend holds, sent again (a lost answer): the same, or changed since (a finding).
        Returns the first changed seq, or None."""
        if not again:
            return None
        seqs = [r["seq"] for r in again]
        held = {seq: (hash_, body) for seq, hash_, body in self.db.execute(
            "SELECT seq, hash, body FROM till_log WHERE device_id = ? AND seq BETWEEN ? AND ?",
            (self.device["id"], min(seqs), max(seqs))).fetchall()}
        changed = [r for r in again if r["seq"] in held and held[r["seq"]][0] != r["hash"]]
        if changed:
            self.flag(till_log.EDITED, [r["seq"] for r in changed], "records the backend holds came again changed",
                      [{"seq": r["seq"], "held": held[r["seq"]][1], "sent": r["body"]} for r in changed[:EVIDENCE_MAX]])
            return changed[0]["seq"]
        return None

    def held_bodies(self, lo: int, hi: int) -> list[dict]:
        return [{"seq": s, "key": k, "body": b} for s, k, b in self.db.execute(
            "SELECT seq, key, body FROM till_log WHERE device_id = ? AND seq BETWEEN ? AND ? ORDER BY seq LIMIT ?",
            (self.device["id"], lo, hi, EVIDENCE_MAX)).fetchall()]

    def cut(self, upto: int) -> tuple[int, str]:
        """The records held after `upto` moved to till_log_cut (the till's chain differs from there, and the
        backend's copy stays one chain): the held (seq, hash)."""
        device_id = self.device["id"]
        self.dropped += [{"seq": s, "key": k, "body": b} for s, k, b in self.db.execute(
            "SELECT seq, key, body FROM till_log WHERE device_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (device_id, upto, SEQS_KEPT)).fetchall()]
        kept = self.db.execute("SELECT count(*) FROM till_log_cut WHERE device_id = ?", (device_id,)).fetchone()[0]
        self.db.execute(
            "INSERT INTO till_log_cut (device_id, seq, kind, key, body, hash, received_at, cut_at)"
            " SELECT device_id, seq, kind, key, body, hash, received_at, ? FROM till_log"
            " WHERE device_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (self.now, device_id, upto, max(0, CUT_KEPT - int(kept))))
        self.db.execute("DELETE FROM till_log WHERE device_id = ? AND seq > ?", (device_id, upto))
        row = self.db.execute("SELECT seq, hash FROM till_log WHERE device_id = ? AND seq <= ? ORDER BY seq DESC"
                              " LIMIT 1", (device_id, upto)).fetchone()
        return (int(row[0]), row[1]) if row else (0, till_log.GENESIS)

    def rewind(self, head: dict, held_before: int, held_seq: int) -> tuple[int, str]:
        """The till's chain ends before what the backend held (`held_before`): the records it no longer has are
        named (their bodies kept in the finding), then the log is taken from the till's head on. Returns the new
        held (seq, hash)."""
        seq = head["seq"]
        if held_seq > seq:
            held_seq, held_hash = self.cut(seq)
        else:
            held_hash = self.db.execute("SELECT hash FROM till_log WHERE device_id = ? AND seq = ?",
                                        (self.device["id"], held_seq)).fetchone()
            held_hash = held_hash[0] if held_hash else till_log.GENESIS
        lost = sorted((r for r in self.dropped if seq < r["seq"] <= held_before), key=lambda r: r["seq"])
        self.flag(till_log.REWOUND, [r["seq"] for r in lost] or range(seq + 1, min(held_before, seq + 1000) + 1),
                  f"the till's log ends at record {seq}, before records the backend holds: they were deleted from "
                  "the till, or its file put back from an older copy", lost[:EVIDENCE_MAX], keys=[r["key"] for r in lost])
        if (held_seq, held_hash) == (seq, head["hash"]) or seq == 0:
            return held_seq, held_hash
        self.flag(till_log.EDITED, (seq,), f"record {seq} differs from the one the till sent before",
                  self.held_bodies(seq, seq))
        return self.cut(seq - 1)

    def keep(self, records: list[dict]) -> list[dict]:
        """The records kept, in order, up to the first that is not of the log's shape or goes backwards."""
        kept, last = [], 0
        for record in records:
            try:
                till_log.parse_body(record["body"])
            except ValueError:
                break
            if record["seq"] <= last:
                break
            kept.append(record)
            last = record["seq"]
        for record in kept:
            kind, key = _kind_key(record["body"])
            self.db.execute(
                "INSERT INTO till_log (device_id, seq, kind, key, body, hash, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (device_id, seq) DO NOTHING",
                (self.device["id"], record["seq"], kind, key, record["body"], record["hash"], self.now))
        return kept

    def mismatches(self, records: list[dict]) -> None:
        """Each record against what the backend recorded from this till under its key (if it has arrived)."""
        found = [m for m in differences(self.db, self.device["id"], records)]
        if found:
            self.flag(MISMATCH, [m["seq"] for m in found], "the till's log says otherwise than what it synced",
                      found[:EVIDENCE_MAX], keys=[m["key"] for m in found])

    def tampered(self, items: list[dict]) -> None:
        by_problem: dict[str, list[dict]] = {}
        for item in items[:MAX_TAMPERED]:
            by_problem.setdefault(item["problem"], []).append(item)
        for problem, found in by_problem.items():
            self.flag(TAMPERED[problem], [i["seq"] for i in found], "the till found its own file changed by hand: "
                      + "; ".join(f"record {i['seq']}: {i.get('detail') or problem}" for i in found[:5]),
                      [{k: i.get(k) for k in ("seq", "key", "detail")} for i in found[:EVIDENCE_MAX]],
                      keys=[i.get("key") for i in found])


def _kind_key(body: str) -> tuple[str, str]:
    fields = till_log.parse_body(body)
    return fields["t"], fields["key"]


def differences(db, device_id: str, records: list[dict]) -> list[dict]:
    """Records whose attempt or void the backend recorded from this till otherwise: [{seq, key, fields}]."""
    parsed = {}
    for record in records:
        try:
            parsed[record["seq"]] = till_log.parse_body(record["body"])
        except ValueError:
            continue
    out = []
    for chunk in _chunks([f for f in parsed.items() if f[1]["t"] == till_log.ATTEMPT], 400):
        keys = [f["key"] for _, f in chunk]
        rows = {r[0]: r for r in db.execute(
            "SELECT key, status, kind, voucher_id, jti, code, decided, till_verdict, till_at FROM attempts "
            f"WHERE device_id = ? AND key IN ({', '.join('?' * len(keys))})", (device_id, *keys)).fetchall()}
        for seq, fields in chunk:
            row = rows.get(fields["key"])
            if row is not None:
                wrong = _attempt_differs(fields, row)
                if wrong:
                    out.append({"seq": seq, "key": fields["key"], "fields": wrong})
    for chunk in _chunks([f for f in parsed.items() if f[1]["t"] == till_log.VOID], 400):
        keys = [f["key"] for _, f in chunk]
        rows = {r[0]: r for r in db.execute(
            "SELECT v.key, a.key, v.reason FROM voids v JOIN attempts a ON a.id = v.attempt_id "
            f"WHERE v.device_id = ? AND v.key IN ({', '.join('?' * len(keys))})", (device_id, *keys)).fetchall()}
        for seq, fields in chunk:
            row = rows.get(fields["key"])
            if row is not None:
                wrong = [n for n, v in (("redemption_key", row[1]), ("reason", row[2])) if fields[n] != v]
                if wrong:
                    out.append({"seq": seq, "key": fields["key"], "fields": wrong})
    return out


def _attempt_differs(fields: dict, row: tuple) -> list[str]:
    _, status, kind, voucher_id, jti, code, decided, till_verdict, till_at = row
    # Synced (an offline entry, or an online one whose first answer the backend lost): what the till said,
    # kept beside the backend's own verdict, is what its log recorded.
    if till_verdict:
        try:
            said = json.loads(till_verdict)
        except ValueError:
            said = {}
        wrong = [n for n in ("kind", "voucher_id", "jti", "code") if said.get(n) != fields[n]]
        if bool(said.get("accepted")) != (fields["status"] == "accepted"):
            wrong.append("status")
        if till_at is not None and abs(float(till_at) - float(fields["at"])) > 1e-3:
            wrong.append("at")
        return wrong
    # Online: the backend's verdict is the one the till recorded.
    wrong = [n for n, v in (("kind", kind), ("voucher_id", voucher_id), ("jti", jti), ("code", code))
             if v is not None and fields[n] != v]
    if (status == "accepted") != (fields["status"] == "accepted"):
        wrong.append("status")
    return wrong


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]
