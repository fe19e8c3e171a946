"""Entries are proofs, and the backend's clock decides (issue 14, findings 1 to 4; idempotency).

A hostile till talks to the real backend over its HTTP API (in-process WSGI,
through httpx) beside honest tills with real store files: whatever the hostile
one sends, no claim is used that its entries did not prove, nothing of another
retailer is touched, and every honest till still syncs.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid

import httpx
import pytest

from pos_app.core.domain import Method
from pos_app.store import TillStore
from pos_app.sync.client import BackendClient
from pos_app.sync.round import sync_once
from server_stub.app import API, App
from server_stub.backend import Backend
from server_stub.datadir import DB_NAME, DataDir
from server_stub.demo import add_demo_data

from api_fixtures import pg_query


class World:
    """One backend, its admin, and tills made through its API."""

    def __init__(self, root, database: str | None = None):
        self.root = root
        self.admin_token = DataDir(root / "backend").init(database)["admin_token"]
        self.backend = Backend(root / "backend")
        self.info = add_demo_data(self.backend)
        self.app = App(self.backend)
        self.http = httpx.Client(transport=httpx.WSGITransport(app=self.app), base_url=f"http://t{API}")
        self.admin = {"Authorization": f"Bearer {self.admin_token}"}
        self.stores: list[tuple[TillStore, BackendClient]] = []

    def ok(self, response: httpx.Response, status: int = 200) -> dict:
        assert response.status_code == status, response.text
        return response.json()

    def code(self, store_id: str) -> str:
        return self.ok(self.http.post("/enrollment-codes", headers=self.admin, json={"store_id": store_id}), 201)["code"]

    def device(self, name: str, store_id: str | None = None) -> dict:
        """A till enrolled through the API, with no store of its own (a hostile till speaks raw HTTP)."""
        answer = self.ok(self.http.post("/devices/enroll", json={"code": self.code(store_id or self.info["store_id"]),
                                                                 "name": name}), 201)
        return {"Authorization": f"Bearer {answer['device_token']}"}

    def till(self, name: str, store_id: str | None = None) -> tuple[TillStore, BackendClient]:
        """An honest till: a real store file, enrolled and synced once."""
        transport = httpx.WSGITransport(app=self.app)
        with BackendClient("http://t", transport=transport) as anonymous:
            answer = anonymous.enroll(self.code(store_id or self.info["store_id"]), name)
        store = TillStore(self.root / f"{name}.sqlite3")
        store.save_enrollment(answer, "http://t")
        client = BackendClient("http://t", answer["device_token"], transport=transport)
        assert sync_once(store, client).error is None
        self.stores.append((store, client))
        return store, client

    def voucher(self, retailer_id: str, kind: str, **extra) -> dict:
        body = {"retailer_id": retailer_id, "kind": kind, "texts": {"es": {"title": "Prueba"}},
                "discount": {"kind": "percent", "value": 10}, **extra}
        made = self.ok(self.http.post("/vouchers", headers=self.admin, json=body), 201)
        return self.ok(self.http.post(f"/vouchers/{made['id']}/publish", headers=self.admin))

    def claim(self, voucher_id: str | None = None, customer: str = "c1") -> dict:
        return self.ok(self.http.post("/claims", headers=self.admin, json={
            "voucher_id": voucher_id or self.personal_id, "customer_id": customer}), 201)

    @property
    def personal_id(self) -> str:
        return next(v for v in self.info["vouchers"] if v["kind"] == "personal")["id"]

    def sync(self, headers: dict, entries: list[dict], **extra) -> list[dict]:
        return self.ok(self.http.post("/sync", headers=headers, json={"entries": entries, **extra}))["results"]

    def redeem(self, headers: dict, text: str, *, method: str = Method.CAMERA, key: str | None = None,
               **extra) -> httpx.Response:
        return self.http.post("/redemptions", headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex},
                              json={"input": text, "method": method, **extra})

    def rows(self, sql: str, params=()) -> list[tuple]:
        if self.backend.database is not None:
            return pg_query(self.backend.database, lambda c: c.execute(sql, params).fetchall())
        conn = sqlite3.connect(f"file:{self.root / 'backend' / DB_NAME}?mode=ro", uri=True)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def close(self) -> None:
        for store, client in self.stores:
            client.close()
            store.close()
        self.http.close()
        self.backend.close()


@pytest.fixture
def world(tmp_path, backend_database):
    made = World(tmp_path, backend_database)
    yield made
    made.close()


def entry(**fields) -> dict:
    """A redemption entry as a till sends it; the test says what it claims and what it scanned."""
    return {"key": uuid.uuid4().hex, "at": time.time() - 1, "accepted": True, "reason": None, "kind": "personal",
            "voucher_id": None, "jti": None, "code": None, "method": Method.CAMERA, "staff_id": None,
            "decided": "offline", **fields}


def accepted_uses(world: World, jti: str) -> int:
    return world.rows("SELECT count(*) FROM attempts WHERE jti = ? AND status = 'accepted'", (jti,))[0][0]


# --- finding 1: one entry must not stall every other till's feed and catalog ---------------------


def test_an_unproven_accepted_entry_is_a_dispute_and_every_other_till_still_syncs(world):
    hostile = world.device("Caja hostil")
    honest, client = world.till("Caja 1")
    events = world.rows("SELECT count(*) FROM events")[0][0]
    # as the finding had it (no input, an entry of the old shape), then with garbage for input
    results = world.sync(hostile, [entry(voucher_id=None)])
    assert [(r["status"], r.get("dispute"), r.get("reason")) for r in results] == [
        ("recorded", "unproven", "malformed")]
    results += world.sync(hostile, [entry(voucher_id=None, input="garbage ☃")])
    assert [(r["status"], r["dispute"], r["reason"]) for r in results] == [
        ("recorded", "unproven", "malformed"), ("recorded", "till_accepted", "malformed")]
    assert world.rows("SELECT status, voucher_id, dispute FROM attempts WHERE key IN (?, ?) ORDER BY id",
                      (results[0]["key"], results[1]["key"])) == [("refused", None, "unproven"),
                                                                  ("refused", None, "till_accepted")]
    assert world.rows("SELECT count(*) FROM events")[0][0] == events  # nothing for any till to apply

    late = world.voucher(world.info["retailer_id"], "personal")  # the catalog must reach the honest till
    summary = sync_once(honest, client)
    assert summary.error is None
    assert honest.feed_cursor == world.rows("SELECT max(seq) FROM events")[0][0]
    assert late["id"] in {v.id for v in honest.vouchers()}


def test_an_online_time_that_is_no_time_is_refused_and_writes_nothing(world):
    hostile = world.device("Caja hostil")
    honest, client = world.till("Caja 1")
    before = world.rows("SELECT count(*), coalesce(max(seq), 0) FROM events")
    attempts = world.rows("SELECT count(*) FROM attempts")
    for at in (1e300, 1e308, -5, 2**62):
        answer = world.redeem(hostile, "CAFE50", method=Method.PRINTED, at=at)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_value", answer.text
    assert world.rows("SELECT count(*) FROM attempts") == attempts
    assert world.rows("SELECT count(*), coalesce(max(seq), 0) FROM events") == before
    refused = world.ok(world.http.post("/sync", headers=hostile, json={"entries": [entry(at=1e308)]}), 400)
    assert refused["error"]["code"] == "invalid_value"
    assert sync_once(honest, client).error is None


# --- finding 2: one retailer's till cannot use up another's limit ------------------------------


def test_a_till_cannot_use_up_another_retailers_printed_limit(world):
    other = world.ok(world.http.post("/retailers", headers=world.admin, json={"name": "Otra SA"}), 201)
    shop = world.ok(world.http.post("/stores", headers=world.admin,
                                    json={"retailer_id": other["id"], "name": "Otra tienda"}), 201)
    limited = world.voucher(other["id"], "printed", total_limit=2)
    world.ok(world.http.post("/printed-codes", headers=world.admin, json={"voucher_id": limited["id"],
                                                                           "code": "OTRA20"}), 201)
    hostile = world.device("Caja A")
    theirs = world.device("Caja B", shop["id"])
    static = world.backend.static_token("OTRA20")
    named = [entry(kind="printed", voucher_id=limited["id"], code="OTRA20", method=Method.PRINTED, **proof)
             for proof in ({}, {}, {"input": "OTRA20"}, {"input": limited["id"]}, {"input": static})]
    results = world.sync(hostile, named[:2])
    assert world.rows("SELECT count(*) FROM attempts WHERE status = 'accepted'") == [(0,)]
    results += world.sync(hostile, named[2:])
    assert [r["dispute"] for r in results] == ["unproven"] * 2 + ["till_accepted"] * 3
    assert world.rows("SELECT count(*) FROM attempts WHERE status = 'accepted'") == [(0,)]
    assert world.rows("SELECT DISTINCT voucher_id FROM attempts WHERE device_id != ''") == [(None,)]
    # B's tills still get B's whole limit, and no more
    assert [world.redeem(theirs, "OTRA20", method=Method.PRINTED).status_code for _ in range(3)] == [201, 201, 422]


# --- finding 3: the catalog's token ids are no proof -------------------------------------------


def test_naming_every_claim_of_the_catalog_uses_none_and_honest_offline_redemptions_still_count(world):
    claims = [world.claim(customer=f"c{n}") for n in range(5)]
    hostile = world.device("Caja hostil")
    catalog = world.ok(world.http.get("/catalog", headers=hostile))
    jtis = [c["jti"] for c in catalog["claims"]]
    assert {c["jti"] for c in claims} <= set(jtis)
    manager = next(s for s in world.info["staff"] if s["role"] == "manager")
    forged = [entry(jti=jti, voucher_id=world.personal_id, staff_id=manager["id"], **extra)
              for jti in jtis for extra in ({}, {"input": jti}, {"input": "eyJ0.eyJ0.c2ln"})]
    results = world.sync(hostile, forged[::3])  # no input: the entries of the finding
    assert world.rows("SELECT count(*) FROM attempts WHERE status = 'accepted'") == [(0,)]
    results += world.sync(hostile, [f for n, f in enumerate(forged) if n % 3])
    assert {r["status"] for r in results} == {"recorded"} and {r["dispute"] for r in results} == {
        "unproven", "till_accepted"}
    assert world.rows("SELECT count(*) FROM attempts WHERE status = 'accepted'") == [(0,)]
    # the named manager may work at this store, so the name stays; what the till said is kept aside
    assert world.rows("SELECT DISTINCT staff_id FROM attempts") == [(manager["id"],)]
    honest, client = world.till("Caja 1")
    for claim in claims[:4]:  # the real customers redeem online: accepted
        assert world.redeem(hostile, claim["token"]).status_code == 201
    # an honest till's offline redemption of a real token is recorded accepted
    verdict, _ = honest.redeem_offline(claims[4]["token"], method=Method.CAMERA)
    assert verdict.accepted
    summary = sync_once(honest, client)
    assert summary.error is None and summary.recorded == 1
    assert world.rows("SELECT status, dispute, input FROM attempts WHERE jti = ? AND status = 'accepted'",
                      (claims[4]["jti"],)) == [("accepted", None, claims[4]["token"])]


def test_staff_of_another_store_or_retailer_is_not_taken_from_an_entry(world):
    hostile = world.device("Caja hostil")
    other = world.ok(world.http.post("/stores", headers=world.admin,
                                     json={"retailer_id": world.info["retailer_id"], "name": "Sucursal 2"}), 201)
    elsewhere = world.ok(world.http.post("/staff", headers=world.admin, json={
        "retailer_id": world.info["retailer_id"], "store_id": other["id"], "name": "Eva", "role": "manager",
        "pin": "246813"}), 201)
    results = world.sync(hostile, [entry(kind="printed", input="CAFE50", staff_id=elsewhere["id"],
                                         reason="<script>", method=Method.PRINTED)])
    assert results[0]["status"] == "recorded" and "dispute" not in results[0]
    row = world.rows("SELECT staff_id, till_verdict FROM attempts WHERE key = ?", (results[0]["key"],))[0]
    assert row[0] is None and f'"staff_id":"{elsewhere["id"]}"' in row[1] and '"reason":null' in row[1]


def test_head_office_staff_are_taken_from_an_entry_only_where_the_retailer_lets_them_work(world):
    till = world.device("Caja 1")
    head = world.ok(world.http.post("/staff", headers=world.admin, json={
        "retailer_id": world.info["retailer_id"], "name": "Gerencia", "role": "admin", "pin": "975310"}), 201)
    kept = []
    for allowed in (True, False):
        world.ok(world.http.post(f"/retailers/{world.info['retailer_id']}/settings", headers=world.admin,
                                 json={"staff_anywhere": allowed}))
        result = world.sync(till, [entry(kind="printed", input="CAFE50", staff_id=head["id"],
                                         method=Method.PRINTED)])[0]
        kept += world.rows("SELECT staff_id FROM attempts WHERE key = ?", (result["key"],))[0]
    assert kept == [head["id"], None]


def test_a_voids_time_is_bounded_as_a_redemptions_is(world):
    store, client = world.till("Caja 1")
    verdict, _ = store.redeem_offline("CAFE50", method=Method.PRINTED, printed_only=True)
    assert verdict.accepted and sync_once(store, client).error is None
    key = store.attempts()[-1]["key"]
    manager = next(s for s in world.info["staff"] if s["role"] == "manager")
    claimed = time.time() + 400 * 86400  # a till clock a year ahead
    void = {"type": "void", "key": uuid.uuid4().hex, "at": claimed, "redemption_key": key,
            "void_reason": "wrong voucher", "staff_id": manager["id"]}
    assert world.sync({"Authorization": f"Bearer {store.device_token}"}, [void])[0]["status"] == "recorded"
    (at, received), = world.rows("SELECT at, received_at FROM voids WHERE key = ?", (void["key"],))
    assert at <= received + world.backend.config["leeway_s"] < claimed


def test_a_revocation_counts_from_its_time_and_a_till_refusal_uses_nothing(world):
    hostile = world.device("Caja hostil")
    early, late, refused = (world.claim(customer=f"c{n}") for n in range(3))
    at = time.time() - 5
    world.ok(world.http.post(f"/claims/{late['jti']}/revoke", headers=world.admin))  # revoked after the attempt
    time.sleep(0.01)
    results = world.sync(hostile, [entry(input=late["token"], at=at)])
    assert results[0] == {"key": results[0]["key"], "status": "recorded"}
    world.ok(world.http.post(f"/claims/{early['jti']}/revoke", headers=world.admin))
    results = world.sync(hostile, [entry(input=early["token"], at=time.time()),
                                   entry(accepted=False, reason="expired", input=refused["token"])])
    assert [(r.get("dispute"), r.get("reason")) for r in results] == [("till_accepted", "revoked"),
                                                                      ("till_refused", None)]
    assert accepted_uses(world, refused["jti"]) == 0
    assert world.redeem(hostile, refused["token"]).status_code == 201  # the customer got nothing: still good


# --- finding 4: the backend's clock decides -------------------------------------------------------


def test_online_limits_count_by_the_backends_clock(world):
    till = world.device("Caja 1")
    printed = world.voucher(world.info["retailer_id"], "printed")
    world.ok(world.http.post("/printed-codes", headers=world.admin, json={"voucher_id": printed["id"],
                                                                           "code": "VELOZ1"}), 201)
    statuses = [world.redeem(till, "VELOZ1", method=Method.PRINTED, at=time.time() - 7200).status_code
                for _ in range(45)]
    assert statuses.count(201) <= 40 and statuses[-1] == 422
    daily = world.voucher(world.info["retailer_id"], "printed", store_day_limit=3)
    world.ok(world.http.post("/printed-codes", headers=world.admin, json={"voucher_id": daily["id"],
                                                                           "code": "DIA3"}), 201)
    other = world.device("Caja 2")
    statuses = [world.redeem(other, "DIA3", method=Method.PRINTED, at=time.time() - 2 * 86400).status_code
                for _ in range(6)]
    assert statuses == [201, 201, 201, 422, 422, 422]
    now = time.time()
    (at, till_at), = world.rows("SELECT at, till_at FROM attempts WHERE voucher_id = ? LIMIT 1", (daily["id"],))
    assert abs(at - now) < 60 and abs(till_at - (now - 2 * 86400)) < 60


def test_offline_times_are_corrected_by_the_skew_bounded_and_flagged(world):
    hostile = world.device("Caja hostil")
    now = time.time()
    ahead = 3600.0  # this till's clock runs an hour fast
    entries = [entry(kind="printed", input="CAFE50", at=now + ahead - 10),
               entry(kind="printed", input="CAFE50", at=now + ahead + 86400),
               entry(kind="printed", input="CAFE50", at=now + ahead - 365 * 86400)]
    results = world.sync(hostile, entries, till_time=now + ahead)
    assert [r.get("time_flag") for r in results] == [None, "future", "too_old"]
    rows = world.rows("SELECT at, till_at, time_flag FROM attempts WHERE key IN (?, ?, ?) ORDER BY id",
                      tuple(e["key"] for e in entries))
    assert abs(rows[0][0] - (now - 10)) < 5 and rows[0][1] == entries[0]["at"]
    enrolled = world.rows("SELECT max(enrolled_at) FROM devices")[0][0]
    assert now < rows[1][0] <= time.time() + 60 and rows[1][1:] == (entries[1]["at"], "future")
    assert abs(rows[2][0] - (enrolled - 60)) < 1 and rows[2][1:] == (entries[2]["at"], "too_old")
    refused = world.ok(world.http.post("/sync", headers=hostile, json={"entries": [], "till_time": 1e300}), 400)
    assert refused["error"]["code"] == "invalid_value"


# --- idempotency --------------------------------------------------------------------------------------


def test_a_key_reused_with_another_body_is_refused_online_and_in_sync(world):
    till = world.device("Caja 1")
    claim, other = world.claim(customer="c1"), world.claim(customer="c2")
    personal_key, printed_key = uuid.uuid4().hex, uuid.uuid4().hex
    first = world.redeem(till, claim["token"], key=personal_key)
    assert first.status_code == 201
    assert world.redeem(till, "CAFE50", method=Method.PRINTED, key=printed_key).status_code == 201
    attempts = world.rows("SELECT count(*) FROM attempts")
    # an honest retry (the till's clock moved on) is answered as the first time
    again = world.redeem(till, claim["token"], key=personal_key, at=time.time())
    assert (again.status_code, again.content) == (201, first.content)
    # another body: through the writer (a printed code is judged there) and through the insert's race path
    for key, text, method in ((personal_key, "CAFE50", Method.PRINTED), (printed_key, other["token"], Method.CAMERA),
                              (personal_key, claim["token"], Method.TYPED)):
        answer = world.redeem(till, text, method=method, key=key)
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "idempotency_mismatch", answer.text
    assert world.rows("SELECT count(*) FROM attempts") == attempts
    assert world.redeem(till, other["token"]).status_code == 201  # nothing of it was used

    sent = entry(kind="printed", input="CAFE50")
    assert world.sync(till, [sent])[0]["status"] == "recorded"
    assert world.sync(till, [sent])[0] == {"key": sent["key"], "status": "duplicate"}
    assert world.sync(till, [{**sent, "input": "OTRO99"}])[0] == {
        "key": sent["key"], "status": "rejected", "reason": "idempotency_mismatch"}
    # an online attempt's key, sent again from the outbox with what was scanned: a duplicate
    assert world.sync(till, [entry(key=personal_key, input=claim["token"])])[0]["status"] == "duplicate"


def test_an_entry_sent_again_is_answered_with_the_judgement_it_had(world):
    """A till that lost the sync answer sends the entry again: the duplicate says what the first answer said."""
    till = world.device("Caja 1")
    disputed = entry(input="garbage ☃")
    first = world.sync(till, [disputed])[0]
    assert (first["status"], first["dispute"], first["reason"]) == ("recorded", "till_accepted", "malformed")
    assert world.sync(till, [disputed])[0] == {**first, "status": "duplicate"}
    clean = entry(kind="printed", input="CAFE50", method=Method.PRINTED)
    assert world.sync(till, [clean])[0] == {"key": clean["key"], "status": "recorded"}
    assert world.sync(till, [clean])[0] == {"key": clean["key"], "status": "duplicate"}
    manager = next(s for s in world.info["staff"] if s["role"] == "manager")
    void = {"type": "void", "key": uuid.uuid4().hex, "at": time.time(), "redemption_key": clean["key"],
            "void_reason": "wrong voucher", "staff_id": manager["id"]}
    answered = world.sync(till, [void])[0]
    assert (answered["status"], answered["verified"]) == ("recorded", False)
    assert world.sync(till, [void])[0] == {"key": void["key"], "status": "duplicate", "verified": False}


# --- disputes reach the manager -------------------------------------------------------------------


def test_disputes_appear_in_the_daily_report(world):
    hostile = world.device("Caja hostil")
    claim = world.claim()
    results = world.sync(hostile, [entry(jti=claim["jti"], voucher_id=world.personal_id, input="nope"),
                                   entry(kind="printed", input="CAFE50", at=time.time() + 86400)])
    # The store keeps its own day, which may be this machine's yesterday or tomorrow.
    for offset in (0, -1, 1):
        day = time.strftime("%Y-%m-%d", time.localtime(time.time() + offset * 86400))
        report = world.ok(world.http.get("/reports/daily", headers=world.admin,
                                         params={"store": world.info["store_id"], "date": day}))
        if report["disputes"]:
            break
    disputes = {d["key"]: d for d in report["disputes"]}
    assert disputes[results[0]["key"]]["dispute"] == "till_accepted"
    assert disputes[results[0]["key"]]["till_said"]["jti"] == claim["jti"]
    assert disputes[results[0]["key"]]["till"] == "Caja hostil"
    assert disputes[results[1]["key"]]["time_flag"] == "future" and disputes[results[1]["key"]]["dispute"] is None


# --- finding 1 as it was found: a real backend process on loopback, a real till beside it -----------


def test_on_loopback_a_poisoned_entry_and_a_time_of_1e300_leave_other_tills_syncing(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import sync_kill_soak as harness  # a granian backend process and enrolled tills

    made = harness.make_world(tmp_path, claims=1, tills=2)
    backend = made["backend"]
    try:
        (_, hostile_token, _), (honest_path, honest_token, _) = made["tills"]
        hostile = {"Authorization": f"Bearer {hostile_token}"}
        with httpx.Client(base_url=backend.url + API, timeout=10) as raw:
            answer = raw.post("/sync", headers=hostile, json={"entries": [entry(voucher_id=None)]})
            assert answer.status_code == 200 and answer.json()["results"][0]["dispute"] == "unproven"
            online = raw.post("/redemptions", headers={**hostile, "Idempotency-Key": uuid.uuid4().hex},
                              json={"input": "CAFE50", "method": Method.PRINTED, "at": 1e300})
            assert online.status_code == 400 and online.json()["error"]["code"] == "invalid_value"
            late = raw.post("/vouchers", headers={"Authorization": f"Bearer {made['admin']}"}, json={
                "retailer_id": raw.get("/catalog", headers=hostile).json()["retailer"]["id"], "kind": "personal",
                "texts": {"es": {"title": "Tarde"}}, "discount": {"kind": "percent", "value": 5}}).json()
            raw.post(f"/vouchers/{late['id']}/publish", headers={"Authorization": f"Bearer {made['admin']}"})
        with TillStore(honest_path) as store, BackendClient(backend.url, honest_token, timeout=10) as client:
            summary = sync_once(store, client)
            assert summary.error is None
            assert late["id"] in {v.id for v in store.vouchers()}
            feed = client.feed(store.feed_cursor)
            assert feed["events"] == [] and feed["more"] is False  # the cursor reached the end
    finally:
        backend.stop()


def test_an_entry_queued_before_entries_carried_input_gets_it_from_its_attempt(world):
    honest, client = world.till("Caja 1")
    claim = world.claim()
    verdict, _ = honest.redeem_offline(claim["token"], method=Method.CAMERA)
    assert verdict.accepted
    # as an older version of the till queued it: no input in the entry
    (key, payload), = honest.conn.execute("SELECT key, payload FROM outbox").fetchall()
    old = {name: value for name, value in json.loads(payload).items() if name != "input"}
    with honest.transaction():
        honest.conn.execute("UPDATE outbox SET payload = ? WHERE key = ?", (json.dumps(old), key))
    assert honest.outbox_batch()[0]["input"] == claim["token"]
    assert sync_once(honest, client).error is None
    assert world.rows("SELECT status, dispute FROM attempts WHERE key = ?", (key,)) == [("accepted", None)]
