"""The backend's check of a till's log (POST /till-log, operations/till_logs.py), on both engines.

The till's half is made here with the log's own rules (pos_app.core.till_log): records chained as a
till chains them, heads signed with a till's key. Every break of each kind is a finding naming the till
and its records; the log goes on being checked after it; nothing of a refused body is written.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from pos_app.core import till_log
from server_stub.operations import till_log_check

from api_fixtures import new_key


class FakeTillLog:
    """A till's log as a till keeps it: records chained, heads signed with its own key."""

    def __init__(self, device_id: str, key: str | None = None):
        self.device_id = device_id
        self.key = key or till_log.new_private_key()
        self.records: list[dict] = []

    @property
    def public_key(self) -> str:
        return till_log.public_key_of(self.key)

    def add(self, n: int = 1, *, status: str = "accepted", kind: str = "printed", code: str | None = "X",
            key: str | None = None, at: float | None = None) -> list[dict]:
        made = []
        for _ in range(n):
            seq = len(self.records) + 1
            body = till_log.attempt_body(
                key=key or new_key(), at=1.8e9 + seq if at is None else at, status=status, reason=None, kind=kind, voucher_id="v", jti=None,
                code=code, method="typed", staff_id=None, decided="offline", day="2027-01-15", store_id="s",
                till="Caja", input_text=code)
            prev = self.records[-1]["hash"] if self.records else till_log.GENESIS
            self.records.append({"seq": seq, "body": body, "hash": till_log.link(prev, body)})
            made.append(self.records[-1])
        return made

    def head(self, records: list[dict] | None = None) -> dict:
        last = (records or self.records)[-1] if (records or self.records) else {"seq": 0, "hash": till_log.GENESIS}
        return {"seq": last["seq"], "hash": last["hash"],
                "sig": till_log.sign_head(self.key, self.device_id, last["seq"], last["hash"])}

    def body(self, after: int, records: list[dict] | None = None, head: dict | None = None, **extra) -> dict:
        records = self.records[after:] if records is None else records
        return {"public_key": self.public_key, "after": after, "records": records,
                "head": head or self.head(records or self.records[:after]), "tampered": [], **extra}


def send(api, till, body, status: int = 200) -> dict:
    answer = api.client.post("/till-log", headers=till.auth, json=body)
    assert answer.status_code == status, answer.text
    return answer.json()


def findings(api, code: str | None = None) -> list[dict]:
    found = api.ok(api.client.get("/findings", headers=api.admin, params={"state": "open"}))["findings"]
    return [f for f in found if code is None or f["code"] == code]


def held(api, till) -> tuple[int, int]:
    row = api.rows("SELECT log_seq FROM devices WHERE id = ?", (till.id,))[0]
    count = api.rows("SELECT count(*) FROM till_log WHERE device_id = ?", (till.id,))[0][0]
    return int(row[0]), int(count)


def test_a_whole_log_in_several_batches_is_taken_with_no_finding(api):
    till = api.enroll("Caja log")
    log = FakeTillLog(till.id)
    log.add(5)
    answer = send(api, till, log.body(0, log.records[:2]))
    assert answer["log"] == {"status": "ok", "seq": 2, "hash": log.records[1]["hash"], "findings": []}
    assert send(api, till, log.body(2))["log"]["seq"] == 5
    log.add(3)
    assert send(api, till, log.body(5))["log"]["status"] == "ok"
    assert held(api, till) == (8, 8) and findings(api) == []
    # The key was taken on first use (enrolled without one), and audited.
    assert api.rows("SELECT log_key FROM devices WHERE id = ?", (till.id,))[0][0] == log.public_key
    assert api.rows("SELECT count(*) FROM audit_log WHERE action = 'device.log_key' AND target = ?", (till.id,))[0][0] == 1
    # The same batch again (an answer lost): the same records, nothing new, no finding.
    assert send(api, till, log.body(5, log.records[5:]))["log"]["status"] == "ok" and findings(api) == []


