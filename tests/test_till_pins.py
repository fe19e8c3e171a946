"""PINs at the till, against real store files: the login slows down and locks after wrong PINs (and a restart
resets nothing), a short manager PIN is asked to change, and a void carries its manager's proof."""

from __future__ import annotations

import json
import secrets
import sqlite3

import pytest

from pos_app.core import pins, tokens, wire
from pos_app.store import TillStore
from pos_app.store.pin_lockout import FREE_TRIES, LOCK_AFTER, LOCK_S, LOCKED, MAX_WAIT_S, WAIT, WRONG

NOW = 1_760_000_000
RETAILER, STORE = "ret-1", "store-1"
CASHIER, MANAGER, ADMIN = "st-1", "st-2", "st-3"
PINS = {CASHIER: "4321", MANAGER: "2468", ADMIN: "135790"}  # the manager's is from before six digits


@pytest.fixture(scope="module")
def key():
    return tokens.generate_private_key()


@pytest.fixture(scope="module")
def hashes() -> dict:
    return {staff_id: pins.hash_pin(pin) for staff_id, pin in PINS.items()}


@pytest.fixture(scope="module")
def salt() -> str:
    return pins.new_proof_salt()


def catalog(key, hashes, salt) -> dict:
    pem = tokens.public_pem(key.public_key())
    voucher = {"id": "v-free", "retailer_id": RETAILER, "kind": "printed", "status": "published",
               "discount": {"kind": "percent", "value": 10, "currency": "PYG"}, "texts": {"es": {"title": "Café"}},
               "valid_from": NOW - 86_400, "valid_until": NOW + 86_400, "total_limit": None,
               "store_day_limit": None, "retailer_name": "Café Pika"}
    return {
        "retailer": {"id": RETAILER, "name": "Café Pika"},
        "store": {"id": STORE, "name": "Centro", "timezone": "America/Asuncion"},
        "keys": [{"kid": tokens.key_id(key.public_key()), "pem": pem}], "vouchers": [voucher],
        "printed_codes": [{"code": "FREE5", "voucher_id": "v-free"}], "claims": [], "revoked": [],
        "staff": [
            {"id": CASHIER, "name": "Ana", "role": "cashier", "pin_hash": hashes[CASHIER], "store_id": STORE},
            {"id": MANAGER, "name": "Bruno", "role": "manager", "pin_hash": hashes[MANAGER], "store_id": STORE,
             "proof_salt": salt},
            # A backend older than proofs sent no salt.
            {"id": ADMIN, "name": "Carla", "role": "admin", "pin_hash": hashes[ADMIN], "store_id": None},
        ],
        "server_time": NOW,
    }


@pytest.fixture
def path(tmp_path):
    return tmp_path / "till.db"


@pytest.fixture
def store(path, key, hashes, salt):
    with TillStore(path, asset_keys_dir=None) as till:
        till.save_enrollment({"device_id": "dev-1", "device_token": "t", "retailer_id": RETAILER,
                              "store_id": STORE, "keys": []}, "http://backend.test")
        till.apply_catalog(catalog(key, hashes, salt))
        yield till


