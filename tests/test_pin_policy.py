"""PINs at the backend (issue 14, finding 7): a till receives hashes only of staff who may log in there,
managers and admins have six digits, a staff member changes their own PIN, and the lockout lives in the
database (shared by workers, kept over a restart, bounded, visible to admins).

The real backend app in process over real SQLite files (api_fixtures); a second and a third `Backend`
over the same folder are the other workers and the restarted one."""

from __future__ import annotations

import time
import uuid

import pytest

from pos_app.core import pins
from server_stub.app import App
from server_stub.backend import Backend
from server_stub.operations import pin_lockout
from api_fixtures import Api, Till, bearer, make_client


def member(api: Api, role: str) -> dict:
    return next(s for s in api.demo["staff"] if s["role"] == role)


def as_staff(till: Till, staff_id: str, pin: str) -> dict:
    return {**till.auth, "X-Pika-Staff": staff_id, "X-Pika-Pin": pin}


def second_store(api: Api) -> tuple[dict, Till]:
    """A second store of the demo retailer and a till enrolled there."""
    store = api.ok(api.client.post("/stores", headers=api.admin,
                                   json={"retailer_id": api.retailer_id, "name": "Sucursal Luque"}), 201)
    code = api.ok(api.client.post("/enrollment-codes", headers=api.admin, json={"store_id": store["id"]}), 201)
    body = api.ok(api.client.post("/devices/enroll", json={"code": code["code"], "name": "Luque 1"}), 201)
    return store, Till(body["device_id"], body["device_token"], "Luque 1", store["id"])


def add_staff(api: Api, name: str, role: str, pin: str, store_id: str | None) -> dict:
    return api.ok(api.client.post("/staff", headers=api.admin, json={
        "retailer_id": api.retailer_id, "store_id": store_id, "name": name, "role": role, "pin": pin}), 201)


def catalog_staff(api: Api, till: Till) -> dict[str, dict]:
    return {s["id"]: s for s in api.ok(api.client.get("/catalog", headers=till.auth))["staff"]}


def feed_staff(api: Api, till: Till) -> set[str]:
    events = api.ok(api.client.get("/feed", headers=till.auth))["events"]
    return {e["data"]["id"] for e in events if e["type"] == "staff"}


def set_anywhere(api: Api, allowed: bool) -> None:
    assert api.ok(api.client.post(f"/retailers/{api.retailer_id}/settings", headers=api.admin,
                                  json={"staff_anywhere": allowed})) == {"id": api.retailer_id,
                                                                         "staff_anywhere": allowed,
                                                                         "offline_days": 7}


# --- who a till hears of --------------------------------------------------------------------------------


def test_a_till_gets_the_pin_hashes_only_of_staff_who_may_log_in_there(api):
    here = api.enroll()
    store2, there = second_store(api)
    theirs = {add_staff(api, name, role, pin, store2["id"])["id"]
              for name, role, pin in (("Lucía", "manager", "246802"), ("Marcos", "admin", "135791"),
                                      ("Nora", "cashier", "2468"))}
    head = add_staff(api, "Head office", "manager", "975310", None)["id"]
    ours = {s["id"] for s in api.demo["staff"]}

    rows = catalog_staff(api, here)
    assert set(rows) == ours | {head}  # none of the other store's managers, admins or cashiers
    assert set(feed_staff(api, here)) == ours | {head}
    assert set(catalog_staff(api, there)) == theirs | {head} and feed_staff(api, there) == theirs | {head}
    for row in rows.values():  # the proof key never leaves the backend; its salt does
        assert set(row) == {"id", "name", "role", "pin_hash", "store_id", "proof_salt"} and row["proof_salt"]

    # The retailer keeps head office out of its tills: their hashes go nowhere, and they may not log in.
    set_anywhere(api, False)
    assert set(catalog_staff(api, here)) == ours and set(catalog_staff(api, there)) == theirs
    assert feed_staff(api, here) == ours and feed_staff(api, there) == theirs
    assert api.client.get("/staff/me", headers=as_staff(here, head, "975310")).status_code == 401
    later = add_staff(api, "Head office 2", "admin", "864200", None)["id"]
    assert later not in feed_staff(api, here)
    set_anywhere(api, True)
    assert {head, later} <= set(catalog_staff(api, here))
    assert api.ok(api.client.get("/staff/me", headers=as_staff(here, head, "975310")))["id"] == head