def test_enrollment_registers_the_key_and_refuses_one_that_is_not(api):
    key = till_log.public_key_of(till_log.new_private_key())
    code = api.ok(api.client.post("/enrollment-codes", headers=api.admin, json={"store_id": api.store_id}), 201)["code"]
    for bad in ("x" * 44, "A" * 43, 5, "é" * 44, "QUFB" * 11):
        answer = api.client.post("/devices/enroll", json={"code": code, "name": "Caja k", "log_key": bad})
        assert answer.status_code == 400 and answer.json()["error"]["code"] in ("invalid_value", "wrong_type")
    body = api.ok(api.client.post("/devices/enroll", json={"code": code, "name": "Caja k", "log_key": key}), 201)
    assert api.rows("SELECT log_key FROM devices WHERE id = ?", (body["device_id"],))[0][0] == key


def test_a_rolls_code_replaces_the_key_audited(api):
    till = api.enroll("Caja roll")
    first, second = (till_log.public_key_of(till_log.new_private_key()) for _ in range(2))
    for key in (first, second, second):
        code = api.ok(api.client.post(f"/devices/{till.id}/roll", headers=api.admin))["code"]
        api.ok(api.client.post("/devices/enroll", json={"code": code, "name": "Caja roll", "log_key": key}), 201)
        assert api.rows("SELECT log_key FROM devices WHERE id = ?", (till.id,))[0][0] == key
    audited = api.rows("SELECT detail FROM audit_log WHERE action = 'device.log_key' AND target = ? ORDER BY id",
                       (till.id,))
    assert [json.loads(d[0]) for d in audited] == [{"why": "roll", "replaced": False}, {"why": "roll", "replaced": True}]


def test_a_first_key_is_taken_only_with_a_head_it_signed(api):
    till = api.enroll("Caja tofu")
    log = FakeTillLog(till.id)
    log.add(1)
    body = log.body(0)
    body["head"] = {**body["head"], "sig": FakeTillLog(till.id).head(log.records)["sig"]}
    assert send(api, till, body)["log"]["findings"] == ["log_bad_signature"]
    assert api.rows("SELECT log_key FROM devices WHERE id = ?", (till.id,))[0][0] is None and held(api, till) == (0, 0)


def test_another_key_or_a_forged_signature_is_a_finding_and_nothing_is_taken(api):
    till = api.enroll("Caja k2")
    log = FakeTillLog(till.id)
    log.add(2)
    send(api, till, log.body(0))
    thief = FakeTillLog(till.id)  # the same records signed by another key
    thief.records = [dict(r) for r in log.records]
    thief.add(1)
    answer = send(api, till, thief.body(2))
    assert answer["log"]["status"] == "flagged" and answer["log"]["findings"] == ["log_key_changed"]
    assert held(api, till) == (2, 2)
    log.add(1)
    forged = log.body(2)
    forged["head"] = {**forged["head"], "sig": thief.head()["sig"]}
    assert send(api, till, forged)["log"]["findings"] == ["log_bad_signature"]
    assert held(api, till) == (2, 2)
    found = {f["code"]: f for f in findings(api)}
    assert set(found) == {"log_key_changed", "log_bad_signature"}
    assert found["log_bad_signature"]["device_id"] == till.id and found["log_bad_signature"]["detail"]["seqs"] == [3]


