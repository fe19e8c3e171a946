"""Tills at the backend: listed, renamed, revoked (final), rolled (a new token by a code); last seen; the policy.

Through the real app on both engines (the `api` fixture), a second Backend
over the same database for what another process sees, and the shell commands
through a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from api_fixtures import Api, bearer, make_client, new_key
from server_stub.app import App
from server_stub.backend import Backend

ROOT = Path(__file__).resolve().parents[1]
REVOKED = "this till was withdrawn by the operator"
DAY = 86400


def error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert body["error"]["code"] == code, body
    return body


def device_row(api: Api, device_id: str) -> dict:
    names = ("name", "last_seen_at", "app_version", "outbox_size", "outbox_oldest_at", "revoked_at", "revoked_by",
             "rolled_at", "token_hash")
    row = api.rows(f"SELECT {', '.join(names)} FROM devices WHERE id = ?", (device_id,))[0]
    return dict(zip(names, row))


def audit_records(api: Api, action: str) -> list[dict]:
    return api.ok(api.client.get("/audit", headers=api.admin, params={"action": action}))["records"]


def device_calls(api: Api, auth: dict) -> list:
    """One of every kind of call a till makes with its token."""
    c = api.client
    staff = next(s for s in api.demo["staff"] if s["role"] == "cashier")
    return [c.get("/catalog", headers=auth), c.get("/feed", headers=auth),
            c.post("/redemptions", headers={**auth, "Idempotency-Key": new_key()},
                   json={"input": api.printed_code, "method": "printed"}),
            c.get(f"/redemptions/{new_key()}", headers=auth),
            c.post("/sync", headers=auth, json={"entries": []}),
            c.get("/staff/me", headers={**auth, "X-Pika-Staff": staff["id"], "X-Pika-Pin": staff["pin"]})]


# --- revoke ----------------------------------------------------------------------------------------


def test_a_revoked_till_is_told_so_on_every_call_and_revoking_again_changes_nothing(api):
    till, other = api.enroll("Caja 1"), api.enroll("Caja 2")
    assert all(r.status_code != 401 for r in device_calls(api, till.auth))
    answer = api.ok(api.client.post(f"/devices/{till.id}/revoke", headers=api.admin, json={"reason": "robada"}))
    assert answer["status"] == "revoked" and answer["revoked_at"] is not None and answer["id"] == till.id
    for response in device_calls(api, till.auth):
        assert error(response, 401, "device_revoked")["error"]["message"] == REVOKED
    assert all(r.status_code != 401 for r in device_calls(api, other.auth))  # the other till goes on
    error(api.client.get("/catalog", headers=bearer("nobody-" + "x" * 30)), 401, "unauthorized")
    before = api.snapshot()
    again = api.ok(api.client.post(f"/devices/{till.id}/revoke", headers=api.admin))  # no body at all
    assert again == answer and api.snapshot() == before  # idempotent: the first revoked_at, nothing written
    records = audit_records(api, "device.revoke")
    assert [(r["target"], r["detail"]["reason"], r["actor_kind"]) for r in records] == [(till.id, "robada", "admin")]
    assert till.token not in json.dumps(records)
    assert device_row(api, till.id)["revoked_by"] == records[0]["actor"]


@pytest.mark.allow_log_warnings(r"^enrollment refused from ")  # a dead code is a wrong code, as any other
def test_a_revoked_till_cannot_be_rolled_nor_enrolled_again_by_an_earlier_roll(api):
    till = api.enroll()
    code = api.ok(api.client.post(f"/devices/{till.id}/roll", headers=api.admin))["code"]
    api.ok(api.client.post(f"/devices/{till.id}/revoke", headers=api.admin, json={}))
    before = api.snapshot()
    error(api.client.post(f"/devices/{till.id}/roll", headers=api.admin), 409, "device_revoked")
    assert api.snapshot() == before
    # The roll's code died with the till: it enrolls nothing (and counts as a wrong code, as any other).
    error(api.client.post("/devices/enroll", json={"code": code, "name": "Caja 1"}), 403, "invalid_enrollment_code")
    error(api.client.get("/catalog", headers=till.auth), 401, "device_revoked")


@pytest.mark.parametrize("action,body", [("revoke", {}), ("roll", {}), ("rename", {"name": "Caja 9"})])
def test_an_unknown_device_is_not_found_and_nothing_is_written(api, action, body):
    before = api.snapshot()
    error(api.client.post(f"/devices/dev_nope/{action}", headers=api.admin, json=body), 404, "not_found")
    error(api.client.get("/devices/dev_nope", headers=api.admin), 404, "not_found")
    assert api.snapshot() == before


# --- roll ------------------------------------------------------------------------------------------


@pytest.mark.allow_log_warnings(r"^enrollment refused from ")  # a dead code is a wrong code, as any other
def test_a_rolled_till_enrolls_again_as_itself_with_a_new_token(api):
    till = api.enroll("Caja 1")
    accepted = api.redeem(till, api.printed_code, method="printed")
    assert accepted.status_code == 201
    rolled = api.ok(api.client.post(f"/devices/{till.id}/roll", headers=api.admin, json={"ttl_s": 3600}))
    assert rolled["device"]["status"] == "rolled" and rolled["expires_at"] == pytest.approx(time.time() + 3600, abs=5)
    body = error(api.client.get("/catalog", headers=till.auth), 401, "device_rolled")
    assert "enroll it again" in body["error"]["message"]
    again = api.ok(api.client.post("/devices/enroll", json={"code": rolled["code"], "name": "another name"}), 201)
    assert (again["device_id"], again["name"], again["store_id"]) == (till.id, "Caja 1", till.store_id)
    assert set(again) == {"device_id", "name", "device_token", "retailer_id", "store_id", "keys", "issuer",
                          "server_time", "lan"}  # a first enrollment's shape: the till just replaces its token
    assert again["device_token"] != till.token
    assert all(r.status_code != 401 for r in device_calls(api, bearer(again["device_token"])))
    error(api.client.get("/catalog", headers=till.auth), 401, "unauthorized")  # the old one is nobody's now
    shown = api.ok(api.client.get(f"/devices/{till.id}", headers=api.admin))
    assert shown["status"] == "active" and shown["rolled_at"] is None
    assert api.rows("SELECT count(*) FROM devices")[0][0] == 1 + len(api.demo.get("devices", []))
    assert api.rows("SELECT device_id FROM attempts")[0][0] == till.id  # its records are still its own
    error(api.client.post("/devices/enroll", json={"code": rolled["code"], "name": "x"}), 403,
          "invalid_enrollment_code")  # once
    assert [r["target"] for r in audit_records(api, "device.roll")] == [till.id]


@pytest.mark.allow_log_warnings(r"^enrollment refused from ")  # a dead code is a wrong code, as any other
def test_rolling_again_before_the_code_is_used_replaces_the_code(api):
    till = api.enroll()
    first = api.ok(api.client.post(f"/devices/{till.id}/roll", headers=api.admin))["code"]
    second = api.ok(api.client.post(f"/devices/{till.id}/roll", headers=api.admin))["code"]
    error(api.client.post("/devices/enroll", json={"code": first, "name": "Caja 1"}), 403, "invalid_enrollment_code")
    assert api.ok(api.client.post("/devices/enroll", json={"code": second, "name": "Caja 1"}), 201)["device_id"] \
        == till.id


@pytest.mark.allow_log_warnings(r"^enrollment refused from ")  # a dead code is a wrong code, as any other
def test_two_rolls_at_once_leave_one_live_code(api):
    """Two processes roll the same till at the same moment: exactly one of the two codes enrolls it."""
    till = api.enroll()
    second = Backend(api.path)
    try:
        codes, barrier = [], threading.Barrier(2)

        def roll(backend):
            barrier.wait()
            codes.append(backend.roll_device(till.id)["code"])
        threads = [threading.Thread(target=roll, args=(b,)) for b in (api.backend, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(codes) == 2
        live = api.rows("SELECT count(*) FROM enrollment_codes WHERE for_device = ? AND used_at IS NULL", (till.id,))
        assert live[0][0] == 1
        answers = [api.client.post("/devices/enroll", json={"code": c, "name": "Caja 1"}).status_code for c in codes]
        assert sorted(answers) == [201, 403]
    finally:
        second.close()


def test_bad_bodies_are_refused_and_nothing_is_written(api):
    till = api.enroll()
    before = api.snapshot()
    c, admin = api.client, api.admin
    for path, body in ((f"/devices/{till.id}/rename", {"name": "   "}), (f"/devices/{till.id}/rename", {}),
                       (f"/devices/{till.id}/rename", {"name": "x" * 201}),
                       (f"/devices/{till.id}/roll", {"ttl_s": 59}), (f"/devices/{till.id}/roll", {"ttl_s": "1"}),
                       (f"/devices/{till.id}/roll", {"ttl_s": 91 * DAY}),
                       (f"/devices/{till.id}/revoke", {"reason": 5}), (f"/devices/{till.id}/revoke", {"why": "x"})):
        assert c.post(path, headers=admin, json=body).status_code == 400, (path, body)
    assert c.get("/devices", headers=admin, params={"store_id": "x" * 65}).status_code == 400
    assert c.get("/devices", headers=admin, params={"retailer_id": "a b"}).status_code == 400
    assert c.post(f"/devices/{till.id}/revoke", headers=till.auth).status_code == 401  # the till's own token
    assert api.snapshot() == before


# --- list, show, rename, status --------------------------------------------------------------------


def test_listing_shows_what_each_till_reported_and_its_status(api):
    till, other = api.enroll("Caja 1"), api.enroll("Caja 2")
    store2 = api.ok(api.client.post("/stores", headers=api.admin, json={"retailer_id": api.retailer_id,
                                                                         "name": "Sucursal 2"}), 201)
    code = api.ok(api.client.post("/enrollment-codes", headers=api.admin, json={"store_id": store2["id"]}), 201)
    third = api.ok(api.client.post("/devices/enroll", json={"code": code["code"], "name": "Caja 3"}), 201)
    oldest = time.time() - 120
    api.ok(api.client.post("/sync", headers={**till.auth, "User-Agent": "pika-till/9.9"},
                           json={"entries": [], "till": {"app_version": "1.5.0", "outbox": 3,
                                                         "outbox_oldest_at": oldest}}))
    api.ok(api.client.post(f"/devices/{other.id}/rename", headers=api.admin, json={"name": "  Caja dos 🧉 "}))
    listed = api.ok(api.client.get("/devices", headers=api.admin))["devices"]
    by_id = {d["id"]: d for d in listed}
    assert {till.id, other.id, third["device_id"]} <= set(by_id)
    mine = by_id[till.id]
    assert (mine["app_version"], mine["outbox_size"], mine["outbox_oldest_at"]) == ("1.5.0", 3, oldest)
    assert mine["last_seen_at"] == pytest.approx(time.time(), abs=5) and mine["status"] == "active"
    assert by_id[other.id]["name"] == "Caja dos 🧉" and by_id[other.id]["status"] == "active"
    assert by_id[other.id]["last_seen_at"] is None  # enrolled, never heard from since
    in_store2 = api.ok(api.client.get("/devices", headers=api.admin, params={"store_id": store2["id"]}))["devices"]
    assert [d["id"] for d in in_store2] == [third["device_id"]]
    assert api.ok(api.client.get("/devices", headers=api.admin, params={"retailer_id": "ret_none"}))["devices"] == []
    assert [r["detail"] for r in audit_records(api, "device.rename")] == [{"name": "Caja dos 🧉", "was": "Caja 2"}]
    # Silent: not heard from for more than the retailer's offline_days (7 by default).
    start = time.time()
    api.backend.clock = lambda: start + 8 * DAY
    statuses = {d["id"]: d["status"] for d in api.ok(api.client.get("/devices", headers=api.admin))["devices"]}
    assert statuses[till.id] == statuses[other.id] == "silent"
    api.ok(api.client.post(f"/retailers/{api.retailer_id}/settings", headers=api.admin, json={"offline_days": 9}))
    assert api.ok(api.client.get(f"/devices/{till.id}", headers=api.admin))["status"] == "active"


# --- what a till reports, when it was last seen ------------------------------------------------------


def test_a_till_is_seen_on_its_calls_at_most_once_a_minute_and_never_on_an_error(api):
    till = api.enroll()
    start = time.time()
    api.backend.clock = lambda: start
    assert device_row(api, till.id)["last_seen_at"] is None
    api.ok(api.client.get("/catalog", headers=till.auth))
    assert device_row(api, till.id)["last_seen_at"] == start
    api.backend.clock = lambda: start + 30
    before = api.snapshot()
    api.ok(api.client.get("/feed", headers=till.auth))
    time.sleep(1.1)  # the device cache forgets: the row is read again, and still within the minute
    api.ok(api.client.get("/feed", headers=till.auth))
    assert api.snapshot() == before  # no write per request
    api.backend.clock = lambda: start + 61
    error(api.client.post("/redemptions", headers=till.auth, json={"input": "x", "method": "typed"}), 400,
          "invalid_value")  # no Idempotency-Key: an error writes nothing, not even when it was seen
    assert api.snapshot() == before
    api.ok(api.client.get("/feed", headers=till.auth))
    assert device_row(api, till.id)["last_seen_at"] == start + 61


def test_a_sync_records_the_tills_report_and_garbage_is_refused(api):
    till = api.enroll()
    c = api.client
    api.ok(c.post("/sync", headers={**till.auth, "User-Agent": "pika-till/2.0.1 (linux)"}, json={"entries": []}))
    row = device_row(api, till.id)
    assert row["app_version"] == "2.0.1" and row["outbox_size"] is None  # the version from the header
    assert row["last_seen_at"] == pytest.approx(time.time(), abs=5)
    api.ok(c.post("/sync", headers=till.auth, json={"entries": [], "till": {"app_version": "2.1.0", "outbox": 0,
                                                                            "outbox_oldest_at": None}}))
    row = device_row(api, till.id)
    assert (row["app_version"], row["outbox_size"], row["outbox_oldest_at"]) == ("2.1.0", 0, None)
    before = api.snapshot()
    for till_report in ({"outbox": -1}, {"outbox": 10**9 + 1}, {"outbox": 1.5}, {"outbox": True},
                        {"app_version": "x" * 33}, {"app_version": ""}, {"app_version": "1.0 beta"},
                        {"app_version": 2}, {"outbox_oldest_at": 1e300}, {"outbox_oldest_at": -5},
                        {"outbox_oldest_at": "yesterday"}, {"extra": 1}, "2.1.0", [], None):
        response = c.post("/sync", headers=till.auth, json={"entries": [], "till": till_report})
        assert response.status_code == 400, (till_report, response.text)
    assert api.snapshot() == before
    api.ok(c.post("/sync", headers={**till.auth, "User-Agent": "pika-till/\x7f"}, json={"entries": []}))
    assert device_row(api, till.id)["app_version"] == "2.1.0"  # an odd header is a hint ignored, not an error


# --- the offline policy --------------------------------------------------------------------------


def test_the_catalog_carries_the_retailers_offline_policy_which_the_settings_change(api):
    till = api.enroll()
    c, settings = api.client, f"/retailers/{api.retailer_id}/settings"
    assert api.ok(c.get("/catalog", headers=till.auth))["policy"] == {"offline_days": 7}
    assert api.ok(c.post(settings, headers=api.admin, json={"offline_days": 3})) == {
        "id": api.retailer_id, "staff_anywhere": True, "offline_days": 3}
    assert api.ok(c.get("/catalog", headers=till.auth))["policy"] == {"offline_days": 3}
    assert api.ok(c.post(settings, headers=api.admin, json={"staff_anywhere": False}))["offline_days"] == 3  # old body
    assert api.ok(c.post(settings, headers=api.admin, json={"staff_anywhere": True, "offline_days": 90})) == {
        "id": api.retailer_id, "staff_anywhere": True, "offline_days": 90}
    before = api.snapshot()
    for body in ({}, {"offline_days": 0}, {"offline_days": 91}, {"offline_days": "7"}, {"offline_days": 7.0},
                 {"offline_days": True}, {"offline_days": None}):
        assert c.post(settings, headers=api.admin, json=body).status_code == 400, body
    assert c.post("/retailers/ret_nope/settings", headers=api.admin, json={"offline_days": 5}).status_code == 404
    assert api.snapshot() == before
    assert [r["detail"] for r in audit_records(api, "retailer.settings")][-1] == {"staff_anywhere": True,
                                                                                  "offline_days": 90}


# --- another process -------------------------------------------------------------------------------


def test_a_revocation_is_seen_by_another_backend_within_a_second_and_a_half(api):
    till = api.enroll()
    second = Backend(api.path)  # another process's backend: the same database, its own device cache
    client = make_client(App(second))
    try:
        assert client.get("/catalog", headers=till.auth).status_code == 200  # it remembers the till now
        api.ok(api.client.post(f"/devices/{till.id}/revoke", headers=api.admin))
        revoked = time.monotonic()
        error(api.client.get("/feed", headers=till.auth), 401, "device_revoked")  # where it was revoked: at once
        while (response := client.get("/feed", headers=till.auth)).status_code == 200:
            assert time.monotonic() - revoked < 1.5, "still let in after 1.5 s"
            time.sleep(0.05)
        error(response, 401, "device_revoked")
    finally:
        client.close()
        second.close()


def test_a_batch_another_backend_takes_just_after_the_revoke_is_refused_whole(api):
    """Its cache still holds the till (the request's check passes), but the write looks at the row."""
    till = api.enroll()
    second = Backend(api.path)
    client = make_client(App(second))
    try:
        assert client.get("/catalog", headers=till.auth).status_code == 200  # the row cached there now
        api.ok(api.client.post(f"/devices/{till.id}/revoke", headers=api.admin))
        before = api.counts()
        entry = {"key": new_key(), "at": time.time() - 5, "accepted": True, "reason": None, "kind": "printed",
                 "voucher_id": None, "jti": None, "code": api.printed_code, "method": "typed", "staff_id": None,
                 "decided": "offline", "input": api.printed_code}
        error(client.post("/sync", headers=till.auth, json={"entries": [entry]}), 401, "device_revoked")
        assert api.counts() == before
    finally:
        client.close()
        second.close()


# --- the shell ---------------------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server_stub", "device", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_the_device_commands_at_the_shell(api):
    till = api.enroll("Caja 1")
    data = str(api.path)
    listed = run_cli("list", "--data", data, "--store", api.store_id)
    assert listed.returncode == 0, listed.stderr
    assert [d["id"] for d in json.loads(listed.stdout)["devices"]] == [till.id]
    renamed = json.loads(run_cli("rename", "--data", data, till.id, "Caja Norte").stdout)
    assert renamed["name"] == "Caja Norte"
    rolled = run_cli("roll", "--data", data, till.id, "--ttl-days", "2")
    answer = json.loads(rolled.stdout)
    assert answer["device"]["status"] == "rolled" and answer["expires_at"] - time.time() == pytest.approx(2 * DAY, abs=60)
    assert api.ok(api.client.post("/devices/enroll", json={"code": answer["code"], "name": "x"}), 201)["device_id"] \
        == till.id
    revoked = json.loads(run_cli("revoke", "--data", data, till.id, "--reason", "stolen").stdout)
    assert revoked["status"] == "revoked"
    assert json.loads(run_cli("show", "--data", data, till.id).stdout) == revoked
    records = audit_records(api, "device.revoke")
    assert records[-1]["actor_kind"] == "shell" and records[-1]["detail"]["reason"] == "stolen"
    missing = run_cli("revoke", "--data", data, "dev_nope")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip() == "error: no device dev_nope (not_found)"
    refused = run_cli("roll", "--data", data, till.id)
    assert refused.returncode == 1 and refused.stderr.strip().endswith("(device_revoked)")
