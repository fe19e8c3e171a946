"""The operator's staff (operations/staff_admin.py): listed without secrets, changed, disabled, given a PIN,
each with its audit record; and the tills hearing of it through a real sync round, so a disabled or moved
member no longer logs in offline there. On both engines."""

from __future__ import annotations

import io
import json
import time

import httpx
import pytest

from pos_app.core import wire
from pos_app.store import TillStore
from pos_app.store.pin_lockout import WRONG
from pos_app.sync.client import BackendClient
from pos_app.sync.round import sync_once
from server_stub.__main__ import main

SECRETS = ("pin_hash", "proof_key", "proof_salt", "pin")


def member(api, role: str = "cashier") -> dict:
    return next(s for s in api.demo["staff"] if s["role"] == role)


def as_staff(till, staff: dict, pin: str | None = None) -> dict:
    return {**till.auth, "X-Pika-Staff": staff["id"], "X-Pika-Pin": pin or staff["pin"]}


def second_store(api):
    """A second store of the demo retailer and a till enrolled there."""
    store = api.ok(api.client.post("/stores", headers=api.admin, json={"retailer_id": api.retailer_id,
                                                                       "name": "Sucursal 2"}), 201)
    code = api.ok(api.client.post("/enrollment-codes", headers=api.admin, json={"store_id": store["id"]}), 201)
    body = api.ok(api.client.post("/devices/enroll", json={"code": code["code"], "name": "Caja S2"}), 201)
    return store, {"Authorization": f"Bearer {body['device_token']}"}


def feed(api, auth, after: int = 0) -> list[dict]:
    return api.ok(api.client.get("/feed", headers=auth, params={"after": after}))["events"]


@pytest.fixture
def start(api) -> int:
    """The feed's head as the test begins: the demo's own staff events come before it."""
    return api.rows("SELECT coalesce(max(seq), 0) FROM events")[0][0]


def staff_events(api, auth, staff_id: str, after: int) -> list[tuple[str, dict]]:
    """The staff events for `staff_id` that a till with `auth` is sent after `after`."""
    return [(e["type"], e["data"]) for e in feed(api, auth, after)
            if e["type"] in ("staff", "staff_removed") and e["data"]["id"] == staff_id]


def audit_records(api, action: str) -> list[dict]:
    return api.ok(api.client.get("/audit", headers=api.admin, params={"action": action}))["records"]


# --- the API -----------------------------------------------------------------------------


def test_staff_are_listed_and_shown_without_their_pin_secrets(api):
    listed = api.ok(api.client.get("/staff", headers=api.admin, params={"retailer_id": api.retailer_id}))["staff"]
    assert {s["id"] for s in listed} == {s["id"] for s in api.demo["staff"]}
    text = json.dumps(listed)
    assert not any(secret in text for secret in SECRETS)
    assert all(s["disabled"] is False and s["disabled_at"] is None and s["store_id"] == api.store_id for s in listed)
    shown = api.ok(api.client.get(f"/staff/{member(api)['id']}", headers=api.admin))
    assert shown == next(s for s in listed if s["id"] == member(api)["id"])
    assert api.ok(api.client.get("/staff", headers=api.admin, params={"store_id": "sto_nowhere"}))["staff"] == []
    # A till's token is no operator's; a question out of shape is refused.
    till = api.enroll()
    assert api.client.get("/staff", headers=till.auth).status_code == 401
    assert api.client.get("/staff", headers=api.admin, params={"include_disabled": "yes"}).status_code == 400
    assert api.client.get("/staff", headers=api.admin, params={"retailer_id": "r" * 65}).status_code == 400


