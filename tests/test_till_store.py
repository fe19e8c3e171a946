"""The till store against real SQLite files: verdicts recorded atomically,
the catalog and feed applied whole, the outbox and online attempts kept."""

from __future__ import annotations

import copy
import json
import sqlite3
import threading

import pytest

from pos_app.core import codes, pins, tokens
from pos_app.core.domain import Reason, UsedToken, Verdict
from pos_app.store import TillStore
from pos_app.store.schema import MIGRATIONS
from pos_app.core.wire import ENTRY_FIELDS

NOW = 1_760_000_000  # 2025-10-09 05:53 in Asunción
DAY = 86_400
RETAILER = "ret-1"
STORE = "store-1"
TILL = "Till 1"


@pytest.fixture(scope="module")
def key():
    return tokens.generate_private_key()


@pytest.fixture(scope="module")
def pin_hash():
    return pins.hash_pin("4321")


@pytest.fixture(scope="module")
def short_code():
    return codes.new_short_code()


def voucher_json(vid: str, kind: str, **overrides) -> dict:
    data = {
        "id": vid, "retailer_id": RETAILER, "kind": kind, "status": "published",
        "discount": {"kind": "percent", "value": 10, "currency": "PYG"},
        "texts": {"es": {"title": f"Oferta {vid}"}}, "valid_from": NOW - 30 * DAY,
        "valid_until": NOW + 30 * DAY, "total_limit": None, "store_day_limit": None,
        "retailer_name": "Café Pika",
    }
    data.update(overrides)
    return data


@pytest.fixture
def catalog(key, pin_hash, short_code) -> dict:
    return {
        "retailer": {"id": RETAILER, "name": "Café Pika"},
        "store": {"id": STORE, "name": "Centro", "timezone": "America/Asuncion"},
        "keys": [{"kid": tokens.key_id(key.public_key()), "pem": tokens.public_pem(key.public_key())}],
        "vouchers": [
            voucher_json("v-app", "personal"),
            voucher_json("v-print", "printed", store_day_limit=2, total_limit=3),
            voucher_json("v-free", "printed"),
        ],
        "printed_codes": [{"code": "COFFEE10", "voucher_id": "v-print"},
                          {"code": "FREE5", "voucher_id": "v-free"}],
        "claims": [{"code_digest": codes.claim_digest(short_code, RETAILER), "jti": "jti-claim", "voucher_id": "v-app",
                    "expires_at": NOW + 3600}],
        "staff": [{"id": "st-1", "name": "Ana", "role": "cashier", "pin_hash": pin_hash,
                   "store_id": STORE}],
        "revoked": ["jti-revoked"],
        "server_time": NOW,
    }


def enrollment(key) -> dict:
    return {"device_id": "dev-1", "device_token": "secret-token", "retailer_id": RETAILER,
            "store_id": STORE, "keys": [{"kid": tokens.key_id(key.public_key()),
                                          "pem": tokens.public_pem(key.public_key())}],
            "server_time": NOW}


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "data" / "till.db"


@pytest.fixture
def store(db_path, key, catalog):
    with TillStore(db_path, device_name=TILL, asset_keys_dir=None) as till:
        till.save_enrollment(enrollment(key), "http://backend.test")
        till.apply_catalog(catalog)
        yield till


def personal(key, jti: str, vid: str = "v-app", **overrides) -> str:
    claims = dict(iss="pika", aud=RETAILER, sub="cust-1", vid=vid, jti=jti, iat=NOW - 10, exp=NOW + 600)
    claims.update(overrides)
    return tokens.issue_personal(key, **claims)


def static(key, code: str = "COFFEE10", vid: str = "v-print") -> str:
    return tokens.issue_static(key, iss="pika", aud=RETAILER, vid=vid, code=code,
                               iat=NOW - 10, exp=NOW + 30 * DAY)


