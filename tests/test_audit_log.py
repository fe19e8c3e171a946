"""The audit log: every admin and manager action, with who, when, from where and what changed (issue 15).

On both engines through the real app: each action writes its record in the
change's own transaction (a refused change writes none), the records name
the token, the staff member or the shell's user, never a secret, and
`GET /audit` pages and filters them and refuses garbage.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.api_fixtures import bearer, new_key

from server_stub.datadir import token_hash


def records(api, **query) -> list[dict]:
    return api.ok(api.client.get("/audit", headers=api.admin, params=query))["records"]


def admin_id(api) -> str:
    return token_hash(api.admin_token)[:12]


def test_every_admin_action_is_recorded_with_who_and_what_never_a_secret(api):
    before = records(api)[-1]["id"] if records(api) else 0
    retailer = api.ok(api.client.post("/retailers", headers=api.admin, json={"name": "Kiosco Ñandutí"}), 201)
    store = api.ok(api.client.post("/stores", headers=api.admin,
                                   json={"retailer_id": retailer["id"], "name": "Centro"}), 201)
    voucher = api.voucher(publish=True)
    staff = api.ok(api.client.post("/staff", headers=api.admin, json={
        "retailer_id": retailer["id"], "store_id": store["id"], "name": "Lía", "role": "manager",
        "pin": "731946"}), 201)
    code = api.ok(api.client.post("/enrollment-codes", headers=api.admin, json={"store_id": store["id"]}), 201)
    claim = api.claim()
    api.ok(api.client.post(f"/claims/{claim['jti']}/revoke", headers=api.admin))
    api.ok(api.client.post(f"/retailers/{retailer['id']}/settings", headers=api.admin,
                           json={"staff_anywhere": False}))

    got = records(api, after=before)
    assert [(r["action"], r["target"]) for r in got] == [
        ("retailer.create", retailer["id"]), ("store.create", store["id"]),
        ("voucher.create", voucher["id"]), ("voucher.publish", voucher["id"]),
        ("staff.create", staff["id"]), ("enrollment_code.create", store["id"]),
        ("claim.revoke", claim["jti"]), ("retailer.settings", retailer["id"])]
    assert {(r["actor_kind"], r["actor"].split(" ")[0]) for r in got} == {("admin", admin_id(api))}
    assert all(r["address"] == "127.0.0.1" and r["at"] > 0 for r in got)
    assert got[0]["detail"] == {"name": "Kiosco Ñandutí"} and got[0]["retailer_id"] == retailer["id"]
    assert got[3]["detail"] == {"from": "new", "to": "published"}
    assert got[4]["detail"] == {"name": "Lía", "role": "manager", "store_id": store["id"]}
    text = json.dumps(got, ensure_ascii=False)
    assert "731946" not in text and code["code"] not in text and api.admin_token not in text
    assert claim["token"] not in text and claim["short_code"] not in text


def test_a_refused_change_writes_no_record(api):
    voucher = api.voucher(publish=True)
    api.ok(api.client.post(f"/vouchers/{voucher['id']}/revoke", headers=api.admin))
    last = records(api)[-1]["id"]
    assert api.client.post(f"/vouchers/{voucher['id']}/publish", headers=api.admin).status_code == 409
    assert api.client.post("/staff", headers=api.admin, json={
        "retailer_id": api.retailer_id, "name": "X", "role": "manager", "pin": "12"}).status_code == 400
    assert api.client.post("/claims/nope/revoke", headers=api.admin).status_code == 404
    assert records(api, after=last) == []


def test_a_managers_void_in_person_and_a_tills_void_name_the_manager(api):
    till = api.enroll()
    manager = next(s for s in api.demo["staff"] if s["role"] == "manager")
    key = new_key()
    assert api.redeem(till, api.claim()["short_code"], method="typed", key=key).status_code == 201
    headers = {**till.auth, "X-Pika-Staff": manager["id"], "X-Pika-Pin": manager["pin"]}
    api.ok(api.client.post(f"/redemptions/{key}/void", headers=headers, json={"reason": "doble <script>"}), 201)
    record = records(api, action="redemption.void")[-1]
    assert (record["actor_kind"], record["actor"].split(" ")[0], record["target"]) == ("staff", manager["id"], key)
    assert record["detail"]["reason"] == "doble <script>" and record["retailer_id"] == api.retailer_id


def test_the_listing_pages_filters_and_refuses_garbage(api):
    for n in range(5):
        api.ok(api.client.post("/retailers", headers=api.admin, json={"name": f"R{n}"}), 201)
    mine = records(api, action="retailer.create")
    assert len(mine) >= 5
    first = api.ok(api.client.get("/audit", headers=api.admin, params={"limit": 2, "action": "retailer.create"}))
    assert len(first["records"]) == 2 and first["more"] is True
    rest = api.ok(api.client.get("/audit", headers=api.admin,
                                 params={"after": first["next"], "action": "retailer.create"}))
    assert [r["id"] for r in first["records"] + rest["records"]] == [r["id"] for r in mine]
    one = mine[-1]["retailer_id"]
    assert [r["retailer_id"] for r in records(api, retailer_id=one)] == [one]
    assert records(api, since=mine[-1]["at"] + 1) == []
    for bad in ({"since": "soon"}, {"since": "nan"}, {"since": "1e400"}, {"action": "x" * 65},
                {"action": "ñandú"}, {"limit": "-1"}, {"after": "1.5"}, {"retailer_id": "r" * 65}):
        answer = api.client.get("/audit", headers=api.admin, params=bad)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_value", bad
    assert api.client.get("/audit").status_code == 401


def test_only_the_operator_reads_it(api, tmp_path):
    done = subprocess.run([sys.executable, "-m", "server_stub", "token", "create", "--data", str(api.path),
                           "--scope", "claims", "--name", "customer app"], capture_output=True, text=True,
                          timeout=60, env=_env(api))
    assert done.returncode == 0, done.stderr
    app_token = json.loads(done.stdout)["token"]
    answer = api.client.get("/audit", headers=bearer(app_token))
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden"
    till = api.enroll()
    assert api.client.get("/audit", headers=till.auth).status_code == 401


def _env(api) -> dict:
    import os

    env = dict(os.environ)
    if api.database:
        env["PIKA_DATABASE"] = api.database
    return env


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_the_shells_commands_are_the_shell_users_and_the_audit_command_lists_them(api):
    done = subprocess.run([sys.executable, "-m", "server_stub", "token", "create", "--data", str(api.path),
                           "--scope", "claims", "--name", "app"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    listed = subprocess.run([sys.executable, "-m", "server_stub", "audit", "--data", str(api.path),
                             "--action", "token.create"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    record = json.loads(listed.stdout)["records"][-1]
    assert (record["actor_kind"], record["address"], record["detail"]) == (
        "shell", "local", {"scope": "claims", "name": "app", "expires_at": None})
    assert json.loads(done.stdout)["token"] not in listed.stdout


def test_a_members_own_pin_change_is_recorded_without_the_pin(api):
    till = api.enroll()
    manager = next(s for s in api.demo["staff"] if s["role"] == "manager")
    headers = {**till.auth, "X-Pika-Staff": manager["id"], "X-Pika-Pin": manager["pin"]}
    api.ok(api.client.post("/staff/me/pin", headers=headers, json={"pin": "90817263"}))
    record = records(api, action="staff.change_pin")[-1]
    assert (record["actor_kind"], record["actor"].split(" ")[0], record["target"], record["detail"]) == (
        "staff", manager["id"], manager["id"], None)
    assert "90817263" not in json.dumps(records(api))