@pytest.mark.parametrize("breaking", ["gap", "edited", "swapped"])
def test_each_break_is_named_and_the_log_goes_on_being_checked(api, breaking):
    till = api.enroll("Caja b")
    log = FakeTillLog(till.id)
    log.add(3)
    send(api, till, log.body(0))
    log.add(4)  # records 4 to 7
    sent = [dict(r) for r in log.records[3:]]
    if breaking == "gap":
        del sent[1]  # record 5 gone
        code, seqs = "log_gap", [5]
    elif breaking == "edited":
        fields = json.loads(sent[1]["body"])
        fields[2] += 3600  # its time moved by an hour, its hash kept
        sent[1]["body"] = json.dumps(fields, separators=(",", ":"))
        code, seqs = "log_edited", [5]
    else:
        sent[1], sent[2] = dict(sent[2], seq=5), dict(sent[1], seq=6)
        code, seqs = "log_reordered", [5]
    answer = send(api, till, log.body(3, sent, head=log.head()))
    assert answer["log"]["status"] == "flagged" and answer["log"]["findings"] == [code]
    finding = findings(api, code)[0]
    assert finding["device_id"] == till.id and set(seqs) <= set(finding["detail"]["seqs"])
    assert finding["detail"]["till"] == "Caja b"
    assert answer["log"]["seq"] == 7  # taken from the break on
    log.add(2)
    assert send(api, till, log.body(7))["log"] == {"status": "ok", "seq": 9, "hash": log.records[-1]["hash"],
                                                   "findings": []}


def test_a_rewound_log_keeps_the_lost_records_in_its_finding(api):
    till = api.enroll("Caja r")
    log = FakeTillLog(till.id)
    log.add(5)
    send(api, till, log.body(0))
    lost = log.records[3:]
    log.records = log.records[:3]  # the till's file put back from a copy of when it held 3
    answer = send(api, till, log.body(5, [], head=log.head()))
    assert answer["log"]["findings"] == ["log_rewound"] and answer["log"]["seq"] == 3
    finding = findings(api, "log_rewound")[0]
    assert finding["detail"]["seqs"] == [4, 5]
    assert [e["body"] for e in finding["detail"]["evidence"]] == [r["body"] for r in lost]
    log.add(2)  # the till goes on from 3: new records 4 and 5 are taken
    assert send(api, till, log.body(3))["log"] == {"status": "ok", "seq": 5, "hash": log.records[-1]["hash"],
                                                   "findings": []}


def test_a_till_cannot_erase_the_backends_copy_by_rewinding_it_to_nothing(api):
    till = api.enroll("Caja borra")
    log = FakeTillLog(till.id)
    log.add(1000, code="C" * 1500)  # large bodies: the finding's evidence cannot hold them all
    for after in (0, 500):
        send(api, till, log.body(after, log.records[after:after + 500]))
    assert held(api, till) == (1000, 1000)
    answer = send(api, till, log.body(1000, [], head={"seq": 0, "hash": till_log.GENESIS,
                                                      "sig": till_log.sign_head(log.key, till.id, 0, till_log.GENESIS)}))
    assert answer["log"]["findings"] == ["log_rewound"] and held(api, till) == (0, 0)
    # What the backend checked is kept whole beside the chain it now holds, never deleted.
    cut = api.rows("SELECT seq, body, hash FROM till_log_cut WHERE device_id = ? ORDER BY seq", (till.id,))
    assert [(s, b, h) for s, b, h in cut] == [(r["seq"], r["body"], r["hash"]) for r in log.records]
    # The finding still names the records and keeps the first ones' bodies, shortened to fit, not replaced.
    detail = findings(api, "log_rewound")[0]["detail"]
    assert detail["seqs"] == list(range(1, 501)) and "truncated" not in detail
    assert detail["evidence"] and detail["evidence"][0]["body"] == log.records[0]["body"]
    assert "evidence" in detail["shortened"]
    assert len(json.dumps(detail)) <= 16000
    checked = till_log_check.verify_device(api.backend.ctx, till.id)
    assert checked["ok"] and checked["records"] == 0 and checked["cut"] == 1000


