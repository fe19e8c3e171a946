"""The till's tamper-evident log in its store (pos_app/store/chain.py), on real SQLite files: one record in
the transaction of each attempt finished and each void made, one unbroken chain from two connections, a
self-check that finds each hand edit of the file made with plain sqlite3, and a chain that stays whole
through kill -9 of a real `python -m pos_app redeem --offline` process."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pos_app.core import pins, till_log, tokens
from pos_app.core.domain import Reason, Verdict
from pos_app.store import TillStore
from pos_app.store import chain

NOW = 1_760_000_000  # 2025-10-09 in Asunción
DAY = 86_400
RETAILER, STORE = "ret-1", "store-1"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def key():
    return tokens.generate_private_key()


@pytest.fixture(scope="module")
def pin_hash():
    return pins.hash_pin("4321")


def voucher_json(vid: str, kind: str, **overrides) -> dict:
    data = {"id": vid, "retailer_id": RETAILER, "kind": kind, "status": "published",
            "discount": {"kind": "percent", "value": 10, "currency": "PYG"},
            "texts": {"es": {"title": f"Oferta {vid}"}}, "valid_from": NOW - 30 * DAY,
            "valid_until": NOW + 30 * DAY, "total_limit": None, "store_day_limit": None, "retailer_name": "Café"}
    data.update(overrides)
    return data


def catalog_json(key, pin_hash) -> dict:
    return {"retailer": {"id": RETAILER, "name": "Café Pika"},
            "store": {"id": STORE, "name": "Centro", "timezone": "America/Asuncion"},
            "keys": [{"kid": tokens.key_id(key.public_key()), "pem": tokens.public_pem(key.public_key())}],
            "vouchers": [voucher_json("v-app", "personal"), voucher_json("v-print", "printed")],
            "printed_codes": [{"code": "COFFEE10", "voucher_id": "v-print"}], "claims": [],
            "staff": [{"id": "st-1", "name": "Ana", "role": "cashier", "pin_hash": pin_hash, "store_id": STORE},
                      {"id": "mg-1", "name": "Bea", "role": "manager", "pin_hash": pin_hash, "store_id": STORE}],
            "revoked": [], "server_time": NOW}


def enrollment_json(key, device_id: str = "dev-1") -> dict:
    return {"device_id": device_id, "device_token": "secret-token", "retailer_id": RETAILER, "store_id": STORE,
            "keys": [{"kid": tokens.key_id(key.public_key()), "pem": tokens.public_pem(key.public_key())}],
            "server_time": NOW}


def make_store(path: Path, key, pin_hash, *, log_private_key: str | None = None) -> TillStore:
    """An enrolled till with a catalog, in the data folder `path`."""
    store = TillStore(path / "till.sqlite3", device_name="Caja 1", asset_keys_dir=None)
    store.save_enrollment(enrollment_json(key), "http://backend.test", log_private_key=log_private_key)
    store.apply_catalog(catalog_json(key, pin_hash))
    return store


def personal(key, jti: str) -> str:
    return tokens.issue_personal(key, iss="pika", aud=RETAILER, sub="cust-1", vid="v-app", jti=jti,
                                 iat=NOW - 10, exp=NOW + 600)


def fill(store: TillStore, key, n: int = 6) -> dict:
    """Records of each kind: accepted and refused offline, online, a fallback of a pending one, a void."""
    keys = {}
    _, keys["accepted"] = _key_of(store, store.redeem_offline(personal(key, "j-1"), method="camera", now=NOW))
    _, keys["refused"] = _key_of(store, store.redeem_offline("garbage ✓ \x00", method="typed", now=NOW + 1))
    online = store.begin_online("COFFEE10", method="printed", staff_id="st-1", now=NOW + 2)
    store.finish_online(online, Verdict(accepted=True, reason=None, kind="printed", code="COFFEE10",
                                        source="printed_code"), now=NOW + 3)
    keys["online"] = online
    fallback = store.begin_online(personal(key, "j-2"), method="camera", now=NOW + 4)
    store.redeem_offline(personal(key, "j-2"), method="camera", key=fallback, now=NOW + 6)
    keys["fallback"] = fallback
    keys["void"] = store.void(keys["accepted"], reason="cliente se arrepintió", staff_id="mg-1", now=NOW + 7)["id"]
    for i in range(n):
        store.redeem_offline(f"more {i}", method="typed", now=NOW + 10 + i)
    return keys


def _key_of(store: TillStore, result) -> tuple[Verdict, str]:
    verdict, attempt_id = result
    return verdict, store.conn.execute("SELECT key FROM attempts WHERE id = ?", (attempt_id,)).fetchone()[0]


def chain_rows(path: Path) -> list[dict]:
    conn = sqlite3.connect(path)
    try:
        return [{"seq": seq, "body": body, "hash": hash_, "key": key}
                for seq, key, body, hash_ in conn.execute("SELECT seq, key, body, hash FROM log_chain ORDER BY seq")]
    finally:
        conn.close()


def hand_edit(path: Path, sql: str, params=()) -> None:
    """What someone with the PC and the sqlite3 shell does: no pragmas, no till code."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(sql) if not params else conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