def test_settings_are_the_admins_and_checked(api):
    till = api.enroll()
    post = lambda headers, body, retailer=api.retailer_id: api.client.post(  # noqa: E731
        f"/retailers/{retailer}/settings", headers=headers, json=body)
    before = api.snapshot()
    assert post(till.auth, {"staff_anywhere": False}).status_code == 401
    assert post(api.admin, {"staff_anywhere": "no"}).json()["error"]["code"] == "wrong_type"
    assert post(api.admin, {}).json()["error"]["code"] == "missing_field"
    assert post(api.admin, {"staff_anywhere": False, "x": 1}).json()["error"]["code"] == "unknown_field"
    assert post(api.admin, {"staff_anywhere": False}, "ret_nobody").status_code == 404
    assert api.snapshot() == before


# --- six digits -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role, pin", [("manager", "1234"), ("admin", "12345"), ("manager", "12a456"),
                                       ("cashier", "123"), ("admin", "１２３４５６")])
def test_a_short_or_malformed_pin_is_refused_when_staff_are_made(api, role, pin):
    before = api.snapshot()
    answer = api.client.post("/staff", headers=api.admin, json={"retailer_id": api.retailer_id, "name": "x",
                                                                "role": role, "pin": pin})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_value" and f"{pins.min_digits(role)} to 12 digits" in error["message"]
    assert api.snapshot() == before


def test_six_digits_for_managers_and_admins_four_for_cashiers(api):
    for role, pin in (("manager", "123456"), ("admin", "654321"), ("cashier", "1234")):
        add_staff(api, role, role, pin, api.store_id)
    assert all(len(s["pin"]) >= pins.min_digits(s["role"]) for s in api.demo["staff"])  # the demo too


# --- changing one's own PIN ----------------------------------------------------------------------------


def test_a_manager_changes_their_pin_and_the_old_one_stops_working(api):
    till, other = api.enroll("Caja 1"), api.enroll("Caja 2")
    boss = member(api, "manager")
    old = as_staff(till, boss["id"], boss["pin"])
    me = api.ok(api.client.get("/staff/me", headers=old))
    assert me == {"id": boss["id"], "name": boss["name"], "role": "manager", "retailer_id": api.retailer_id,
                  "store_id": api.store_id, "pin_change_required": False, "min_pin_digits": 6}
    cursor = api.ok(api.client.get("/feed", headers=other.auth))["cursor"]
    before = api.snapshot()
    for pin, code in (("1234", "invalid_value"), ("12345", "invalid_value"), ("12 456", "invalid_value"),
                      (123456, "wrong_type"), ("1" * 13, "invalid_value")):
        answer = api.client.post("/staff/me/pin", headers=old, json={"pin": pin})
        assert answer.status_code == 400 and answer.json()["error"]["code"] == code, answer.text
    assert api.snapshot() == before

    row = api.ok(api.client.post("/staff/me/pin", headers=old, json={"pin": "80808080"}))
    assert set(row) == {"id", "name", "role", "pin_hash", "store_id", "proof_salt"}
    assert pins.check_pin("80808080", row["pin_hash"]) and not pins.check_pin(boss["pin"], row["pin_hash"])
    assert api.client.get("/staff/me", headers=old).status_code == 401  # at once, though it was checked lately
    assert api.client.get("/reports/daily", headers=old, params={"date": "2025-01-01"}).status_code == 401
    assert api.ok(api.client.get("/staff/me", headers=as_staff(till, boss["id"], "80808080")))["id"] == boss["id"]
    # The other tills of the store hear of the new hash and salt, and their next catalog has them.
    events = api.ok(api.client.get("/feed", headers=other.auth, params={"after": cursor}))["events"]
    assert [e["data"] for e in events if e["type"] == "staff"] == [row]
    assert catalog_staff(api, other)[boss["id"]] == row
    stored = api.rows("SELECT pin_hash, proof_salt, proof_key FROM staff WHERE id = ?", (boss["id"],))[0]
    assert stored[:2] == (row["pin_hash"], row["proof_salt"])
    assert pins.decode_key(stored[2]) == pins.proof_key("80808080", row["proof_salt"])