def test_records_past_the_signed_head_are_not_kept(api):
    till = api.enroll("Caja cabeza")
    log = FakeTillLog(till.id)
    log.add(4)
    answer = send(api, till, log.body(0, log.records, head=log.head(log.records[:2])))
    assert answer["log"] == {"status": "ok", "seq": 2, "hash": log.records[1]["hash"], "findings": []}
    assert held(api, till) == (2, 2)
    assert send(api, till, log.body(2))["log"]["seq"] == 4 and findings(api) == []


def test_held_records_sent_again_changed_are_an_edit_with_both_versions(api):
    till = api.enroll("Caja e")
    log = FakeTillLog(till.id)
    log.add(3)
    send(api, till, log.body(0))
    changed = FakeTillLog(till.id, log.key)
    changed.add(3, status="refused")  # a rewritten chain, re-signed with the till's own key
    answer = send(api, till, changed.body(0, head=log.head()))
    assert "log_edited" in answer["log"]["findings"]
    evidence = findings(api, "log_edited")[0]["detail"]["evidence"]
    assert {e["seq"] for e in evidence} == {1, 2, 3} and all(e["held"] != e["sent"] for e in evidence)
    # The backend's copy is the till's chain from the break on: what follows links to it and is checked.
    assert [r[0] for r in api.rows("SELECT body FROM till_log WHERE device_id = ? ORDER BY seq", (till.id,))] == \
        [r["body"] for r in changed.records]
    changed.add(2)
    assert send(api, till, changed.body(3))["log"] == {"status": "ok", "seq": 5, "hash": changed.records[-1]["hash"],
                                                       "findings": []}


def test_a_till_put_back_from_a_copy_that_chained_on_is_an_edit_and_its_new_chain_is_taken(api):
    till = api.enroll("Caja p")
    log = FakeTillLog(till.id)
    log.add(6)
    send(api, till, log.body(0))
    forked = FakeTillLog(till.id, log.key)  # its file (and acked seq) from when it held 3, then 2 new records
    forked.records = [dict(r) for r in log.records[:3]]
    forked.add(2, status="refused")
    answer = send(api, till, forked.body(3))
    assert answer["log"]["findings"] == ["log_edited", "log_rewound"] and answer["log"]["seq"] == 5
    edited, rewound = findings(api, "log_edited")[0]["detail"], findings(api, "log_rewound")[0]["detail"]
    assert edited["seqs"] == [4, 5] and [e["held"] for e in edited["evidence"]] == [r["body"] for r in log.records[3:5]]
    assert rewound["seqs"] == [6] and rewound["evidence"][0]["body"] == log.records[5]["body"]
    forked.add(1)
    assert send(api, till, forked.body(5))["log"]["status"] == "ok"
    assert held(api, till) == (6, 6)


def test_a_head_differing_from_the_record_held_asks_for_the_tills_version(api):
    till = api.enroll("Caja q")
    log = FakeTillLog(till.id)
    log.add(3)
    send(api, till, log.body(0))
    other = FakeTillLog(till.id, log.key)
    other.records = [dict(r) for r in log.records[:2]]
    other.add(1, status="refused")  # its record 3 rewritten, nothing new: only its head says so
    answer = send(api, till, other.body(3, []))
    assert answer["log"]["findings"] == ["log_edited"] and answer["log"]["seq"] == 2  # asked again from 2
    assert send(api, till, other.body(2))["log"] == {"status": "ok", "seq": 3, "hash": other.records[2]["hash"],
                                                     "findings": []}
    assert findings(api, "log_edited")[0]["detail"]["evidence"][0]["body"] == log.records[2]["body"]


def test_a_restored_backend_asks_again_from_what_it_holds_without_a_finding(api):
    till = api.enroll("Caja s")
    log = FakeTillLog(till.id)
    log.add(4)
    send(api, till, log.body(0, log.records[:2]))
    # The till believes the backend holds 4 (an answer from before a restore): asked to send from 2.
    answer = send(api, till, log.body(4, [], head=log.head()))
    assert answer["log"] == {"status": "resend", "seq": 2, "hash": log.records[1]["hash"], "findings": []}
    assert send(api, till, log.body(2))["log"]["status"] == "ok" and findings(api) == []