@pytest.fixture
def store(tmp_path, key, pin_hash):
    with make_store(tmp_path, key, pin_hash) as till:
        yield till


# --- appending ------------------------------------------------------------------------


ODD_FIELDS = ["", "CAFE50", "ñandú", "日本語", "🎟️", "a\u0000b", "tab\tnl\n", 'quote " back \\', "\u2028\u2029",
              "\u202egnp", "\ud800", "\x7f\x85", "x" * 600, None]


@pytest.mark.parametrize("text", ODD_FIELDS)
@pytest.mark.parametrize("at", [0.0, 1_760_000_000.123456, 1e-7, 2.0 ** 53, 1 / 3])
def test_a_body_is_the_text_json_gives_its_fields_in_order(text, at):
    # The encoder made once (till_log._encode_array) must write what the format's JSON says: a body's hash
    # is over its text, checked by the backend and by anyone holding an export.
    fields = dict(key="k" * 32, at=at, status="accepted", reason=text, kind="printed", voucher_id=text,
                  jti=None, code=text, method="typed", staff_id=text, decided="offline", day="2026-01-01",
                  store_id=STORE, till=text or "Caja", input_text=text)
    digest = None if text is None else till_log.input_digest(text)
    values = ["attempt", fields["key"], at, "accepted", text, "printed", text, None, text, "typed", text,
              "offline", "2026-01-01", STORE, text or "Caja", digest]
    expected = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    assert till_log.attempt_body(**fields) == expected
    assert till_log.attempt_body(**fields, input_sha=digest) == expected
    void = ["void", "v" * 32, at, "k" * 32, text, text, STORE, "Caja"]
    assert till_log.void_body(key="v" * 32, at=at, redemption_key="k" * 32, reason=text, staff_id=text,
                              store_id=STORE, till="Caja") == json.dumps(void, ensure_ascii=False,
                                                                         separators=(",", ":"))


def test_a_body_refuses_a_field_that_is_not_text_number_or_null():
    with pytest.raises(TypeError, match="not bytes"):
        till_log.void_body(key="v", at=1.0, redemption_key=b"k", reason="r", staff_id=None, store_id=STORE,
                           till="Caja")