def test_unknown_ids_and_bad_changes_are_refused_with_nothing_written(api):
    before = api.snapshot()
    c, admin, cashier = api.client, api.admin, member(api)["id"]
    for method, path, body in (("GET", "/staff/stf_nobody", None), ("POST", "/staff/stf_nobody", {"name": "X"}),
                               ("POST", "/staff/stf_nobody/disable", None), ("POST", "/staff/stf_nobody/enable", None),
                               ("POST", "/staff/stf_nobody/pin", {"pin": "123456"})):
        answer = c.request(method, path, headers=admin, json=body)
        assert (answer.status_code, answer.json()["error"]["code"]) == (404, "not_found"), path
    other = api.ok(c.post("/retailers", headers=admin, json={"name": "Otra"}), 201)
    far = api.ok(c.post("/stores", headers=admin, json={"retailer_id": other["id"], "name": "Lejos"}), 201)
    for body, status in (({}, 400), ({"name": "   "}, 400), ({"role": "boss"}, 400), ({"role": None}, 400),
                         ({"store_id": far["id"]}, 400), ({"store_id": "sto_nowhere"}, 404),
                         ({"name": "x" * 201}, 400), ({"pin_hash": "x"}, 400)):
        assert c.post(f"/staff/{cashier}", headers=admin, json=body).status_code == status, body
    assert c.post(f"/staff/{cashier}/pin", headers=admin, json={"pin": "12"}).status_code == 400
    assert c.post(f"/staff/{member(api, 'manager')['id']}/pin", headers=admin, json={"pin": "1234"}).status_code == 400
    after = api.snapshot()
    for table in ("staff", "events"):
        assert after[table] == before[table]


def test_a_disabled_member_is_refused_online_at_once_even_with_a_remembered_pin(api, start):
    till, cashier = api.enroll(), member(api)
    assert api.ok(api.client.get("/staff/me", headers=as_staff(till, cashier)))["id"] == cashier["id"]  # remembered
    disabled = api.ok(api.client.post(f"/staff/{cashier['id']}/disable", headers=api.admin))
    assert disabled["disabled"] is True and disabled["disabled_at"] is not None
    for _ in range(6):  # more than the lockout allows: not one of them is counted as a wrong PIN
        refused = api.client.get("/staff/me", headers=as_staff(till, cashier))
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "staff_disabled")
    assert api.rows("SELECT count(*) FROM pin_failures")[0][0] == 0
    # Disabled twice: the first time stays. Not listed unless asked; never in a till's catalog.
    again = api.ok(api.client.post(f"/staff/{cashier['id']}/disable", headers=api.admin))
    assert again["disabled_at"] == disabled["disabled_at"]
    listed = api.ok(api.client.get("/staff", headers=api.admin))["staff"]
    assert cashier["id"] not in {s["id"] for s in listed}
    listed = api.ok(api.client.get("/staff", headers=api.admin, params={"include_disabled": "true"}))["staff"]
    assert cashier["id"] in {s["id"] for s in listed}
    assert cashier["id"] not in {s["id"] for s in api.ok(api.client.get("/catalog", headers=till.auth))["staff"]}
    # The till hears it must forget them (once, for the first disable); enabled, it hears of them again.
    assert [kind for kind, _ in staff_events(api, till.auth, cashier["id"], start)] == ["staff_removed"]
    api.ok(api.client.post(f"/staff/{cashier['id']}/enable", headers=api.admin))
    assert [kind for kind, _ in staff_events(api, till.auth, cashier["id"], start)] == ["staff_removed", "staff"]
    assert api.client.get("/staff/me", headers=as_staff(till, cashier)).status_code == 200
    records = audit_records(api, "staff.disable") + audit_records(api, "staff.enable")
    assert [(r["action"], r["target"]) for r in records] == [("staff.disable", cashier["id"])] * 2 + [
        ("staff.enable", cashier["id"])]
    assert all(r["actor_kind"] == "admin" for r in records)


def test_an_operator_set_pin_works_at_once_and_the_old_one_stops(api, start):
    till, manager = api.enroll(), member(api, "manager")
    assert api.client.get("/staff/me", headers=as_staff(till, manager)).status_code == 200
    api.ok(api.client.post(f"/staff/{manager['id']}/pin", headers=api.admin, json={"pin": "605142"}))
    assert api.client.get("/staff/me", headers=as_staff(till, manager)).status_code == 401  # the remembered old PIN
    assert api.client.get("/staff/me", headers=as_staff(till, manager, "605142")).status_code == 200
    (kind, data), = [e for e in staff_events(api, till.auth, manager["id"], start)]
    assert kind == "staff" and data["pin_hash"] and "proof_key" not in data
    record, = audit_records(api, "staff.set_pin")
    assert record["target"] == manager["id"] and record["detail"] is None  # nothing of the PIN