def test_a_record_disagreeing_with_what_the_till_synced_is_a_mismatch(api):
    till = api.enroll("Caja m")
    key = new_key()
    assert api.redeem(till, api.printed_code, method="typed", key=key).status_code == 201  # accepted online
    log = FakeTillLog(till.id)
    log.add(1, key=key, code=api.printed_code, status="refused")  # the till's file says it refused it
    answer = send(api, till, log.body(0))
    assert answer["log"]["findings"] == ["log_mismatch"]
    finding = findings(api, "log_mismatch")[0]
    assert finding["detail"]["keys"] == [key] and "status" in finding["detail"]["evidence"][0]["fields"]


def test_a_record_disagreeing_with_what_the_till_synced_offline_is_a_mismatch(api):
    till = api.enroll("Caja n")
    at = time.time() - 60
    same, other = new_key(), new_key()
    entries = [{"key": k, "at": at + i, "accepted": True, "reason": None, "kind": "printed", "voucher_id": "v",
                "jti": None, "code": "X", "method": "typed", "staff_id": None, "decided": "offline"}
               for i, k in enumerate((same, other), start=1)]
    assert api.client.post("/sync", headers=till.auth, json={"entries": entries}).status_code == 200
    log = FakeTillLog(till.id)
    log.add(1, key=same, at=at + 1)  # as synced: the till accepted it, at that time
    log.add(1, key=other, at=at + 2, code="Y")  # the file says another code than the till synced
    log.add(1)  # not synced yet: no finding now (reconciliation's log_unsynced)
    answer = send(api, till, log.body(0))
    assert answer["log"]["findings"] == ["log_mismatch"] and answer["log"]["seq"] == 3
    finding = findings(api, "log_mismatch")[0]
    assert finding["detail"]["seqs"] == [2] and finding["detail"]["evidence"] == [{"seq": 2, "key": other,
                                                                                  "fields": ["code"]}]


def test_an_online_entry_the_backend_judged_otherwise_on_sync_is_no_mismatch(api):
    # A backend restored from a backup lost an online redemption; the till sends it again and the backend,
    # which no longer knows its voucher, refuses it (a dispute). The till's log says what the till was told.
    till = api.enroll("Caja o")
    at = time.time() - 60
    key = new_key()
    entry = {"key": key, "at": at, "accepted": True, "reason": None, "kind": "printed", "voucher_id": "v",
             "jti": None, "code": "X", "method": "typed", "staff_id": None, "decided": "online", "input": "X"}
    result = api.ok(api.client.post("/sync", headers=till.auth, json={"entries": [entry]}))["results"][0]
    assert result["status"] == "recorded" and result.get("dispute") == "till_accepted", result
    log = FakeTillLog(till.id)
    log.add(1, key=key, at=at)
    assert send(api, till, log.body(0))["log"] == {"status": "ok", "seq": 1, "hash": log.records[0]["hash"],
                                                   "findings": []}
    log.add(1, key=key, at=at, code="Y")  # but a code other than the till synced still is one
    assert send(api, till, log.body(1))["log"]["findings"] == ["log_mismatch"]


def test_the_tills_self_check_is_named_in_findings(api):
    till = api.enroll("Caja t")
    log = FakeTillLog(till.id)
    log.add(3)
    tampered = [{"seq": 2, "key": json.loads(log.records[1]["body"])[1], "problem": "row_missing",
                 "detail": "the attempt's row is gone"},
                {"seq": 3, "key": "k3", "problem": "row_changed", "detail": "at: 1 != 2"},
                {"seq": 1, "problem": "chain_missing", "detail": "record 1 is gone from log_chain"}]
    answer = send(api, till, log.body(0, tampered=tampered))
    assert set(answer["log"]["findings"]) == {"log_row_missing", "log_row_changed", "log_chain_missing"}
    assert findings(api, "log_row_missing")[0]["detail"]["seqs"] == [2]