def test_each_finished_attempt_and_each_void_made_here_is_one_chained_record(store, key):
    keys = fill(store, key, n=2)
    store.abandon_pending(store.begin_online("never answered", method="typed", now=NOW + 20))
    store.apply_feed([{"seq": 1, "type": "void", "data": {"id": "v-feed", "redemption_key": keys["online"],
                                                          "reason": "at the backend", "at": NOW + 30}}], 1)
    rows = chain_rows(store.path)
    done = [k for (k,) in store.conn.execute("SELECT key FROM attempts WHERE state = 'done'")]
    assert sorted(r["key"] for r in rows if json.loads(r["body"])[0] == "attempt") == sorted(done)
    assert [r["key"] for r in rows if json.loads(r["body"])[0] == "void"] == [keys["void"]]  # not the feed's
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert till_log.verify_segment(rows) == []
    bodies = {r["key"]: till_log.parse_body(r["body"]) for r in rows}
    assert bodies[keys["accepted"]]["status"] == "accepted" and bodies[keys["accepted"]]["decided"] == "offline"
    assert bodies[keys["refused"]]["status"] == "refused" and bodies[keys["refused"]]["reason"] is not None
    assert bodies[keys["online"]]["decided"] == "online" and bodies[keys["online"]]["staff_id"] == "st-1"
    assert bodies[keys["fallback"]]["at"] == NOW + 4  # the scan's own time, as its row keeps it
    assert bodies[keys["void"]]["redemption_key"] == keys["accepted"]
    assert {b["till"] for b in bodies.values()} == {"Caja 1"} and {b["store_id"] for b in bodies.values()} == {STORE}
    assert bodies[keys["accepted"]]["day"] == "2025-10-09"
    # A finished attempt asked again is answered from its row: no second record.
    before = len(rows)
    store.redeem_offline(personal(key, "j-2"), method="camera", key=keys["fallback"], now=NOW + 40)
    store.finish_online(keys["online"], Verdict(accepted=False, reason=Reason.REVOKED), now=NOW + 41)
    assert len(chain_rows(store.path)) == before
    assert store.log_self_check(whole=True) == []