def count(store: TillStore, table: str) -> int:
    return store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def dump(store: TillStore) -> dict:
    """Every user table's rows, to assert that nothing changed."""
    tables = [name for (name,) in store.db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    return {t: sorted(map(repr, store.db.execute(f"SELECT * FROM {t}").fetchall())) for t in tables}


# --- opening ------------------------------------------------------------------------


def test_durability_pragmas(store):
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_enrollment_and_catalog_facts(store):
    assert store.enrolled
    assert (store.device_id, store.device_name, store.retailer_id, store.store_id) == (
        "dev-1", TILL, RETAILER, STORE)
    assert store.store_timezone == "America/Asuncion"
    assert store.server_url == "http://backend.test"
    assert store.get("store_name") == "Centro"
    ctx = store.context(NOW)
    assert (ctx.retailer_id, ctx.store_id, ctx.day) == (RETAILER, STORE, "2025-10-09")
    assert len(ctx.trust) == 1


def test_a_new_store_is_not_enrolled(tmp_path):
    with TillStore(tmp_path / "new.db") as till:
        assert not till.enrolled
        assert till.store_timezone == "America/Asuncion"
        assert till.get("missing", 7) == 7
        till.set("ui", {"language": "gn"})
        assert till.get("ui") == {"language": "gn"}


def test_enrollment_keeps_the_name_the_till_enrolled_with(tmp_path, key):
    with TillStore(tmp_path / "till.db", device_name="fallback") as till:
        assert till.device_name == "fallback"
        till.save_enrollment(enrollment(key), "http://backend.test", name="Caja 2")
        assert till.device_name == "Caja 2" and till.device_token == "secret-token"
        with pytest.raises(ValueError):
            till.save_enrollment({"device_id": "dev-2"}, "http://backend.test")
        assert till.device_id == "dev-1"


def test_reopening_applies_no_migration_again(db_path, store):
    before = store.db.execute("SELECT version, name, applied_at FROM _migrations").fetchall()
    assert len(before) == len(MIGRATIONS)
    store.set("marker", [1, 2])
    store.close()
    with TillStore(db_path) as again:
        assert again.db.execute("SELECT version, name, applied_at FROM _migrations").fetchall() == before
        assert again.get("marker") == [1, 2]
        assert again.voucher("v-app") is not None


def test_another_thread_may_not_use_the_store(store, key):
    """A store belongs to the thread that opened it; sqlite enforces it."""
    errors = []

    def use():
        try:
            store.redeem_offline(personal(key, "jti-thread"), method="camera", now=NOW)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            errors.append(exc)

    worker = threading.Thread(target=use)
    worker.start()
    worker.join()
    assert len(errors) == 1 and isinstance(errors[0], sqlite3.ProgrammingError)
    assert count(store, "attempts") == 0


# --- redeeming offline -------------------------------------------------------------


def test_personal_token_accepted_once_then_already_redeemed(store, key):
    token = personal(key, "jti-1")
    verdict, attempt_id = store.redeem_offline(token, method="camera", staff_id="st-1", now=NOW)
    assert verdict.accepted and verdict.kind == "personal" and verdict.voucher.id == "v-app"

    again, again_id = store.redeem_offline(token, method="scanner", now=NOW + 90)
    assert not again.accepted and again.reason == Reason.ALREADY_REDEEMED
    assert again.used == UsedToken("jti-1", NOW, TILL, STORE)
    assert again_id != attempt_id

    first, second = store.attempts()
    assert (first["id"], first["accepted"], first["status"], first["decided"]) == (
        attempt_id, True, "accepted", "offline")
    assert first["staff_id"] == "st-1" and first["jti"] == "jti-1" and first["input"] == token
    assert (second["accepted"], second["reason"], second["status"]) == (
        False, Reason.ALREADY_REDEEMED, "refused")
    assert Verdict.from_json(second["verdict"]) == again

    entries = store.outbox_batch()
    assert [e["key"] for e in entries] == [first["key"], second["key"]]
    assert set(entries[0]) == set(ENTRY_FIELDS)
    assert entries[0] == {"key": first["key"], "at": NOW, "accepted": True, "reason": None,
                          "kind": "personal", "voucher_id": "v-app", "jti": "jti-1", "code": None,
                          "method": "camera", "staff_id": "st-1", "decided": "offline", "input": token}
    assert entries[1]["reason"] == Reason.ALREADY_REDEEMED and not entries[1]["accepted"]


def test_short_code_and_its_token_share_one_use(store, key, short_code):
    typed = codes.format_short_code(short_code).lower()
    verdict, _ = store.redeem_offline(typed, method="typed", now=NOW)
    assert verdict.accepted and verdict.source == "short_code" and verdict.jti == "jti-claim"
    verdict, _ = store.redeem_offline(personal(key, "jti-claim"), method="camera", now=NOW + 1)
    assert verdict.reason == Reason.ALREADY_REDEEMED


def test_catalog_revocation_is_refused(store, key):
    verdict, _ = store.redeem_offline(personal(key, "jti-revoked"), method="camera", now=NOW)
    assert verdict.reason == Reason.REVOKED


def test_record_is_one_transaction(store, key):
    """If the outbox entry cannot be written, neither is the attempt nor the used jti."""
    store.db.execute("CREATE TRIGGER no_outbox BEFORE INSERT ON outbox"
                     " BEGIN SELECT RAISE(ABORT, 'outbox refused'); END")
    token = personal(key, "jti-atomic")
    with pytest.raises(sqlite3.IntegrityError, match="outbox refused"):
        store.redeem_offline(token, method="camera", now=NOW)
    with pytest.raises(sqlite3.IntegrityError):
        store.redeem_offline("COFFEE10", method="printed", now=NOW)
    assert count(store, "attempts") == count(store, "used_tokens") == count(store, "printed_uses") == 0
    assert not store.db.conn.in_transaction

    store.db.execute("DROP TRIGGER no_outbox")
    verdict, _ = store.redeem_offline(token, method="camera", now=NOW)
    assert verdict.accepted


def test_full_disk_raises_and_leaves_nothing_half_written(store):
    store.redeem_offline("warm-up", method="typed", now=NOW)
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(sqlite3.OperationalError, match="full"):
        for i in range(200):
            store.redeem_offline("X" * 4000 + str(i), method="typed", now=NOW + i)
    assert not store.db.conn.in_transaction
    assert count(store, "attempts") == count(store, "outbox")


@pytest.mark.parametrize("garbage", [
    "A" * 100_000,
    b"\xff\xfe\x00 not utf-8 \xc3",
    b"B" * 100_000,
    "🎟️ CAFÉ 🎉",
    "",
    "\x00\x1b[2J",
    "\ud800 lone surrogate",
    "eyJhbGciOiJub25lIn0.eyJ4IjoxfQ.",
])
def test_garbage_is_a_recorded_refusal(store, garbage):
    verdict, attempt_id = store.redeem_offline(garbage, method="scanner", now=NOW)
    assert not verdict.accepted and verdict.reason in Reason.ALL
    (attempt,) = store.attempts()
    assert attempt["id"] == attempt_id and attempt["accepted"] is False
    assert len(attempt["input"]) <= 4 * 4096
    assert store.outbox_size() == 1


def test_unknown_method_is_a_programming_error(store):
    with pytest.raises(ValueError):
        store.redeem_offline("COFFEE10", method="telepathy", now=NOW)


# --- printed codes ------------------------------------------------------------------


def test_printed_code_counts_and_per_store_day_limit(store, key):
    first, _ = store.redeem_offline("coffee 10", method="printed", now=NOW)
    assert first.accepted and first.kind == "printed" and first.code == "COFFEE10"
    second, _ = store.redeem_offline(static(key), method="camera", now=NOW + 60)
    assert second.accepted and second.source == "static_token"
    assert store.printed_uses("v-print", STORE, "2025-10-09") == (2, 2)

    third, _ = store.redeem_offline("COFFEE10", method="printed", now=NOW + 120)
    assert third.reason == Reason.LIMIT_REACHED
    assert store.printed_uses("v-print", STORE, "2025-10-09") == (2, 2)

    tomorrow, _ = store.redeem_offline("COFFEE10", method="printed", now=NOW + DAY)
    assert tomorrow.accepted  # a new store day, and 3 of 3 in all
    assert store.printed_uses("v-print", STORE, "2025-10-10") == (1, 3)
    last, _ = store.redeem_offline("COFFEE10", method="printed", now=NOW + 2 * DAY)
    assert last.reason == Reason.LIMIT_REACHED
    assert count(store, "used_tokens") == 0  # printed codes have no one-time rule


def test_printed_only_entry_refuses_app_codes(store, key):
    verdict, _ = store.redeem_offline(personal(key, "jti-po"), method="printed", now=NOW,
                                      printed_only=True)
    assert verdict.reason == Reason.UNKNOWN_CODE
    assert store.used("jti-po") is None


def test_recent_accepts_counts_this_tills_accepted_attempts(store):
    store.redeem_offline("FREE5", method="printed", now=NOW)
    store.redeem_offline("FREE5", method="printed", now=NOW + 30)
    store.redeem_offline("NOPE99", method="printed", now=NOW + 40)
    assert store.recent_accepts(NOW - 60) == 2
    assert store.recent_accepts(NOW + 10) == 1
    assert store.recent_accepts(NOW + 31) == 0


def test_velocity_count_matches_the_attempts_table(db_path, store, monkeypatch):
    """The in-memory count of recent accepts agrees with SQL, however many there are."""
    from pos_app.store import uses
    monkeypatch.setattr(uses, "RECENT_KEPT", 2)

    def sql(since):
        return store.db.execute(
            "SELECT count(*) FROM attempts WHERE accepted = 1 AND at >= ?", (since,)).fetchone()[0]

    times = [NOW + t for t in (5, 1, 9, 9, 3, 12, 7)]  # fallbacks record out of order
    for at in times:
        store.redeem_offline("FREE5", method="printed", now=at)
    store.redeem_offline("NOPE1", method="printed", now=NOW + 8)
    probes = [NOW + t for t in (0, 1, 2, 6, 7, 9, 9.5, 12, 13)]
    assert [store.recent_accepts(p) for p in probes] == [sql(p) for p in probes]
    store.close()
    with TillStore(db_path) as again:
        store = again
        assert [again.recent_accepts(p) for p in probes] == [sql(p) for p in probes]


# --- catalog ------------------------------------------------------------------------


def _broken(catalog, path, value):
    broken = copy.deepcopy(catalog)
    target = broken
    for step in path[:-1]:
        target = target[step]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return broken


@pytest.mark.parametrize("path, value", [
    (("store", "id"), KeyError),
    (("store", "timezone"), "Mars/Olympus_Mons"),
    (("retailer",), "ret-1"),
    (("vouchers", 1, "kind"), "booklet"),
    (("vouchers", 0, "discount"), {"kind": "percent", "value": "ten"}),
    (("vouchers", 2, "valid_until"), "tomorrow"),
    (("vouchers", 2, "texts"), {"es": "Oferta"}),
    (("keys", 0, "pem"), "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n"),
    (("claims",), {"short_code": "X"}),
    (("claims", 0, "code_digest"), "ABCD-EFGH-J"),  # a code itself, never a digest
    (("claims", 0, "expires_at"), None),
    (("staff", 0, "pin_hash"), KeyError),
    (("printed_codes", 0), ["COFFEE10", "v-print"]),
    (("revoked",), [None]),
])
def test_malformed_catalog_changes_nothing(store, catalog, path, value):
    before = dump(store)
    broken = _broken(catalog, path, value)
    broken["vouchers"][0]["status"] = "unpublished"  # a change that must not land
    with pytest.raises(ValueError):
        store.apply_catalog(broken)
    assert dump(store) == before
    assert store.voucher("v-app").status == "published"


def test_catalog_of_another_store_is_refused(store, catalog):
    with pytest.raises(ValueError, match="another store"):
        store.apply_catalog(_broken(catalog, ("store", "id"), "store-9"))


def test_catalog_replaces_the_previous_one(store, catalog, key):
    newer = copy.deepcopy(catalog)
    newer["vouchers"] = [voucher_json("v-app", "personal", status="revoked")]
    newer["printed_codes"], newer["revoked"] = [], []
    store.apply_catalog(newer)
    assert store.printed_voucher("COFFEE10") is None
    assert store.voucher("v-print") is None
    assert not store.revoked("jti-revoked")
    verdict, _ = store.redeem_offline(personal(key, "jti-x"), method="camera", now=NOW)
    assert verdict.reason == Reason.REVOKED


@pytest.mark.allow_log_warnings(r"^ignoring unusable key file .*broken\.pem$")
def test_key_rotation_and_bundled_keys(tmp_path, key, catalog):
    rotated, bundled = tokens.generate_private_key(), tokens.generate_private_key()
    assets = tmp_path / "keys"
    assets.mkdir()
    (assets / "bundled.pem").write_text(tokens.public_pem(bundled.public_key()))
    (assets / "broken.pem").write_text("not a key")
    with TillStore(tmp_path / "till.db", asset_keys_dir=assets) as till:
        till.apply_catalog(catalog)
        assert len(till.trust_set()) == 2
        verdict, _ = till.redeem_offline(personal(bundled, "jti-b"), method="camera", now=NOW)
        assert verdict.accepted
        verdict, _ = till.redeem_offline(personal(rotated, "jti-r"), method="camera", now=NOW)
        assert verdict.reason == Reason.UNKNOWN_KEY

        catalog = copy.deepcopy(catalog)
        catalog["keys"].append({"kid": tokens.key_id(rotated.public_key()),
                                "pem": tokens.public_pem(rotated.public_key())})
        till.apply_catalog(catalog)
        verdict, _ = till.redeem_offline(personal(rotated, "jti-r"), method="camera", now=NOW)
        assert verdict.accepted


# --- feed ---------------------------------------------------------------------------


def feed_events() -> list[dict]:
    return [
        {"seq": 11, "type": "redemption", "at": NOW - 50, "data": {
            "jti": "jti-elsewhere", "voucher_id": "v-app", "kind": "personal", "code": None,
            "store_id": "store-2", "till": "Till 2", "at": NOW - 50}},
        {"seq": 12, "type": "redemption", "at": NOW - 40, "data": {
            "jti": None, "voucher_id": "v-print", "kind": "printed", "code": "COFFEE10",
            "store_id": STORE, "till": "Till 3", "at": NOW - 40}},
        {"seq": 13, "type": "revocation", "at": NOW - 30, "data": {"jti": "jti-withdrawn"}},
        {"seq": 14, "type": "voucher", "at": NOW - 20,
         "data": voucher_json("v-free", "printed", status="unpublished")},
        {"seq": 15, "type": "hologram", "at": NOW - 10, "data": {"anything": True}},
        {"seq": 16, "type": "printed_code", "at": NOW - 5,
         "data": {"code": "TEA2", "voucher_id": "v-print"}},
    ]


def test_feed_shares_other_tills_state(store, key):
    store.apply_feed(feed_events(), 16)

    verdict, _ = store.redeem_offline(personal(key, "jti-elsewhere"), method="camera", now=NOW)
    assert verdict.reason == Reason.ALREADY_REDEEMED
    assert verdict.used == UsedToken("jti-elsewhere", NOW - 50, "Till 2", "store-2")
    verdict, _ = store.redeem_offline(personal(key, "jti-withdrawn"), method="camera", now=NOW)
    assert verdict.reason == Reason.REVOKED
    verdict, _ = store.redeem_offline("FREE5", method="printed", now=NOW)
    assert verdict.reason == Reason.UNPUBLISHED
    assert store.printed_voucher("TEA2").id == "v-print"
    assert store.printed_uses("v-print", STORE, "2025-10-09") == (1, 1)
    verdict, _ = store.redeem_offline("TEA2", method="printed", now=NOW)
    assert verdict.accepted
    verdict, _ = store.redeem_offline("COFFEE10", method="printed", now=NOW)
    assert verdict.reason == Reason.LIMIT_REACHED  # Till 3's use counts towards today's 2


def test_feed_is_idempotent(store):
    store.apply_feed(feed_events(), 16)
    once = dump(store)
    store.apply_feed(feed_events(), 16)
    assert dump(store) == once
    assert store.printed_uses("v-print", STORE, "2025-10-09") == (1, 1)


def test_malformed_feed_applies_nothing(store):
    before = dump(store)
    events = feed_events()
    del events[3]["seq"]  # a page the till cannot even name an event of (a bad event alone is parked)
    with pytest.raises(ValueError):
        store.apply_feed(events, 16)
    assert dump(store) == before
    assert store.feed_cursor == 0


def test_feed_cursor_and_changes_survive_reopening(db_path, store):
    store.apply_feed(feed_events(), 42)
    assert store.feed_cursor == 42
    store.close()
    with TillStore(db_path) as again:
        assert again.feed_cursor == 42
        assert again.voucher("v-free").status == "unpublished"
        assert again.revoked("jti-withdrawn")
        assert again.used("jti-elsewhere").till == "Till 2"


# --- outbox -------------------------------------------------------------------------


@pytest.mark.allow_log_warnings(r"^sync result 'mystery' for '\w+' left in the outbox$")
def test_outbox_fifo_batches_confirm_and_park(store, key):
    for i in range(5):
        store.redeem_offline(f"NOPE{i}", method="typed", now=NOW + i)
    keys = [a["key"] for a in store.attempts()]
    assert [e["key"] for e in store.outbox_batch(limit=2)] == keys[:2]
    assert [e["key"] for e in store.outbox_batch()] == keys

    store.outbox_confirm([{"key": keys[0], "status": "recorded"},
                          {"key": keys[1], "status": "duplicate"},
                          {"key": keys[2], "status": "mystery"}])
    assert [e["key"] for e in store.outbox_batch()] == keys[2:]

    store.outbox_park(keys[2], "invalid_value")
    store.outbox_note_failure(keys[3:], "timeout")
    store.outbox_note_failure(keys[3:4], "HTTP 503")
    assert [e["key"] for e in store.outbox_batch()] == keys[3:]
    assert store.outbox_size() == 2
    (parked,) = store.parked()
    assert parked["key"] == keys[2] and parked["parked_reason"] == "invalid_value"
    assert parked["payload"]["key"] == keys[2]
    tries = dict(store.db.execute("SELECT key, tries FROM outbox WHERE tries > 0").fetchall())
    assert tries == {keys[3]: 2, keys[4]: 1}
    assert store.stats() == {"outbox": 2, "parked": 1, "pending_online": 0, "conflicts": 0,
                             "last_sync": None}


def test_conflict_is_kept_marked_and_reconciled(store, key):
    verdict, attempt_id = store.redeem_offline(personal(key, "jti-c"), method="camera", now=NOW)
    assert verdict.accepted
    (entry,) = store.outbox_batch()
    winner = {"jti": "jti-c", "at": NOW - 5, "till": "Till 2", "store_id": "store-2"}
    store.outbox_confirm([{"key": entry["key"], "status": "conflict", "winner": winner}])
    assert store.outbox_size() == 0
    (attempt,) = store.attempts()
    assert (attempt["id"], attempt["status"], attempt["conflict"]) == (attempt_id, "conflict", winner)
    assert attempt["accepted"] is True  # the cashier gave the discount; reports show it
    assert store.used("jti-c") == UsedToken(**winner)
    assert store.stats()["conflicts"] == 1


# --- online -------------------------------------------------------------------------


def test_pending_online_survives_reopen_and_is_finished(db_path, store, key):
    token = personal(key, "jti-on")
    idem = store.begin_online(token, method="camera", staff_id="st-1", now=NOW)
    store.close()
    with TillStore(db_path, device_name=TILL) as again:
        assert again.pending_online() == [
            {"key": idem, "input": token, "method": "camera", "staff_id": "st-1", "at": NOW}]
        assert again.stats()["pending_online"] == 1
        answer = Verdict(accepted=True, reason=None, kind="personal", source="token",
                         voucher=again.voucher("v-app"), jti="jti-on", message="accepted")
        attempt_id = again.finish_online(idem, answer, now=NOW + 1)
        assert again.pending_online() == []
        (attempt,) = again.attempts()
        assert (attempt["id"], attempt["decided"], attempt["status"], attempt["at"]) == (
            attempt_id, "online", "accepted", NOW)
        assert again.outbox_size() == 0  # the backend has it already
        assert again.used("jti-on") == UsedToken("jti-on", NOW, TILL, STORE)
        assert again.finish_online(idem, answer) == attempt_id
        with pytest.raises(KeyError):
            again.finish_online("no-such-key", answer)


def test_online_refusal_teaches_the_till(store, key):
    idem = store.begin_online(personal(key, "jti-seen"), method="camera", now=NOW)
    answer = Verdict(accepted=False, reason=Reason.ALREADY_REDEEMED, kind="personal",
                     jti="jti-seen", used=UsedToken("jti-seen", NOW - 99, "Till 7", "store-3"))
    store.finish_online(idem, answer, now=NOW)
    assert store.used("jti-seen") == UsedToken("jti-seen", NOW - 99, "Till 7", "store-3")
    (attempt,) = store.attempts()
    assert attempt["status"] == "refused" and attempt["reason"] == Reason.ALREADY_REDEEMED


def test_online_printed_acceptance_counts(store):
    idem = store.begin_online("COFFEE10", method="printed", now=NOW)
    answer = Verdict(accepted=True, reason=None, kind="printed", source="printed_code",
                     voucher=store.voucher("v-print"), code="COFFEE10")
    store.finish_online(idem, answer, now=NOW)
    assert store.printed_uses("v-print", STORE, "2025-10-09") == (1, 1)


def test_offline_fallback_finishes_the_pending_attempt(db_path, store, key):
    token = personal(key, "jti-fb")
    idem = store.begin_online(token, method="scanner", now=NOW)
    store.close()
    with TillStore(db_path, device_name=TILL) as again:
        (pending,) = again.pending_online()
        verdict, attempt_id = again.redeem_offline(pending["input"], method=pending["method"],
                                                   key=pending["key"], now=NOW + 8)
        assert verdict.accepted
        (attempt,) = again.attempts()
        assert (attempt["id"], attempt["key"], attempt["at"], attempt["decided"]) == (
            attempt_id, idem, NOW, "offline")
        (entry,) = again.outbox_batch()
        assert (entry["key"], entry["at"], entry["decided"]) == (idem, NOW, "offline")
        assert again.pending_online() == []

        # The same key again is a replay: same verdict, no second record.
        replay, replay_id = again.redeem_offline(token, method="scanner", key=idem, now=NOW + 9)
        assert (replay, replay_id) == (verdict, attempt_id)
        assert count(again, "attempts") == again.outbox_size() == 1


def test_idempotency_keys_are_checked(store):
    with pytest.raises(ValueError):
        store.redeem_offline("COFFEE10", method="printed", key="short", now=NOW)


# --- staff and reports --------------------------------------------------------------


def test_staff_pin(store):
    ana = {"id": "st-1", "name": "Ana", "role": "cashier", "store_id": STORE}
    assert store.staff_member("st-1") == ana
    assert store.check_staff_pin("st-1", "4321") == ana
    assert store.check_staff_pin("st-1", "1234") is None
    assert store.check_staff_pin("st-9", "4321") is None


def test_attempts_between_times(store):
    for i in range(4):
        store.redeem_offline("FREE5", method="printed", now=NOW + i * 3600)
    assert len(store.attempts()) == 4
    assert [a["at"] for a in store.attempts(since=NOW + 3600, until=NOW + 3 * 3600)] == [
        NOW + 3600, NOW + 2 * 3600]
    assert all(isinstance(a["verdict"], dict) for a in store.attempts())
    assert json.dumps(store.attempts())  # JSON-ready for reports


def test_the_window_reads_the_sync_engines_figures_as_the_file_holds_them_now(tmp_path):
    """The window's connection and the sync engine's share one file: the status bar's 'last sync'
    must not go back to what the window's connection saw when it opened (10:54 → 10:53 → 10:54)."""
    path = tmp_path / "till.db"
    with TillStore(path, device_name=TILL, asset_keys_dir=None) as engine:
        engine.note_sync_run(True, now=1_000.0)
        with TillStore(path, device_name=TILL, asset_keys_dir=None) as window:
            assert window.sync_figures()["last_sync"] == 1_000.0
            engine.note_sync_run(True, now=1_060.0)
            engine.note_sync_run(False, "timed out", now=1_090.0)
            engine.set("clock_skew_s", 4.5)
            figures = window.sync_figures()
            assert figures["last_sync"] == 1_060.0 and window.stats()["last_sync"] == 1_060.0
            assert figures["last_error"] == {"at": 1_090.0, "error": "timed out"}
            assert figures["clock_skew_s"] == 4.5
            assert figures["sync_runs"] == 3 and figures["sync_success_rate"] == round(2 / 3, 4)


def test_what_another_connection_applies_reaches_this_ones_verdicts(store, db_path, key, catalog):
    """The window decides on its connection's caches while the sync engine applies the feed and the catalog
    through its own: a claim revoked, a voucher withdrawn or a printed code added there counts here at once."""
    assert store.redeem_offline(personal(key, "jti-withdrawn"), method="camera", now=NOW)[0].accepted
    assert store.redeem_offline("TEA2", method="typed", now=NOW)[0].reason == Reason.UNKNOWN_CODE
    with TillStore(db_path, device_name=TILL, asset_keys_dir=None) as engine:
        engine.apply_feed([
            {"seq": 21, "type": "revocation", "at": NOW, "data": {"jti": "jti-later"}},
            {"seq": 22, "type": "printed_code", "at": NOW, "data": {"code": "TEA2", "voucher_id": "v-print"}}], 22)
    assert store.redeem_offline(personal(key, "jti-later"), method="camera", now=NOW)[0].reason == Reason.REVOKED
    assert store.redeem_offline("TEA2", method="typed", now=NOW)[0].accepted
    withdrawn = {**catalog, "vouchers": [v for v in catalog["vouchers"] if v["id"] != "v-app"]}
    with TillStore(db_path, device_name=TILL, asset_keys_dir=None) as engine:
        engine.apply_catalog(withdrawn)
    assert store.redeem_offline(personal(key, "jti-after"), method="camera", now=NOW)[0].reason \
        == Reason.UNKNOWN_CODE


def test_a_file_no_one_else_changed_keeps_the_caches(store, key):
    caches = store._vouchers
    store.redeem_offline(personal(key, "jti-a"), method="camera", now=NOW)
    store.redeem_offline(personal(key, "jti-b"), method="camera", now=NOW)
    assert store._vouchers is caches  # its own commits are no news: nothing was read again