def test_a_web_till_keeps_no_log(api):
    till = api.enroll("Caja w")
    api.execute("UPDATE devices SET kind = 'web' WHERE id = '%s'" % till.id)
    log = FakeTillLog(till.id)
    log.add(1)
    assert send(api, till, log.body(0), 403)["error"]["code"] == "not_a_till"


HOSTILE = [
    ("garbage", None, None),
    ("not an object", [], "wrong_type"),
    ("a text", "records", "wrong_type"),
    ("head not an object", {"head": [0, "0" * 64, "x"]}, "wrong_type"),
    ("a public key of a number", {"public_key": 44}, "wrong_type"),
    ("an oversize key", {"public_key": "A" * 45}, None),
    ("tampered not a list", {"tampered": "row_missing"}, "wrong_type"),
    ("a body not a text", {"records": [{"seq": 1, "body": ["attempt"], "hash": "0" * 64}]}, "invalid_value"),
    ("unknown field", {"x": 1}, None),
    ("records not a list", {"records": {}}, "wrong_type"),
    ("too many records", {"records": [{"seq": 1, "body": "[]", "hash": "0" * 64}] * 1001}, "invalid_value"),
    ("a record of other fields", {"records": [{"seq": 1, "body": "[]"}]}, "invalid_value"),
    ("a seq of 0", {"records": [{"seq": 0, "body": "[\"attempt\"]", "hash": "0" * 64}]}, "invalid_value"),
    ("a bool seq", {"records": [{"seq": True, "body": "[]", "hash": "0" * 64}]}, "invalid_value"),
    ("a hash not hex", {"records": [{"seq": 1, "body": "[]", "hash": "g" * 64}]}, "invalid_value"),
    ("an oversize body", {"records": [{"seq": 1, "body": "[" + "1," * 3000 + "1]", "hash": "0" * 64}]},
     "invalid_value"),
    ("after negative", {"after": -1}, "invalid_value"),
    ("after a float", {"after": 1.5}, "wrong_type"),
    ("after NaN", {"after": float("nan")}, None),
    ("a key not a key", {"public_key": "🧉" * 44}, "invalid_value"),
    ("a head of other fields", {"head": {"seq": 1}}, "invalid_value"),
    ("a huge signature", {"head": {"seq": 0, "hash": "0" * 64, "sig": "A" * 5000}}, "invalid_value"),
    ("tampered of an unknown problem", {"tampered": [{"seq": 1, "key": "k", "problem": "boom"}]}, "invalid_value"),
    ("tampered with a NUL", {"tampered": [{"seq": 1, "key": "k\x00", "problem": "row_missing"}]}, "invalid_value"),
    ("too many tampered", {"tampered": [{"seq": 1, "problem": "row_missing"}] * 101}, "invalid_value"),
]