@pytest.mark.parametrize("table", ["log_chain", "outbox"])
def test_a_failure_mid_transaction_leaves_neither_the_record_nor_the_attempt(store, key, table):
    store.redeem_offline("warm-up", method="typed", now=NOW)
    online = store.begin_online("COFFEE10", method="printed", now=NOW + 1)
    tables = ("attempts", "outbox", "log_chain", "used_tokens", "printed_uses")
    before = {t: store.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    store.db.execute(f"CREATE TRIGGER refuse BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'refused'); END")
    with pytest.raises(sqlite3.IntegrityError, match="refused"):
        store.redeem_offline(personal(key, "j-atomic"), method="camera", now=NOW + 2)
    with pytest.raises(sqlite3.IntegrityError, match="refused"):
        store.redeem_offline("COFFEE10", method="printed", key=online, now=NOW + 3)  # the fallback of a pending one
    if table == "log_chain":  # an online answer writes no outbox entry, but its record
        with pytest.raises(sqlite3.IntegrityError, match="refused"):
            store.finish_online(online, Verdict(accepted=True, reason=None, kind="printed"), now=NOW + 4)
    assert not store.db.conn.in_transaction
    assert {t: store.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables} == before
    assert store.conn.execute("SELECT state FROM attempts WHERE key = ?", (online,)).fetchone()[0] == "pending"
    store.db.execute("DROP TRIGGER refuse")
    assert store.redeem_offline(personal(key, "j-atomic"), method="camera", now=NOW + 5)[0].accepted
    assert till_log.verify_segment(chain_rows(store.path)) == [] and store.log_self_check(whole=True) == []


def test_a_void_failing_mid_transaction_leaves_neither(store, key):
    _, accepted = _key_of(store, store.redeem_offline(personal(key, "j-v"), method="camera", now=NOW))
    store.db.execute("CREATE TRIGGER refuse BEFORE INSERT ON log_chain BEGIN SELECT RAISE(ABORT, 'refused'); END")
    with pytest.raises(sqlite3.IntegrityError, match="refused"):
        store.void(accepted, reason="wrong item", staff_id="mg-1", now=NOW + 1)
    assert store.voids() == [] and store.outbox_size() == 1  # the redemption's entry only
    store.db.execute("DROP TRIGGER refuse")
    store.void(accepted, reason="wrong item", staff_id="mg-1", now=NOW + 2)
    assert [json.loads(r["body"])[0] for r in chain_rows(store.path)] == ["attempt", "void"]


def test_two_connections_appending_alternately_keep_one_chain(tmp_path, key, pin_hash):
    window = make_store(tmp_path, key, pin_hash)
    engine = TillStore(window.path)  # the sync engine's own connection to the same file
    try:
        for i in range(40):
            (window if i % 2 else engine).redeem_offline(f"alternate {i}", method="typed", now=NOW + i)
        errors = []

        def hammer(path: Path, name: str) -> None:
            try:
                with TillStore(path) as own:
                    for i in range(60):
                        own.redeem_offline(f"{name} {i}", method="typed", now=NOW + 100 + i)
            except Exception as exc:  # noqa: BLE001 - said in the assertion
                errors.append(exc)

        threads = [threading.Thread(target=hammer, args=(window.path, f"thread {n}")) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        rows = chain_rows(window.path)
        assert len(rows) == 40 + 180 and [r["seq"] for r in rows] == list(range(1, 221))
        assert till_log.verify_segment(rows) == [] and window.log_self_check(whole=True) == []
        assert window.log_head() == engine.log_head() == (220, rows[-1]["hash"])
    finally:
        engine.close()
        window.close()


# --- the key and the head -------------------------------------------------------------------


def test_the_key_made_before_enrolling_is_the_one_kept_and_signing(tmp_path, key, pin_hash):
    fresh = TillStore(tmp_path / "till.sqlite3", asset_keys_dir=None)
    private = fresh.log_key_for_enrollment()
    assert fresh.stored(chain.LOG_KEY) == {}  # nothing kept before the backend enrolled it
    fresh.save_enrollment(enrollment_json(key), "http://b", log_private_key=private)
    assert fresh.log_key_for_enrollment() == private  # enrolled again (a roll): the same key
    public = fresh.log_public_key()
    assert public == till_log.public_key_of(private)
    fresh.redeem_offline("one", method="typed", now=NOW)
    head = fresh.signed_head()
    assert (head["seq"], head["hash"]) == fresh.log_head() and head["seq"] == 1
    assert till_log.head_signed(public, "dev-1", head["seq"], head["hash"], head["sig"])
    assert not till_log.head_signed(public, "dev-2", head["seq"], head["hash"], head["sig"])
    with TillStore(fresh.path) as reopened:
        assert reopened.log_public_key() == public
    fresh.close()


def test_a_till_enrolled_before_the_log_makes_one_key_once_for_both_connections(tmp_path, key, pin_hash):
    window = make_store(tmp_path, key, pin_hash)  # enrolled with no log key, as before this issue
    engine = TillStore(window.path)
    try:
        assert window.get(chain.LOG_KEY) is None
        first = engine.log_public_key()
        assert window.log_public_key() == first  # not a second key made by the other connection
        assert engine.log_public_key() == first
    finally:
        engine.close()
        window.close()


def test_log_since_and_head(store, key):
    assert store.log_head() == (0, till_log.GENESIS) and store.log_since(0) == []
    fill(store, key, n=3)
    rows = chain_rows(store.path)
    assert store.log_since(0, 4) == [{k: r[k] for k in ("seq", "body", "hash")} for r in rows[:4]]
    assert [r["seq"] for r in store.log_since(4, 1000)] == [r["seq"] for r in rows[4:]]
    assert store.log_acked() == 0
    store.note_log_acked(3)
    with TillStore(store.path) as other:
        assert other.log_acked() == 3


# --- the self-check ----------------------------------------------------------------------


def _swap(path: Path, a: int, b: int) -> None:
    hand_edit(path, f"UPDATE log_chain SET seq = -1 WHERE seq = {a}; UPDATE log_chain SET seq = {a} WHERE seq = {b};"
                    f" UPDATE log_chain SET seq = {b} WHERE seq = -1;")


EDITS = {
    "attempt deleted": (lambda p, k, s: hand_edit(p, "DELETE FROM attempts WHERE key = ?", (k["refused"],)),
                        [("refused", chain.ROW_MISSING)]),
    "attempt time changed": (lambda p, k, s: hand_edit(p, "UPDATE attempts SET at = at - 3600 WHERE key = ?",
                                                       (k["accepted"],)), [("accepted", chain.ROW_CHANGED)]),
    "attempt status changed": (lambda p, k, s: hand_edit(p, "UPDATE attempts SET status = 'accepted', accepted = 1"
                                                         " WHERE key = ?", (k["refused"],)),
                               [("refused", chain.ROW_CHANGED)]),
    "void deleted": (lambda p, k, s: hand_edit(p, "DELETE FROM voids WHERE id = ?", (k["void"],)),
                     [("void", chain.ROW_MISSING)]),
    "chain row deleted": (lambda p, k, s: hand_edit(p, "DELETE FROM log_chain WHERE seq = ?", (s["online"],)),
                          [("online", chain.CHAIN_MISSING)]),
    "chain body edited": (lambda p, k, s: hand_edit(p, "UPDATE log_chain SET body = replace(body, '\"refused\"',"
                                                    " '\"accepted\"') WHERE seq = ?", (s["refused"],)),
                          [("refused", chain.CHAIN_EDITED), ("refused", chain.ROW_CHANGED)]),
    "two chain rows swapped": (lambda p, k, s: _swap(p, s["refused"], s["online"]),
                               [("refused", chain.CHAIN_EDITED), ("online", chain.CHAIN_EDITED)]),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_the_self_check_finds_each_hand_edit_and_names_the_records(store, key, edit):
    keys = fill(store, key)
    seqs = {name: store.conn.execute("SELECT seq FROM log_chain WHERE key = ?", (k,)).fetchone()[0]
            for name, k in keys.items()}
    assert store.log_self_check(whole=True) == []
    change, expected = EDITS[edit]
    change(store.path, keys, seqs)
    found = store.log_self_check(whole=True)
    named = {(item["seq"], item["problem"]) for item in found}
    for name, problem in expected:
        assert (seqs[name], problem) in named, found
    for item in found:
        assert set(item) == {"seq", "key", "problem", "detail"} and item["detail"]
        if item["problem"] != chain.CHAIN_MISSING:
            assert item["key"] in keys.values() or item["problem"] == chain.CHAIN_EDITED
    if edit == "attempt time changed":
        assert "at:" in next(i["detail"] for i in found if i["problem"] == chain.ROW_CHANGED)
    # The records about to be sent are checked too, and a rotating window finds it over passes.
    assert {(i["seq"], i["problem"]) for i in store.log_self_check(after=0)} >= {
        (seqs[name], problem) for name, problem in expected}
    rotated = set()
    for n in range(6):
        rotated |= {(i["seq"], i["problem"]) for i in store.log_self_check(rotate=True, window=3,
                                                                              now=NOW + n * 60)}
    assert rotated >= {(seqs[name], problem) for name, problem in expected}


def test_the_self_check_takes_the_syncs_own_changes_as_no_edit(store, key):
    keys = fill(store, key, n=0)
    conflict_key = store.redeem_offline(personal(key, "j-c"), method="camera", now=NOW + 50)
    conflict_key = _key_of(store, conflict_key)[1]
    store.outbox_confirm([
        {"key": conflict_key, "status": "conflict", "winner": {"jti": "j-c", "at": NOW, "till": "T2"}},
        {"key": keys["accepted"], "status": "recorded", "dispute": "unproven", "reason": "not_found"},
        {"key": keys["void"], "status": "recorded", "verified": True}], now=NOW + 60)
    statuses = dict(store.conn.execute("SELECT key, status FROM attempts"))
    assert statuses[conflict_key] == "conflict" and statuses[keys["accepted"]] == "refused"
    assert store.log_self_check(whole=True) == []


def test_a_log_ending_before_what_the_backend_holds_is_named(store, key):
    fill(store, key, n=2)
    head, _ = store.log_head()
    hand_edit(store.path, "DELETE FROM log_chain WHERE seq >= ?", (head - 1,))
    found = store.log_self_check(after=head)
    assert [(i["seq"], i["problem"]) for i in found] == [(head - 1, chain.CHAIN_MISSING), (head, chain.CHAIN_MISSING)]


def test_the_rotating_check_covers_the_whole_chain_and_waits_between_passes(store, key):
    for i in range(25):
        store.redeem_offline(f"r {i}", method="typed", now=NOW + i)
    hand_edit(store.path, "UPDATE attempts SET staff_id = 'someone' WHERE at = ?", (NOW + 23,))
    assert store.log_self_check(rotate=True, window=10, now=NOW) == []  # 1..10
    assert store.log_self_check(rotate=True, window=10, now=NOW + 1) == []  # too soon: nothing checked
    assert store.log_self_check(rotate=True, window=10, now=NOW + 100) == []  # 11..20
    assert [i["seq"] for i in store.log_self_check(rotate=True, window=10, now=NOW + 200)] == [24]  # 21..25
    assert store.stored(chain.CHECK)[chain.CHECK]["cursor"] == 0  # round again from the start


# --- kill -9 -----------------------------------------------------------------------------------


REDEEM_LOOP = """
import sys, time
from pos_app.store import TillStore
store = TillStore(sys.argv[1])
i = 0
while True:
    store.redeem_offline(f"loop {sys.argv[2]} {i}", method="typed")
    if i % 7 == 3:
        key = store.begin_online("COFFEE10", method="printed")
        store.redeem_offline("COFFEE10", method="printed", key=key)
    i += 1
"""


def test_kill_9_mid_work_leaves_the_chain_whole_and_one_record_per_finished_attempt(tmp_path, key, pin_hash):
    store = make_store(tmp_path, key, pin_hash)
    store.close()
    path = tmp_path / "till.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for kill in range(8):
        # Two writers at once (a window and a sync engine's connection), both killed without warning.
        procs = [subprocess.Popen([sys.executable, "-c", REDEEM_LOOP, str(path), f"{kill}-{n}"], env=env,
                                  stderr=subprocess.PIPE) for n in range(2)]
        time.sleep(0.6 + 0.13 * kill)
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
        for proc in procs:
            _, err = proc.communicate(timeout=10)
            assert proc.returncode == -signal.SIGKILL, err.decode()
    with TillStore(path) as after:
        rows = chain_rows(path)
        assert len(rows) > 50
        assert till_log.verify_segment(rows) == []
        counts = dict(after.conn.execute("SELECT a.key, count(c.seq) FROM attempts a LEFT JOIN log_chain c"
                                         " ON c.key = a.key WHERE a.state = 'done' GROUP BY a.key"))
        assert counts and set(counts.values()) == {1}
        assert len(rows) == len(counts)  # and no record of an attempt that never finished
        assert after.log_self_check(whole=True) == []


# --- the till's report ----------------------------------------------------------------------


def test_parked_entries_are_counted_with_the_oldest(store):
    assert store.parked_unsynced() == (0, None)
    store.redeem_offline("one", method="typed", now=NOW)
    store.redeem_offline("two", method="typed", now=NOW + 5)
    keys = [k for (k,) in store.conn.execute("SELECT key FROM outbox ORDER BY seq")]
    store.outbox_park(keys[1], "400 invalid_value")
    assert store.parked_unsynced() == (1, NOW + 5)