def test_a_cashier_may_change_their_pin_too_and_nobody_else_s(api):
    till = api.enroll()
    ana = member(api, "cashier")
    assert api.client.post("/staff/me/pin", headers=till.auth, json={"pin": "5678"}).status_code == 400
    assert api.client.post("/staff/me/pin", headers=api.admin, json={"pin": "5678"}).status_code == 401
    assert api.client.post("/staff/me/pin", headers=as_staff(till, ana["id"], "0000"),
                           json={"pin": "5678"}).status_code == 401
    assert api.client.post("/staff/me/pin", headers=as_staff(till, ana["id"], ana["pin"]),
                           json={"pin": "567"}).status_code == 400
    assert api.ok(api.client.post("/staff/me/pin", headers=as_staff(till, ana["id"], ana["pin"]),
                                  json={"pin": "5678"}))["id"] == ana["id"]


def test_a_short_manager_pin_from_before_still_logs_in_and_is_asked_to_change(api):
    till = api.enroll()
    boss = member(api, "manager")
    # Made before six digits were needed (and before proofs: no proof key).
    api.backend.storage.submit(lambda db: db.execute(
        "UPDATE staff SET pin_hash = ?, proof_salt = NULL, proof_key = NULL WHERE id = ?",
        (pins.hash_pin("4321"), boss["id"])))
    short = as_staff(till, boss["id"], "4321")
    assert api.ok(api.client.get("/staff/me", headers=short))["pin_change_required"] is True
    assert catalog_staff(api, till)[boss["id"]]["proof_salt"] is None
    assert api.client.get("/reports/daily", headers=short, params={"date": "2025-01-01"}).status_code == 200
    api.ok(api.client.post("/staff/me/pin", headers=short, json={"pin": "432100"}))
    me = api.ok(api.client.get("/staff/me", headers=as_staff(till, boss["id"], "432100")))
    assert me["pin_change_required"] is False
    assert catalog_staff(api, till)[boss["id"]]["proof_salt"]


# --- the lockout, in the database -----------------------------------------------------------------------


class Worker:
    """Another backend process over the same data folder (its own storage, caches and memory)."""

    def __init__(self, api: Api):
        self.backend = Backend(api.path)
        self.client = make_client(App(self.backend))

    def close(self) -> None:
        self.client.close()
        self.backend.close()