@pytest.mark.parametrize("name, change, code", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_bodies_are_refused_and_nothing_is_written(api, name, change, code):
    till = api.enroll("Caja h")
    log = FakeTillLog(till.id)
    log.add(1)
    body = change if not isinstance(change, dict) or not change or "x" in change else {**log.body(0), **change}
    if name == "unknown field":
        body = {**log.body(0), **change}
    if name == "garbage":
        answer = api.client.post("/till-log", headers={**till.auth, "Content-Type": "application/json"},
                                 content=b"\xff\xfe{garbage")
    elif name == "after NaN":
        answer = api.client.post("/till-log", headers={**till.auth, "Content-Type": "application/json"},
                                 content=json.dumps(log.body(0)).replace('"after": 0', '"after": NaN').encode())
    else:
        answer = api.client.post("/till-log", headers=till.auth, json=body)
    assert answer.status_code == 400, answer.text
    if code is not None:
        assert answer.json()["error"]["code"] == code
    assert held(api, till) == (0, 0) and findings(api) == []
    assert api.rows("SELECT log_key FROM devices WHERE id = ?", (till.id,))[0][0] is None


def test_an_odd_unicode_body_is_a_malformed_record_named_not_a_crash(api):
    till = api.enroll("Caja u")
    log = FakeTillLog(till.id)
    body = json.dumps(["attempt", "k\u202e", 1.8e9, "accepted", None, None, None, None, "\udc80x", "typed", None,
                       "offline", "d", "s", "t", None], ensure_ascii=True)
    log.records = [{"seq": 1, "body": body, "hash": till_log.link(till_log.GENESIS, body)}]
    answer = send(api, till, log.body(0))
    assert answer["log"]["seq"] in (0, 1)  # kept only if it is of the log's shape


def test_another_retailers_till_cannot_touch_this_log(api):
    till = api.enroll("Caja o")
    log = FakeTillLog(till.id)
    log.add(2)
    send(api, till, log.body(0))
    retailer = api.ok(api.client.post("/retailers", headers=api.admin, json={"name": "Otra"}), 201)
    store = api.ok(api.client.post("/stores", headers=api.admin, json={"retailer_id": retailer["id"], "name": "O"}),
                   201)
    code = api.ok(api.client.post("/enrollment-codes", headers=api.admin, json={"store_id": store["id"]}), 201)["code"]
    other = api.ok(api.client.post("/devices/enroll", json={"code": code, "name": "Ajena"}), 201)
    rewind = log.body(2, [], head={"seq": 0, "hash": till_log.GENESIS, "sig": "x"})
    answer = api.client.post("/till-log", headers={"Authorization": f"Bearer {other['device_token']}"}, json=rewind)
    assert answer.status_code == 200 and held(api, till) == (2, 2)  # its own (empty) log, not this one
    assert all(f["device_id"] != till.id for f in findings(api))


def test_verify_till_log_checks_the_whole_copy_and_an_export(api, engine):
    till = api.enroll("Caja v")
    log = FakeTillLog(till.id)
    log.add(6)
    send(api, till, log.body(0))
    api.close()
    command = [sys.executable, "-m", "server_stub", "verify-till-log", "--data", str(api.path)]
    done = subprocess.run([*command, till.id], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True and json.loads(done.stdout)["records"] == 6
    export = {"format": "pika-till-log/1", "device_id": till.id, "public_key": log.public_key, "after": 2,
              "prev": log.records[1]["hash"], "records": log.records[2:5], "head": log.head(log.records[2:5])}
    path = api.path.parent / "export.json"
    path.write_text(json.dumps(export))
    assert subprocess.run([*command, "--file", str(path)], capture_output=True, timeout=60).returncode == 0
    export["records"][1] = dict(export["records"][1], body=export["records"][1]["body"].replace("Caja", "Cajb"))
    path.write_text(json.dumps(export))
    done = subprocess.run([*command, "--file", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and json.loads(done.stdout)["problems"][0]["seqs"] == [4]
    path.write_text("{not json")
    assert subprocess.run([*command, "--file", str(path)], capture_output=True, timeout=60).returncode == 2
    # A record of the backend's copy edited by hand in its database: named.
    body = log.records[3]["body"].replace("Caja", "Cajx")
    if engine == "sqlite":
        import sqlite3

        with sqlite3.connect(api.db_path) as db:
            db.execute("UPDATE till_log SET body = ? WHERE device_id = ? AND seq = 4", (body, till.id))
    else:
        import psycopg

        with psycopg.connect(api.database) as db:
            db.execute("UPDATE till_log SET body = %s WHERE device_id = %s AND seq = 4", (body, till.id))
    done = subprocess.run([*command, till.id], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout
    assert json.loads(done.stdout)["problems"][0] == {"code": "log_edited", "seqs": [4],
                                                      "message": "record 4 was changed after it was chained"}