def test_a_cashier_made_manager_keeps_a_short_pin_and_is_asked_to_change_it(api, start):
    till, cashier = api.enroll(), member(api)
    changed = api.ok(api.client.post(f"/staff/{cashier['id']}", headers=api.admin,
                                     json={"role": "manager", "name": "Ana B. Benítez"}))
    assert (changed["role"], changed["name"]) == ("manager", "Ana B. Benítez")
    me = api.ok(api.client.get("/staff/me", headers=as_staff(till, cashier)))
    assert me["role"] == "manager" and me["pin_change_required"] is True and me["min_pin_digits"] == 6
    (kind, data), = staff_events(api, till.auth, cashier["id"], start)
    assert kind == "staff" and (data["role"], data["name"]) == ("manager", "Ana B. Benítez")
    record, = audit_records(api, "staff.change")
    assert record["detail"] == {"role": "manager", "name": "Ana B. Benítez",
                                "before": {"role": "cashier", "name": "Ana Benítez"}}


def test_a_member_moved_is_removed_where_they_were_and_sent_where_they_are(api, start):
    till, cashier = api.enroll(), member(api)
    store2, auth2 = second_store(api)
    api.ok(api.client.post(f"/staff/{cashier['id']}", headers=api.admin, json={"store_id": store2["id"]}))
    assert [k for k, _ in staff_events(api, till.auth, cashier["id"], start)] == ["staff_removed"]
    assert [k for k, _ in staff_events(api, auth2, cashier["id"], start)] == ["staff"]
    assert api.client.get("/staff/me", headers=as_staff(till, cashier)).status_code == 401  # not at store 1 now
    # Head office (every store): both stores' tills hear of them.
    api.ok(api.client.post(f"/staff/{cashier['id']}", headers=api.admin, json={"store_id": None}))
    assert [k for k, _ in staff_events(api, till.auth, cashier["id"], start)] == ["staff_removed", "staff"]
    assert [k for k, _ in staff_events(api, auth2, cashier["id"], start)] == ["staff", "staff_removed", "staff"]
    # Disabled while at every store: every till is told to forget them.
    api.ok(api.client.post(f"/staff/{cashier['id']}/disable", headers=api.admin))
    assert staff_events(api, till.auth, cashier["id"], start)[-1] == ("staff_removed", {"id": cashier["id"]})
    assert staff_events(api, auth2, cashier["id"], start)[-1] == ("staff_removed", {"id": cashier["id"]})


def test_the_removal_event_is_checked_strictly_on_both_sides():
    assert wire.check_event("staff_removed", {"id": "stf_1"}) == "stf_1"
    for data in ({}, {"id": ""}, {"id": 5}, None, ["stf_1"], {"id": "a\x00b"}):
        with pytest.raises(ValueError):
            wire.check_event("staff_removed", data)
    # A till applies a page holding a bad one by parking it, not by forgetting anyone.
    assert isinstance(wire.parse_feed([{"seq": 1, "type": "staff_removed", "data": {}}], 1)[0][2], wire.UnfitEvent)


# --- a real till hearing of it -------------------------------------------------------------


@pytest.fixture
def till(api, tmp_path):
    """A till's real store, enrolled and synced through the backend's app in this process."""
    code = api.ok(api.client.post("/enrollment-codes", headers=api.admin, json={"store_id": api.store_id}), 201)
    transport = httpx.WSGITransport(app=api.app)
    with BackendClient("http://t", transport=transport) as anonymous:
        answer = anonymous.enroll(code["code"], "Caja 1")
    store = TillStore(tmp_path / "till.sqlite3")
    store.save_enrollment(answer, "http://t")
    client = BackendClient("http://t", answer["device_token"], transport=transport)
    sync_once(store, client)
    yield store, client, {"Authorization": f"Bearer {answer['device_token']}"}
    client.close()
    store.close()