def test_five_wrong_pins_lock_a_member_at_a_till_for_every_worker_and_after_a_restart(api):
    till, other_till = api.enroll("Caja 1"), api.enroll("Caja 2")
    boss = member(api, "manager")
    wrong, right = as_staff(till, boss["id"], "000000"), as_staff(till, boss["id"], boss["pin"])
    assert api.client.get("/staff/me", headers=right).status_code == 200  # remembered: the lock still wins below
    two = Worker(api)
    try:
        # Two workers answer in turn: their counts are one.
        answers = [client.get("/staff/me", headers=wrong)
                   for client in (api.client, two.client, api.client, two.client, api.client)]
        assert [a.status_code for a in answers] == [401, 401, 401, 401, 429]
        locked = answers[-1].json()
        assert locked["error"]["code"] == "too_many_attempts" and 290 <= locked["retry_after_s"] <= 300
        for client in (api.client, two.client):  # the right PIN is not even checked now
            answer = client.get("/reports/daily", headers=right, params={"date": "2025-01-01"})
            assert answer.status_code == 429 and answer.json()["error"]["code"] == "too_many_attempts"
        # Another till, or another member at this one, is not locked.
        assert api.client.get("/staff/me", headers=as_staff(other_till, boss["id"], boss["pin"])).status_code == 200
        ana = member(api, "cashier")
        assert api.client.get("/staff/me", headers=as_staff(till, ana["id"], ana["pin"])).status_code == 200
    finally:
        two.close()
    api.client.close()
    api.backend.close()  # a restart
    api.backend = Backend(api.path)
    api.client = make_client(App(api.backend))
    assert api.client.get("/staff/me", headers=right).status_code == 429

    lockouts = api.ok(api.client.get("/pin-lockouts", headers=api.admin))["lockouts"]
    [row] = lockouts
    assert row == {**row, "device_id": till.id, "till": "Caja 1", "retailer_id": api.retailer_id,
                   "store_id": api.store_id, "staff_id": boss["id"], "staff_name": boss["name"], "failures": 5,
                   "locked": True}
    assert row["locked_until"] - row["first_at"] == pytest.approx(pin_lockout.LOCK_S)
    assert api.client.get("/pin-lockouts", headers=till.auth).status_code == 401

    # Five minutes on, the right PIN works and clears the count.
    api.backend.clock = lambda: time.time() + pin_lockout.LOCK_S + 1
    assert api.client.get("/staff/me", headers=right).status_code == 200
    assert api.rows("SELECT count(*) FROM pin_failures") == [(0,)]


def test_wrong_pins_spread_beyond_the_window_do_not_lock(api):
    till = api.enroll()
    boss = member(api, "manager")
    wrong = as_staff(till, boss["id"], "000000")
    start = time.time()
    for i, status in enumerate([401] * 4 + [401, 401, 401, 401, 429]):
        # four, then five minutes later four more and the fifth of those: a lock
        api.backend.clock = lambda: start + (pin_lockout.FAILURE_WINDOW_S + 1 if i >= 4 else 0) + i
        assert api.client.get("/staff/me", headers=wrong).status_code == status, i


def test_unknown_staff_ids_cost_no_rows_and_no_lock(api):
    till = api.enroll()
    boss = member(api, "manager")
    for _ in range(5):
        assert api.client.get("/staff/me", headers=as_staff(till, boss["id"], "000000")).status_code in (401, 429)
    assert api.rows("SELECT count(*) FROM pin_failures") == [(1,)]
    before = api.snapshot()
    for _ in range(60):  # a sixth wrong try and many more, with random staff ids: nothing to count
        answer = api.client.get("/staff/me", headers=as_staff(till, f"stf_{uuid.uuid4().hex[:12]}", "000000"))
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "unauthorized"
    answer = api.client.get("/staff/me", headers=as_staff(till, "x" * 5000, "0" * 5000))
    assert answer.status_code == 401
    assert api.snapshot() == before
    assert api.rows("SELECT count(*) FROM pin_failures") == [(1,)]


def test_old_rows_are_pruned(api):
    till = api.enroll()
    start = time.time()
    for i, one in enumerate(api.demo["staff"]):
        api.backend.clock = lambda: start + i
        api.client.get("/staff/me", headers=as_staff(till, one["id"], "0000000"))
    assert api.rows("SELECT count(*) FROM pin_failures") == [(3,)]
    api.backend.clock = lambda: start + pin_lockout.FAILURE_WINDOW_S + 10
    assert api.ok(api.client.get("/pin-lockouts", headers=api.admin)) == {"lockouts": []}  # stale: not shown
    api.client.get("/staff/me", headers=as_staff(till, member(api, "cashier")["id"], "9999"))
    assert api.rows("SELECT staff_id, failures FROM pin_failures") == [(member(api, "cashier")["id"], 1)]


def test_hostile_pin_headers_are_refused_calmly(api):
    till = api.enroll()
    boss = member(api, "manager")
    for pin in ("", " ", "1" * 5000, "12 456", "-123456"):
        answer = api.client.get("/staff/me", headers={**bearer(till.token), "X-Pika-Staff": boss["id"],
                                                      "X-Pika-Pin": pin})
        assert answer.status_code in (401, 429), answer.text  # wrong PINs: the fifth locks
