"""A store's LAN keys and roster (Part C of issue 18): made once per store, rotated with a grace, rotated when
a till is revoked; handed to that store's tills only, in the catalog and the enrollment answer; the feed's
`lan` event; the till's parser refusing hostile `lan` objects with its catalog unchanged.

The backend on both engines (the `api` fixture), two real processes asking at once, the command through a
subprocess, and a real TillStore on a SQLite file for what the till keeps.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from api_fixtures import Api, Till, bearer
from pos_app.core import lan_roster, till_log, wire
from pos_app.store.till_store import TillStore
from pos_app.sync.client import BackendClient
from pos_app.sync.round import sync_once
from server_stub.app import App
from server_stub.operations import lan_keys

ROOT = Path(__file__).resolve().parents[1]
DAY = 86400


# --- helpers ---------------------------------------------------------------------------------------


def with_log_key(api: Api, till: Till) -> str:
    """The till's log key registered, as backend-log's enrollment does (set here in the row itself)."""
    public_key = till_log.public_key_of(till_log.new_private_key())
    api.execute(f"UPDATE devices SET log_key = '{public_key}' WHERE id = '{till.id}'")
    return public_key


def catalog(api: Api, till: Till) -> dict:
    return api.ok(api.client.get("/catalog", headers=till.auth))


def lan_rows(api: Api, store_id: str) -> list[tuple]:
    return api.rows("SELECT kid, retired_at, expires_at FROM store_lan_keys WHERE store_id = ? ORDER BY created_at",
                    (store_id,))


def secrets_of(lan: dict) -> set[str]:
    return {key["secret"] for key in lan["keys"]}


def other_store_till(api: Api, retailer_id: str | None = None, name: str = "Caja otra") -> Till:
    retailer_id = retailer_id or api.retailer_id
    store = api.backend.create_store(retailer_id, "Otra tienda", "America/Asuncion")
    code = api.backend.create_enrollment_code(store["id"])["code"]
    body = api.ok(api.client.post("/devices/enroll", json={"code": code, "name": name}), 201)
    return Till(body["device_id"], body["device_token"], name, body["store_id"])


def feed_types(api: Api, till: Till, after: int = 0) -> list[dict]:
    return [e for e in api.ok(api.client.get("/feed", headers=till.auth, params={"after": after}))["events"]
            if e["type"] == "lan"]


def move_clock(api: Api, by_s: float) -> None:
    clock = api.backend.ctx.clock
    api.backend.ctx.clock = lambda: clock() + by_s


# --- keys made once, rotated, expired ----------------------------------------------------------------


def test_a_store_key_is_made_once_and_its_tills_get_it_in_the_catalog_and_the_enrollment(api):
    assert lan_rows(api, api.store_id) == []
    first = api.enroll("Caja 1")
    enrolled = lan_rows(api, api.store_id)
    assert len(enrolled) == 1 and enrolled[0][1] is None  # made by the first enrollment's answer
    one, two = catalog(api, first), catalog(api, api.enroll("Caja 2"))
    assert lan_rows(api, api.store_id) == enrolled  # asked again: the same key
    assert one["lan"]["keys"] == two["lan"]["keys"] == [
        {"kid": enrolled[0][0], "secret": one["lan"]["keys"][0]["secret"], "active": True}]
    assert wire.parse_catalog(one).lan == one["lan"]
    assert len(base64.b64decode(one["lan"]["keys"][0]["secret"])) == 32
    assert enrolled[0][0].startswith("lan_")


def test_the_roster_is_the_stores_tills_with_a_log_key_and_not_revoked(api):
    first, second, third = api.enroll("Caja 1"), api.enroll("Caja 2"), api.enroll("Caja 3")
    assert catalog(api, first)["lan"]["peers"] == []  # no log key registered yet: not in the roster
    keys = {till.id: with_log_key(api, till) for till in (first, second, third)}
    other_store_till(api)  # another store's till is never a peer
    peers = catalog(api, first)["lan"]["peers"]
    assert peers == [{"device_id": t.id, "name": t.name, "public_key": keys[t.id]} for t in (first, second, third)]
    api.ok(api.client.post(f"/devices/{third.id}/revoke", headers=api.admin, json={"reason": "robada"}))
    assert [p["device_id"] for p in catalog(api, first)["lan"]["peers"]] == [first.id, second.id]


def test_rotation_keeps_the_old_key_until_it_expires_then_drops_it(api):
    till = api.enroll()
    old = catalog(api, till)["lan"]["keys"]
    done = lan_keys.rotate(api.backend.ctx, api.store_id)
    assert done["retired"] == [old[0]["kid"]] and done["kid"] != old[0]["kid"]
    keys = catalog(api, till)["lan"]["keys"]
    assert [(k["kid"], k["active"]) for k in keys] == [(done["kid"], True), (old[0]["kid"], False)]
    assert keys[1]["secret"] == old[0]["secret"]
    move_clock(api, lan_keys.GRACE_S - 60)
    assert len(catalog(api, till)["lan"]["keys"]) == 2  # still in its grace
    move_clock(api, 120)
    assert [k["kid"] for k in catalog(api, till)["lan"]["keys"]] == [done["kid"]]  # expired: no longer handed out
    lan_keys.rotate(api.backend.ctx, api.store_id)
    assert old[0]["kid"] not in [row[0] for row in lan_rows(api, api.store_id)]  # and gone from the table


def test_rotations_in_a_hurry_hand_out_at_most_eight_keys(api):
    till = api.enroll()
    for _ in range(lan_roster.MAX_LAN_KEYS + 3):
        lan_keys.rotate(api.backend.ctx, api.store_id)
    lan = catalog(api, till)["lan"]
    assert len(lan["keys"]) == lan_roster.MAX_LAN_KEYS == len(lan_rows(api, api.store_id))
    assert wire.parse_catalog(catalog(api, till)).lan == lan


def test_revoking_a_till_rotates_its_stores_key_and_the_feed_tells_the_stores_tills_only(api):
    first, second, thief = api.enroll("Caja 1"), api.enroll("Caja 2"), api.enroll("Caja 3")
    stranger = other_store_till(api)
    before = catalog(api, first)["lan"]
    head = api.ok(api.client.get("/feed", headers=first.auth))["cursor"]
    stranger_head = api.ok(api.client.get("/feed", headers=stranger.auth))["cursor"]
    api.ok(api.client.post(f"/devices/{thief.id}/revoke", headers=api.admin))
    after = catalog(api, first)["lan"]
    assert [k["active"] for k in after["keys"]] == [True, False]
    assert after["keys"][1]["kid"] == before["keys"][0]["kid"]  # the old one in its grace
    assert [e["data"] for e in feed_types(api, first, head)] == [{"store_id": api.store_id}]
    assert [e["data"] for e in feed_types(api, second, head)] == [{"store_id": api.store_id}]
    assert feed_types(api, stranger, stranger_head) == []
    records = api.ok(api.client.get("/audit", headers=api.admin, params={"action": "device.revoke"}))["records"]
    assert after["keys"][0]["kid"] in json.dumps(records) and not any(
        s in json.dumps(records) for s in secrets_of(after))
    api.ok(api.client.post(f"/devices/{thief.id}/revoke", headers=api.admin))  # again: nothing rotates
    assert catalog(api, first)["lan"] == after


def test_an_enrollment_tells_the_other_tills_of_the_store_and_not_itself(api):
    first = api.enroll("Caja 1")
    head = api.ok(api.client.get("/feed", headers=first.auth))["cursor"]
    second = api.enroll("Caja 2")
    assert [e["data"] for e in feed_types(api, first, head)] == [{"store_id": api.store_id}]
    assert feed_types(api, second, head) == []  # its own answer carried the roster


def test_a_renamed_till_is_renamed_in_the_roster_and_its_peers_hear_of_it(api):
    first, second = api.enroll("Caja 1"), api.enroll("Caja 2")
    with_log_key(api, second)
    head = api.ok(api.client.get("/feed", headers=first.auth))["cursor"]
    api.ok(api.client.post(f"/devices/{second.id}/rename", headers=api.admin, json={"name": "Caja ☕ 2"}))
    assert [e["data"] for e in feed_types(api, first, head)] == [{"store_id": api.store_id}]
    assert [p["name"] for p in catalog(api, first)["lan"]["peers"]] == ["Caja ☕ 2"]


def test_lan_changed_writes_the_event_another_part_calls(api):
    till = api.enroll()
    head = api.ok(api.client.get("/feed", headers=till.auth))["cursor"]
    api.backend.ctx.storage.submit(lambda db: lan_keys.lan_changed(api.backend.ctx, db, api.store_id))
    assert [e["data"] for e in feed_types(api, till, head)] == [{"store_id": api.store_id}]


def test_a_till_that_hears_the_lan_event_downloads_the_catalog_at_once(api, tmp_path):
    first, thief = api.enroll("Caja 1"), api.enroll("Caja 2")
    for till in (first, thief):
        with_log_key(api, till)
    store = TillStore(tmp_path / "caja1.sqlite3", asset_keys_dir=None)
    store.save_enrollment({"device_id": first.id, "device_token": first.token, "retailer_id": api.retailer_id,
                           "store_id": first.store_id, "name": first.name, "keys": api.backend.public_keys},
                          "http://t")

    def sync():
        with BackendClient("http://t", first.token, transport=httpx.WSGITransport(app=App(api.backend))) as client:
            return sync_once(store, client)
    try:
        assert sync().catalog and not sync().catalog  # fresh: a round without news leaves it be
        before = store.lan_config()
        assert [p["device_id"] for p in before["peers"]] == [first.id, thief.id]
        api.ok(api.client.post(f"/devices/{thief.id}/revoke", headers=api.admin))
        summary = sync()
        assert summary.error is None and summary.catalog  # the lan event: downloaded now, not in 15 minutes
        after = store.lan_config()
        assert [p["device_id"] for p in after["peers"]] == [first.id]
        assert after["keys"][0]["active"] and after["keys"][0]["kid"] != before["keys"][0]["kid"]
        assert after["keys"][1] == {**before["keys"][0], "active": False}
    finally:
        store.close()


# --- whose secrets ---------------------------------------------------------------------------------------


def test_no_till_of_another_store_or_retailer_and_no_web_till_sees_a_stores_secrets(api):
    ours = catalog(api, api.enroll())["lan"]
    neighbour = catalog(api, other_store_till(api))["lan"]
    far = catalog(api, other_store_till(api, api.backend.create_retailer("Otro")["id"]))["lan"]
    assert not secrets_of(ours) & secrets_of(neighbour) and not secrets_of(ours) & secrets_of(far)
    assert not secrets_of(neighbour) & secrets_of(far)
    web = api.backend.create_web_till(api.store_id, "Tienda web")
    answer = api.client.get("/catalog", headers=bearer(web["token"]))
    assert "lan" not in answer.json() and not any(s in answer.text for s in secrets_of(ours))


def test_the_rotate_command_prints_kids_never_secrets(api, tmp_path):
    till = api.enroll()
    secret = catalog(api, till)["lan"]["keys"][0]["secret"]
    api.backend.close()  # the command is another process over the same folder and database

    def command(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "server_stub", "lan-key", "rotate", "--data", str(api.path),
                               *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    one = command("--store", api.store_id)
    assert one.returncode == 0, one.stderr
    rotated = json.loads(one.stdout)["rotated"]
    assert [r["store_id"] for r in rotated] == [api.store_id] and secret not in one.stdout + one.stderr
    every = command("--all")
    assert every.returncode == 0, every.stderr
    assert api.store_id in [r["store_id"] for r in json.loads(every.stdout)["rotated"]]
    unknown = command("--store", "sto_nothere")
    assert unknown.returncode == 1 and "not_found" in unknown.stderr
    assert command().returncode == 2  # --store or --all
    rows = lan_rows(api, api.store_id)
    assert len(rows) == 3 and [r[1] is None for r in rows] == [False, False, True]
    assert not any(secret in str(r) for r in api.rows("SELECT detail FROM audit_log"))


# --- two processes at once ------------------------------------------------------------------------------

_ASK = """
import sys, time
from server_stub.backend import Backend
from server_stub.operations import lan_keys
path, store_id, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
backend = Backend(path)
backend.ctx.storage.read().execute("SELECT 1").fetchall()
time.sleep(max(0.0, start - time.time()))
print(lan_keys.lan_of(backend.ctx, store_id)["keys"][0]["kid"])
backend.close()
"""


def test_two_processes_asking_at_once_make_one_active_key(api):
    store = api.backend.create_store(api.retailer_id, "Tienda nueva", "America/Asuncion")
    api.backend.close()
    start = str(time.time() + 3.0)
    procs = [subprocess.Popen([sys.executable, "-c", _ASK, str(api.path), store["id"], start], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    kids = {o[0].strip() for o in outs}
    assert len(kids) == 1 and [r[0] for r in lan_rows(api, store["id"])] == list(kids)


# --- the till's side: the parser and what the store keeps -------------------------------------------------

PUBLIC = till_log.public_key_of(till_log.new_private_key())
SECRET = base64.b64encode(b"k" * 32).decode()
KEY = {"kid": "lan_ab12", "secret": SECRET, "active": True}
PEER = {"device_id": "dev_1", "name": "Caja 1", "public_key": PUBLIC}


def hostile_lans() -> list:
    old = {**KEY, "kid": "lan_old", "active": False}
    return [
        "lan", [], {}, {"keys": []}, {"keys": {}}, {"keys": [KEY], "peers": {}},
        {"keys": [{**KEY, "kid": f"lan_{i}", "active": i == 0} for i in range(lan_roster.MAX_LAN_KEYS + 1)]},
        {"keys": [KEY], "peers": [{**PEER, "device_id": f"dev_{i}"} for i in range(lan_roster.MAX_PEERS + 1)]},
        {"keys": [{**KEY, "active": False}]}, {"keys": [KEY, {**KEY, "kid": "lan_2"}]},  # none, two active
        {"keys": [KEY, {**old, "kid": KEY["kid"]}]},  # a kid twice
        {"keys": [{**KEY, "active": 1}]}, {"keys": [{**KEY, "kid": ""}]}, {"keys": [{**KEY, "kid": "x" * 65}]},
        {"keys": [{**KEY, "kid": "lan_ñ"}]}, {"keys": [{**KEY, "kid": 7}]},
        {"keys": [{**KEY, "secret": base64.b64encode(b"k" * 31).decode()}]},
        {"keys": [{**KEY, "secret": base64.b64encode(b"k" * 33).decode()}]},
        {"keys": [{**KEY, "secret": "!" * 44}]}, {"keys": [{**KEY, "secret": "é" * 44}]},
        {"keys": [{**KEY, "secret": None}]}, {"keys": [{**KEY, "secret": "\ud800" * 44}]},
        {"keys": [KEY], "peers": [{**PEER, "public_key": "AAAA"}]},
        {"keys": [KEY], "peers": [{**PEER, "public_key": SECRET[:-1] + "\x00"}]},
        {"keys": [KEY], "peers": [{**PEER, "name": ""}]}, {"keys": [KEY], "peers": [{**PEER, "name": "x" * 201}]},
        {"keys": [KEY], "peers": [{**PEER, "name": "a\x00b"}]}, {"keys": [KEY], "peers": [{**PEER, "name": "\udc80"}]},
        {"keys": [KEY], "peers": [{**PEER, "name": 5}]}, {"keys": [KEY], "peers": [{**PEER, "device_id": "a/b"}]},
        {"keys": [KEY], "peers": [PEER, PEER]}, {"keys": [KEY], "peers": ["dev_1"]},
    ]


@pytest.mark.parametrize("lan", hostile_lans(), ids=range(len(hostile_lans())))
def test_a_hostile_lan_object_is_refused_without_quoting_a_secret(lan):
    with pytest.raises(ValueError) as refused:
        lan_roster.parse_lan(lan, "catalog")
    assert SECRET not in str(refused.value)


def test_a_fit_lan_object_passes_whole():
    lan = {"keys": [KEY, {**KEY, "kid": "lan_old", "active": False}],
           "peers": [PEER, {**PEER, "device_id": "dev_2", "name": "Caja 2 ☕ — ñandutí"}], "future": 1}
    assert lan_roster.parse_lan(lan, "catalog") == {"keys": lan["keys"], "peers": lan["peers"]}
    assert lan_roster.parse_lan(None, "catalog") is None
    assert wire.check_event("lan", {"store_id": "sto_1"}) == "sto_1"
    for data in (None, {}, {"store_id": ""}, {"store_id": 3}, {"store_id": "a\x00"}):
        with pytest.raises(ValueError):
            wire.check_event("lan", data)


@pytest.fixture
def till_store(tmp_path):
    store = TillStore(tmp_path / "till.db")
    yield store
    store.close()


def test_the_till_keeps_the_lan_of_its_enrollment_and_catalog_and_refuses_hostile_ones_whole(api, till_store):
    code = api.ok(api.client.post("/enrollment-codes", headers=api.admin, json={"store_id": api.store_id}), 201)
    answer = api.ok(api.client.post("/devices/enroll", json={"code": code["code"], "name": "Caja 1"}), 201)
    till_store.save_enrollment(answer, "http://t", name="Caja 1")
    assert till_store.lan_config() == answer["lan"]
    till = Till(answer["device_id"], answer["device_token"], "Caja 1", answer["store_id"])
    with_log_key(api, till)
    good = catalog(api, till)
    till_store.apply_catalog(good)
    assert till_store.lan_config() == good["lan"] and len(good["lan"]["peers"]) == 1
    kept = till_store.stored("lan", "catalog_mark", "store_name")
    for lan in hostile_lans():
        with pytest.raises(ValueError):
            till_store.apply_catalog({**good, "lan": lan, "store": {**good["store"], "name": "Cambiada"}})
        assert till_store.stored("lan", "catalog_mark", "store_name") == kept
    assert till_store.lan_config() == good["lan"]
    old_backend = {k: v for k, v in good.items() if k != "lan"}
    till_store.apply_catalog(old_backend)  # a backend without LAN sharing: nothing kept to trust
    assert till_store.lan_config() is None


def test_an_enrollment_answer_with_a_hostile_lan_is_refused_and_nothing_is_kept(till_store):
    answer = {"device_id": "dev_1", "device_token": "t", "retailer_id": "r1", "store_id": "s1", "keys": []}
    for lan in hostile_lans():
        with pytest.raises(ValueError):
            wire.parse_enrollment({**answer, "lan": lan})
        with pytest.raises(ValueError):
            till_store.save_enrollment({**answer, "lan": lan}, "http://t", name="Caja 1")
        assert till_store.stored("device_id", "device_token", "lan") == {}
    till_store.save_enrollment({**answer, "lan": {"keys": [KEY], "peers": [PEER]}}, "http://t", name="Caja 1")
    assert till_store.lan_config() == {"keys": [KEY], "peers": [PEER]} and till_store.device_id == "dev_1"


@pytest.mark.allow_log_warnings("the kept LAN keys and roster are unusable")
def test_a_hand_edited_lan_setting_is_no_config(till_store):
    with till_store.transaction():
        till_store.write_setting("lan", {"keys": [{**KEY, "secret": "short"}], "peers": []})
    till_store.reload_settings()
    assert till_store.lan_config() is None
    with till_store.transaction():
        till_store.write_setting("lan", {"keys": [KEY], "peers": [PEER]})
    till_store.reload_settings()
    assert till_store.lan_config() == {"keys": [KEY], "peers": [PEER]}