def test_a_till_that_heard_refuses_a_disabled_member_offline(api, till):
    store, client, auth = till
    cashier, now = member(api), time.time()
    assert store.staff_login(cashier["id"], cashier["pin"], now=now).member["id"] == cashier["id"]
    api.ok(api.client.post(f"/staff/{cashier['id']}/disable", headers=api.admin))
    # The feed's event alone is enough (a catalog download not needed): the row is gone.
    page = api.ok(api.client.get("/feed", headers=auth, params={"after": store.get("feed_cursor") or 0}))
    store.apply_feed(page["events"], page["cursor"])
    assert store.staff_member(cashier["id"]) is None
    refused = store.staff_login(cashier["id"], cashier["pin"], now=now + 1)
    assert refused.member is None and refused.refused == WRONG  # the plain answer: no such member here
    assert cashier["id"] not in {m["id"] for m in store.staff_members()}
    # Enabled again, the next round brings them back.
    api.ok(api.client.post(f"/staff/{cashier['id']}/enable", headers=api.admin))
    sync_once(store, client)
    assert store.staff_login(cashier["id"], cashier["pin"], now=now + 2).member["id"] == cashier["id"]


def test_a_till_learns_a_rename_a_role_a_move_and_a_new_pin_in_a_sync_round(api, till):
    store, client, _ = till
    cashier, manager, now = member(api), member(api, "manager"), time.time()
    api.ok(api.client.post(f"/staff/{cashier['id']}", headers=api.admin,
                           json={"name": "Ana María", "role": "manager"}))
    api.ok(api.client.post(f"/staff/{manager['id']}/pin", headers=api.admin, json={"pin": "605142"}))
    sync_once(store, client)
    check = store.staff_login(cashier["id"], cashier["pin"], now=now)
    assert (check.member["name"], check.member["role"], check.pin_change) == ("Ana María", "manager", True)
    assert store.staff_login(manager["id"], manager["pin"], now=now).member is None  # the old PIN stops
    assert store.staff_login(manager["id"], "605142", now=now + 1).member["id"] == manager["id"]
    store2, _ = second_store(api)
    api.ok(api.client.post(f"/staff/{cashier['id']}", headers=api.admin, json={"store_id": store2["id"]}))
    sync_once(store, client)
    assert store.staff_member(cashier["id"]) is None


# --- the operator's shell ---------------------------------------------------------------------


def run_command(capsys, monkeypatch, argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_staff_commands_print_one_json_line_and_read_the_pin_from_stdin(api, capsys, monkeypatch):
    data, cashier = ["--data", str(api.path)], member(api)["id"]
    code, out, _ = run_command(capsys, monkeypatch, ["staff", "list", *data, "--retailer", api.retailer_id])
    assert code == 0 and {s["id"] for s in json.loads(out)["staff"]} == {s["id"] for s in api.demo["staff"]}
    assert not any(secret in out for secret in SECRETS)
    code, out, _ = run_command(capsys, monkeypatch, ["staff", "change", *data, cashier, "--name", "Ana M.",
                                                     "--every-store"])
    assert code == 0 and (json.loads(out)["name"], json.loads(out)["store_id"]) == ("Ana M.", None)
    code, out, _ = run_command(capsys, monkeypatch, ["staff", "set-pin", *data, cashier], stdin="8642\n")
    assert code == 0 and "8642" not in out
    till = api.enroll()
    assert api.client.get("/staff/me", headers=as_staff(till, member(api), "8642")).status_code == 200
    code, out, _ = run_command(capsys, monkeypatch, ["staff", "disable", *data, cashier])
    assert code == 0 and json.loads(out)["disabled"] is True
    code, out, _ = run_command(capsys, monkeypatch, ["staff", "show", *data, cashier])
    assert json.loads(out)["disabled"] is True
    code, out, _ = run_command(capsys, monkeypatch, ["staff", "enable", *data, cashier])
    assert code == 0 and json.loads(out)["disabled"] is False
    assert [r["actor_kind"] for r in audit_records(api, "staff.set_pin")] == ["shell"]
    # Refusals are one line with their code; a PIN is never an argument.
    assert run_command(capsys, monkeypatch, ["staff", "show", *data, "stf_nobody"]) == (
        1, "", "error: no such staff member (not_found)\n")
    assert run_command(capsys, monkeypatch, ["staff", "set-pin", *data, cashier], stdin="12\n")[2] == \
        "error: a cashier's PIN is 4 to 12 digits (invalid_value)\n"
    assert run_command(capsys, monkeypatch, ["staff", "set-pin", *data, cashier], stdin="")[0] == 1
    with pytest.raises(SystemExit):
        main(["staff", "set-pin", *data, cashier, "8642"])