def failures(path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT staff_id, failures FROM pin_failures ORDER BY staff_id").fetchall()
    finally:
        conn.close()


def wrong_until_locked(store, staff_id: str, start: float) -> float:
    """Wrong PINs for `staff_id`, each as soon as the lockout lets it be tried, until it locks; the last one's time."""
    at = start
    for n in range(1, LOCK_AFTER + 1):
        check = store.staff_login(staff_id, "0000", now=at)
        assert check.member is None and check.refused == (LOCKED if n == LOCK_AFTER else WRONG), (n, check)
        at += max(check.wait_s, 1)
    return at - max(check.wait_s, 1)


# --- the lockout --------------------------------------------------------------------


def test_three_wrong_pins_make_the_next_try_wait_even_with_the_right_pin(store, path):
    for n in range(FREE_TRIES - 1):
        check = store.staff_login(CASHIER, "0000", now=NOW + n)
        assert (check.member, check.refused, check.wait_s) == (None, WRONG, 0)
    third = store.staff_login(CASHIER, "9999", now=NOW + 2)
    assert (third.refused, third.retry_at, third.wait_s) == (WRONG, NOW + 4, 2)

    # While waiting, even the right PIN is refused, and nothing is counted: the PIN is not looked at.
    waiting = store.staff_login(CASHIER, PINS[CASHIER], now=NOW + 3)
    assert (waiting.member, waiting.refused, waiting.retry_at, waiting.wait_s) == (None, WAIT, NOW + 4, 1)
    assert store.check_staff_pin(CASHIER, PINS[CASHIER], now=NOW + 3.5) is None
    assert store.staff_login(CASHIER, "0000", now=NOW + 3.9).refused == WAIT
    assert failures(path) == [(CASHIER, 3)]

    # Each further wrong PIN doubles the wait.
    fourth = store.staff_login(CASHIER, "0000", now=NOW + 4)
    assert (fourth.refused, fourth.wait_s) == (WRONG, 4)
    assert store.staff_login(CASHIER, PINS[CASHIER], now=NOW + 7).refused == WAIT

    # The right PIN once the wait is over logs in and clears the count.
    logged_in = store.staff_login(CASHIER, PINS[CASHIER], now=NOW + 8)
    assert logged_in.member["id"] == CASHIER and logged_in.refused is None
    assert failures(path) == []
    assert store.staff_login(CASHIER, "0000", now=NOW + 8.5).wait_s == 0


def test_waits_are_capped_until_the_tenth_wrong_pin_locks_for_fifteen_minutes(store):
    waits, at = [], NOW
    for _ in range(LOCK_AFTER - 1):
        check = store.staff_login(MANAGER, "0000", now=at)
        waits.append(check.wait_s)
        at += max(check.wait_s, 1)
    assert waits == [0, 0, 2, 4, 8, 16, 32, MAX_WAIT_S, MAX_WAIT_S]
    locked = store.staff_login(MANAGER, "0000", now=at)
    assert (locked.refused, locked.retry_at) == (LOCKED, at + LOCK_S)
    assert store.staff_login(MANAGER, PINS[MANAGER], now=at + LOCK_S - 1).refused == LOCKED
    # Other staff log in all the same.
    assert store.check_staff_pin(CASHIER, PINS[CASHIER], now=at + 1)["id"] == CASHIER


def test_a_lock_survives_reopening_the_store(store, path, key, hashes, salt):
    last = wrong_until_locked(store, MANAGER, NOW)
    store.close()
    with TillStore(path, asset_keys_dir=None) as again:
        assert again.staff_login(MANAGER, PINS[MANAGER], now=last + 600).refused == LOCKED
        # A new catalog replaces the staff, not what they got wrong.
        again.apply_catalog(catalog(key, hashes, salt))
        assert again.staff_login(MANAGER, PINS[MANAGER], now=last + LOCK_S - 1).refused == LOCKED
        assert again.staff_login(MANAGER, PINS[MANAGER], now=last + LOCK_S).member["id"] == MANAGER
    assert failures(path) == []


def test_a_clock_set_back_does_not_lock_for_the_difference(store):
    ahead = NOW + 86_400
    last = wrong_until_locked(store, CASHIER, ahead)
    # Back at the right time (a day earlier): the lock lasts its own length from now, not a day more.
    assert store.staff_login(CASHIER, PINS[CASHIER], now=NOW).refused == LOCKED
    assert store.staff_login(CASHIER, PINS[CASHIER], now=NOW + LOCK_S).member["id"] == CASHIER
    assert last > NOW + LOCK_S


def test_random_unknown_ids_are_throttled_in_one_row(store, path):
    answers = [store.staff_login(secrets.token_hex(8), "1234", now=NOW + i * 100) for i in range(300)]
    assert all(a.member is None for a in answers)
    assert {staff_id for staff_id, _ in failures(path)} == {""}  # one row, however many ids were tried
    # Throttled like a real id: the ids share their count.
    hurried = [store.staff_login(secrets.token_hex(8), "1234", now=NOW + 40_000 + i / 2) for i in range(5)]
    assert [a.refused for a in hurried][FREE_TRIES:] == [WAIT, WAIT]
    # And a real staff member is not locked out by them.
    assert store.check_staff_pin(MANAGER, PINS[MANAGER], now=NOW + 40_010)["id"] == MANAGER


def test_old_wrong_pins_are_forgotten(store, path):
    for n in range(FREE_TRIES):
        store.staff_login(CASHIER, "0000", now=NOW + n)
    # An hour on, the morning's typos do not count against the afternoon.
    assert store.staff_login(CASHIER, "0000", now=NOW + 4000).wait_s == 0
    assert failures(path) == [(CASHIER, 1)]


# --- a short PIN asked to change ----------------------------------------------------


def test_a_manager_or_admin_with_a_short_pin_is_asked_to_change_it(store):
    assert store.staff_login(MANAGER, PINS[MANAGER], now=NOW).pin_change is True
    assert store.staff_login(ADMIN, PINS[ADMIN], now=NOW).pin_change is False  # six digits
    assert store.staff_login(CASHIER, PINS[CASHIER], now=NOW).pin_change is False  # four are enough


def test_a_changed_pin_works_here_at_once(store, path, salt):
    store.staff_login(MANAGER, "0000", now=NOW)
    new_salt = pins.new_proof_salt()
    store.own_pin_changed(MANAGER, "97531864", new_salt)
    assert store.check_staff_pin(MANAGER, PINS[MANAGER], now=NOW + 1) is None
    check = store.staff_login(MANAGER, "97531864", now=NOW + 2)
    assert check.member["id"] == MANAGER and not check.pin_change
    assert store.conn.execute("SELECT proof_salt FROM staff WHERE id = ?", (MANAGER,)).fetchone() == (new_salt,)
    # Without the backend's new salt the old one goes: it would make proofs of the old PIN.
    store.own_pin_changed(MANAGER, "86420975")
    assert store.conn.execute("SELECT proof_salt FROM staff WHERE id = ?", (MANAGER,)).fetchone() == (None,)


# --- a void's proof -----------------------------------------------------------------


def void_entry(store, staff_id: str, pin: str | None, reason: str = "  Cliente devolvió el café 🧉 ") -> dict:
    verdict, _ = store.redeem_offline("FREE5", method="printed", staff_id=CASHIER, now=NOW)
    assert verdict.accepted
    key = store.attempts()[-1]["key"]
    void = store.void(key, reason=reason, staff_id=staff_id, now=NOW + 60.25, pin=pin)
    (payload,) = [json.loads(p) for (p,) in store.conn.execute("SELECT payload FROM outbox WHERE key = ?",
                                                                (void["id"],))]
    assert wire.is_outbox_entry(payload)
    return payload


def test_a_void_carries_a_proof_made_with_the_managers_pin(store, salt):
    entry = void_entry(store, MANAGER, PINS[MANAGER])
    assert entry["void_reason"] == "Cliente devolvió el café 🧉"
    fields = dict(void_key=entry["key"], redemption_key=entry["redemption_key"], staff_id=MANAGER,
                  at=entry["at"], reason=entry["void_reason"])
    # The backend's check, with the key it holds (derived from the same PIN and salt) and the entry as sent.
    sent = json.loads(json.dumps(entry))
    assert pins.check_void_proof(pins.proof_key(PINS[MANAGER], salt), sent["staff_proof"], **fields)
    # A PIN's hash is no help to make it: another PIN's key gives another MAC.
    assert not pins.check_void_proof(pins.proof_key("1357", salt), entry["staff_proof"], **fields)
    assert not pins.check_void_proof(pins.proof_key(PINS[MANAGER], salt), entry["staff_proof"],
                                     **dict(fields, reason=" " + entry["void_reason"]))


def test_a_void_without_a_proof_salt_or_a_pin_carries_no_proof(store):
    assert "staff_proof" not in void_entry(store, ADMIN, PINS[ADMIN])  # the catalog gave no salt
    assert "staff_proof" not in void_entry(store, MANAGER, None)
