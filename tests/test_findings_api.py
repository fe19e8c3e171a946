"""The findings' routes (GET /findings, POST /findings/{id}/resolve, POST /reconcile): who sees and closes what,
every hostile query and body refused with a stable code and nothing written, the answers as openapi.json
declares them; and the nightly run of a real `serve`, once even with two of them at the same moment.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from server_stub.datadir import DataDir
from server_stub.operations import reconcile
from api_fixtures import Api, bearer
from test_openapi import Contract, load_doc

ROOT = Path(__file__).resolve().parents[1]
DAY = 86400.0


def stuck(api: Api, till, days: float = 2) -> None:
    api.ok(api.client.post("/sync", headers=till.auth, json={"entries": [], "till": {
        "outbox": 3, "outbox_oldest_at": time.time() - days * DAY}}))


def other_retailer(api: Api) -> dict:
    """A second retailer with a store, a till there and an admin of no single store: their headers in person."""
    c, admin = api.client, api.admin
    retailer = api.ok(c.post("/retailers", headers=admin, json={"name": "Otra cadena"}), 201)
    store = api.ok(c.post("/stores", headers=admin, json={"retailer_id": retailer["id"], "name": "Encarnación"}), 201)
    boss = api.ok(c.post("/staff", headers=admin, json={"retailer_id": retailer["id"], "store_id": None,
                                                         "name": "Dora", "role": "admin", "pin": "864209"}), 201)
    code = api.ok(c.post("/enrollment-codes", headers=admin, json={"store_id": store["id"]}), 201)["code"]
    till = api.ok(c.post("/devices/enroll", json={"code": code, "name": "Caja E"}), 201)
    return {"retailer_id": retailer["id"], "store_id": store["id"], "till_token": till["device_token"],
            "headers": {**bearer(till["device_token"]), "X-Pika-Staff": boss["id"], "X-Pika-Pin": "864209"}}


def in_person(api: Api, role: str, till) -> dict:
    member = next(s for s in api.demo["staff"] if s["role"] == role)
    return {**till.auth, "X-Pika-Staff": member["id"], "X-Pika-Pin": member["pin"]}


def test_each_caller_sees_and_closes_only_their_own(api):
    contract = Contract(load_doc())
    api.client.event_hooks = {"request": [contract.on_request], "response": [contract.on_response]}
    c = api.client
    mine = api.enroll("Caja 1")
    stuck(api, mine)
    other = other_retailer(api)
    api.ok(c.post("/sync", headers=bearer(other["till_token"]), json={"entries": [], "till": {
        "outbox": 1, "outbox_oldest_at": time.time() - 3 * DAY}}))
    ran = api.ok(c.post("/reconcile", headers=api.admin))
    assert ran["by_code"]["outbox_stuck"] == 2 and ran["opened"] == 2
    everything = api.ok(c.get("/findings", headers=api.admin))
    assert everything["total"] == 2 and everything["last_run_at"] == ran["ran_at"]
    ours = next(f for f in everything["findings"] if f["retailer_id"] == api.retailer_id)
    theirs = next(f for f in everything["findings"] if f["retailer_id"] == other["retailer_id"])

    # the other retailer's admin in person: only theirs; ours is not found, to list or to close
    listed = api.ok(c.get("/findings", headers=other["headers"]))
    assert [f["id"] for f in listed["findings"]] == [theirs["id"]]
    assert api.ok(c.get("/findings", headers=other["headers"], params={"retailer_id": api.retailer_id}))["total"] == 0
    before = api.snapshot()
    refused = c.post(f"/findings/{ours['id']}/resolve", headers=other["headers"], json={"note": "no es mío"})
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    refused = c.post("/reconcile", headers=other["headers"], json={"retailer_id": api.retailer_id})
    assert refused.status_code == 404
    assert api.snapshot() == before
    # their own check runs over their retailer only
    theirs_ran = api.ok(c.post("/reconcile", headers=other["headers"]))
    assert theirs_ran["by_code"]["outbox_stuck"] == 1
    # each retailer is told of the last run that checked it, not of another retailer's runs
    assert api.ok(c.get("/findings", headers=other["headers"]))["last_run_at"] == theirs_ran["ran_at"]
    assert api.ok(c.get("/findings", headers=api.admin))["last_run_at"] == theirs_ran["ran_at"]
    assert api.ok(c.get("/findings", headers=api.admin, params={"retailer_id": api.retailer_id}))[
        "last_run_at"] == ran["ran_at"]

    # our store's admin in person (of one store): our store's; a manager or a cashier: refused
    carla = in_person(api, "admin", mine)
    assert [f["id"] for f in api.ok(c.get("/findings", headers=carla))["findings"]] == [ours["id"]]
    assert api.ok(c.get("/findings", headers=carla))["last_run_at"] == ran["ran_at"] != theirs_ran["ran_at"]
    assert api.ok(c.get("/findings", headers=carla, params={"store_id": other["store_id"]}))["total"] == 0
    for role in ("manager", "cashier"):
        response = c.get("/findings", headers=in_person(api, role, mine))
        assert response.status_code == 403, role
    assert c.get("/findings", headers=mine.auth).status_code == 401  # a till's token alone
    assert c.get("/findings").status_code == 401

    closed = api.ok(c.post(f"/findings/{ours['id']}/resolve", headers=carla, json={"note": "  Caja reiniciada  "}))
    assert closed["resolution"] == "Caja reiniciada" and closed["state"] == "resolved"
    record = api.rows("SELECT actor_kind, retailer_id, target FROM audit_log WHERE action = 'finding.resolve'")
    assert record == [("staff", api.retailer_id, str(ours["id"]))]
    again = c.post(f"/findings/{ours['id']}/resolve", headers=api.admin, json={"note": "otra vez"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_resolved"
    assert api.ok(c.get("/findings", headers=api.admin, params={"state": "resolved"}))["total"] == 1
    assert api.ok(c.post(f"/findings/{theirs['id']}/resolve", headers=api.admin, json={"note": "visto"}))


HOSTILE_QUERIES = [
    {"state": "abierto"}, {"state": ""}, {"code": "OUTBOX"}, {"code": "x" * 41}, {"code": "outbox stuck"},
    {"code": "outbox_stuck\u202e"}, {"code": "ｏutbox"}, {"limit": "0"}, {"limit": "501"}, {"limit": "-1"},
    {"limit": "1e3"}, {"limit": "٣"}, {"limit": "9" * 30}, {"offset": "x"}, {"offset": "99999999"},
    {"retailer_id": "r" * 65}, {"retailer_id": "ret'; DROP TABLE findings; --"}, {"store_id": "s\x00"},
    {"store_id": "é"}, {"extra": "1"}, {"State": "open"},
]
HOSTILE_NOTES = ["", "   ", "x" * 501, "x" * 2001, "línea\nnueva", "tab\tado", "nul\x00", "bidi \u202egnp.exe",
                 "\u2066aislado", "separador\u2028", "privado \ue000", "sin asignar \U000e0080", "c1 \x85"]


def test_hostile_queries_ids_and_bodies_are_refused_and_write_nothing(api):
    c = api.client
    stuck(api, api.enroll())
    reconcile.run(api.backend.ctx)
    fid = api.ok(c.get("/findings", headers=api.admin))["findings"][0]["id"]
    before = api.snapshot()
    findings_before = api.rows("SELECT * FROM findings")
    for query in HOSTILE_QUERIES:
        response = c.get("/findings", headers=api.admin, params=query)
        assert response.status_code == 400, (query, response.text)
        assert response.json()["error"]["code"] in ("invalid_value", "unknown_field"), query
    for raw in ("abc", "1.5", "-1", "0x1", "1e3", "9" * 19, "١"):
        response = c.post(f"/findings/{raw}/resolve", headers=api.admin, json={"note": "ok"})
        assert response.status_code in (400, 404), raw  # 404: not a path the router takes (a dot, a sign)
        assert response.json()["error"]["code"] in ("invalid_value", "not_found"), raw
    for missing in ("0", "999999", "9" * 18):
        assert c.post(f"/findings/{missing}/resolve", headers=api.admin, json={"note": "ok"}).status_code == 404
    for note in HOSTILE_NOTES:
        response = c.post(f"/findings/{fid}/resolve", headers=api.admin, json={"note": note})
        assert response.status_code == 400, repr(note)
        assert response.json()["error"]["code"] == "invalid_value", repr(note)
    for body in ({}, {"note": 5}, {"note": None}, {"note": ["x"]}, {"note": "ok", "by": "me"}, [], "ok"):
        response = c.post(f"/findings/{fid}/resolve", headers=api.admin, json=body)
        assert response.status_code == 400 and response.json()["error"]["code"] in (
            "missing_field", "wrong_type", "unknown_field"), body
    for raw in (b"{", b"\xff\xfe", b'{"note": "\\ud800"}', b'{"note": NaN}'):
        response = c.post(f"/findings/{fid}/resolve", headers={**api.admin, "Content-Type": "application/json"},
                          content=raw)
        assert response.status_code == 400, raw
    for body in ({"retailer_id": 5}, {"retailer_id": "x" * 65}, {"retailer_id": "a b"}, {"retailer": "x"}, []):
        response = c.post("/reconcile", headers=api.admin, json=body)
        assert response.status_code == 400, body
    assert api.snapshot() == before and api.rows("SELECT * FROM findings") == findings_before
    # odd but fair Unicode is kept as written (NFC)
    note = "Cliente devolvió — Ñandutí 🧉 e\u0301"
    closed = api.ok(c.post(f"/findings/{fid}/resolve", headers=api.admin, json={"note": note}))
    assert closed["resolution"] == "Cliente devolvió — Ñandutí 🧉 é"


# --- the nightly run in a real `serve` -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(data: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "server_stub", "serve", "--data", str(data), "--port", str(port),
                             "--stdlib"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


@pytest.mark.parametrize("servers", [1, 2])
def test_serve_runs_the_night_once(tmp_path, backend_database, servers):
    data = tmp_path / "backend"
    folder = DataDir(data)
    admin = folder.init(backend_database)["admin_token"]
    when = time.localtime(time.time() + 6)  # server time, a few seconds on: the processes have started by then
    folder.set_config(reconcile={"hour": when.tm_hour, "minute": when.tm_min, "second": when.tm_sec})
    ports = [_free_port() for _ in range(servers)]
    procs = [_serve(data, port) for port in ports]
    try:
        for port, proc in zip(ports, procs):
            deadline = time.time() + 20
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    assert proc.poll() is None, proc.stderr.read()
                    assert time.time() < deadline, "serve did not come up"
                    time.sleep(0.1)
        deadline = time.time() + 20
        while True:
            answer = httpx.get(f"http://127.0.0.1:{ports[0]}/api/v1/findings", headers=bearer(admin)).json()
            if answer["last_run_at"] is not None:
                break
            assert time.time() < deadline, "the nightly run did not happen"
            time.sleep(0.2)
        time.sleep(1.5)  # a second process's turn, had it wrongly taken one
    finally:
        errors = [_stop(proc) for proc in procs]
    said = "".join(errors)
    assert all("reconcile: nightly run scheduled" in err for err in errors), said
    assert said.count(": 0 opened, 0 seen again, 0 gone") == 1, said
    assert said.count(": skipped") == servers - 1, said


def test_a_night_runs_once_whichever_process_asks_first(api):
    """Runs that do not overlap (the lease lets both) still run the night once: its slot is claimed."""
    from server_stub.commands.reconcile import run_night

    stuck(api, api.enroll())
    assert run_night(str(api.path), None, "2030-01-01T03:00:00") == "ran"
    assert run_night(str(api.path), None, "2030-01-01T03:00:00") == "skipped"
    assert api.ok(api.client.get("/findings", headers=api.admin))["total"] == 1
    assert run_night(str(api.path), None, "2030-01-02T03:00:00") == "ran"


def test_the_schedule_can_be_off_and_a_bad_one_is_refused(tmp_path):
    from server_stub.commands import reconcile as schedule

    assert schedule.start(str(tmp_path), {"reconcile": {"schedule": False}}) is None
    for bad in ({"hour": 24}, {"minute": "5"}, {"schedule": "yes"}, {"silent_hours": 0}, {"second": True}):
        with pytest.raises(Exception) as refused:
            schedule.start(str(tmp_path), {"reconcile": bad})
        assert getattr(refused.value, "code", None) == "invalid_value", bad
    assert reconcile.settings({})["hour"] == 3 and reconcile.settings({})["silent_hours"] == 24
    assert json.loads(json.dumps(reconcile.DEFAULTS))["schedule"] is True
