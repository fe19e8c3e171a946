"""A hostile till against a backend with two retailers and honest tills beside it (a property test).

The hostile till is enrolled at retailer A and sends arbitrary sync batches
and online redemptions, made from what a stolen till knows (its catalog: token
ids, code digests, staff ids; the public printed codes and booklet tokens of
both retailers; other tills' keys) mixed with garbage. After every batch:

- no request was answered 500;
- A's honest till redeems and syncs cleanly, its feed cursor reaches the end of
  its retailer's log and its catalog is whole (every outstanding claim, every
  voucher);
- nothing of retailer B changed, and B's till syncs cleanly;
- no claim is used that no entry proved: every accepted token id is one whose
  token or short code some till actually scanned.
"""

from __future__ import annotations

import json
import sqlite3
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pos_app.core import codes
from pos_app.core.domain import Method
from pos_app.store import TillStore
from pos_app.sync.client import BackendClient
from pos_app.sync.round import sync_once
from server_stub.app import App
from server_stub.datadir import DB_NAME

from api_fixtures import bearer, copy_backend, new_key

B_TABLES = ("retailers", "stores", "vouchers", "printed_codes", "claims", "staff", "devices", "attempts",
            "events", "voids", "enrollment_codes")


class World:
    """Retailer A (the demo's) with an honest till and a hostile one; retailer B with its own till."""

    def __init__(self, api, root):
        self.api = api
        self.tokens: dict[str, str] = {}
        self.app = App(api.backend)
        self.transport = httpx.WSGITransport(app=self.app)
        self.http = httpx.Client(transport=self.transport, base_url="http://t/api/v1")
        admin = api.admin
        self.b_retailer = api.ok(self.http.post("/retailers", headers=admin, json={"name": "Otra Cadena"}), 201)["id"]
        self.b_store = api.ok(self.http.post("/stores", headers=admin,
                                             json={"retailer_id": self.b_retailer, "name": "Otra tienda"}), 201)["id"]
        b_personal = self._voucher(self.b_retailer, "personal")
        self.b_printed_voucher = self._voucher(self.b_retailer, "printed", total_limit=4, store_day_limit=4)
        api.ok(self.http.post("/printed-codes", headers=admin,
                              json={"voucher_id": self.b_printed_voucher, "code": "OTRA20"}), 201)
        self.b_claims = [api.ok(self.http.post("/claims", headers=admin, json={
            "voucher_id": b_personal, "customer_id": f"b{n}"}), 201) for n in range(3)]
        self.b_till = self._till(root / "b.sqlite3", self.b_store, "Caja B")
        self.a_till = self._till(root / "a.sqlite3", api.store_id, "Caja A honesta")
        hostile = api.enroll("Caja A robada")
        self.hostile = bearer(hostile.token)
        self.hostile_catalog = api.ok(self.http.get("/catalog", headers=self.hostile))
        a_personal = api.demo_voucher("personal")["id"]
        # Tokens the hostile till was shown by real customers (scanning them proves them),
        # and tokens it never saw (their claims must stay unused whatever it sends).
        self.shown = [api.claim(a_personal, f"shown{n}") for n in range(3)]
        self.unseen = [api.claim(a_personal, f"unseen{n}") for n in range(6)]
        self.proved: set[str] = set()
        # One honest redemption at A, so the hostile till has another till's key to aim at.
        early = api.claim(a_personal, "early")
        assert self.a_till[0].redeem_offline(early["token"], method=Method.CAMERA)[0].accepted
        self.proved.add(early["jti"])
        assert sync_once(*self.a_till).error is None
        self.pools = self._pools()  # fixed: hypothesis draws from the same pools every time
        self.b_snapshot = self.b_rows()

    def _voucher(self, retailer_id, kind, **extra):
        body = {"retailer_id": retailer_id, "kind": kind, "texts": {"es": {"title": "Otra"}},
                "discount": {"kind": "percent", "value": 10}, **extra}
        voucher = self.api.ok(self.http.post("/vouchers", headers=self.api.admin, json=body), 201)
        self.api.ok(self.http.post(f"/vouchers/{voucher['id']}/publish", headers=self.api.admin))
        return voucher["id"]

    def _till(self, path, store_id, name):
        code = self.api.ok(self.http.post("/enrollment-codes", headers=self.api.admin,
                                          json={"store_id": store_id}), 201)["code"]
        with BackendClient("http://t", transport=self.transport) as anonymous:
            answer = anonymous.enroll(code, name)
        store = TillStore(path)
        store.save_enrollment(answer, "http://t")
        store.set("velocity_limit", 0)
        client = BackendClient("http://t", answer["device_token"], transport=self.transport)
        assert sync_once(store, client).error is None
        self.tokens[name] = answer["device_token"]
        return store, client

    def b_rows(self) -> dict:
        conn = sqlite3.connect(f"file:{self.api.path / DB_NAME}?mode=ro", uri=True)
        try:
            b_devices = [r[0] for r in conn.execute("SELECT id FROM devices WHERE retailer_id = ?",
                                                    (self.b_retailer,))]
            rows = {}
            for table in B_TABLES:
                column = "id" if table == "retailers" else "retailer_id"
                rows[table] = sorted(map(repr, conn.execute(f"SELECT * FROM {table} WHERE {column} = ?",
                                                            (self.b_retailer,))))
            rows["pin_failures"] = sorted(map(repr, conn.execute(
                f"SELECT * FROM pin_failures WHERE device_id IN ({','.join('?' * len(b_devices))})", b_devices)))
            return rows
        finally:
            conn.close()

    def _pools(self) -> dict:
        catalog = self.hostile_catalog
        a_jtis = [c["jti"] for c in catalog["claims"]] + [c["jti"] for c in self.unseen]
        return {
            "input": [c["token"] for c in self.shown] + [c["short_code"] for c in self.shown]
            + [c["token"] for c in self.b_claims] + [c["short_code"] for c in self.b_claims]
            + [self.api.printed_code, "OTRA20", "otra-20", "=HYPERLINK(\"x\")", "", "☃" * 40, "A" * 5000],
            "jti": a_jtis + [c["jti"] for c in self.b_claims],
            "voucher_id": [v["id"] for v in catalog["vouchers"]] + [self.b_printed_voucher],
            "code": [self.api.printed_code, "OTRA20", *(c["code_digest"] for c in catalog["claims"])],
            "staff_id": [s["id"] for s in catalog["staff"]] + ["stf_nobody", "<b>x</b>"],
            # Other tills' redemption keys (to void or to take over) and fresh ones.
            "key": [a["key"] for a in self.a_till[0].attempts()[-4:]] + [new_key() for _ in range(4)],
        }


@pytest.fixture(scope="module")
def world(api_template, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    api = copy_backend(api_template, root / "backend")
    w = World(api, root)
    yield w
    for store, client in (w.a_till, w.b_till):
        client.close()
        store.close()
    w.http.close()
    api.close()


def _mostly(good, odd):
    """Mostly well-formed (a batch with one malformed entry is refused whole, harming nobody), sometimes odd."""
    return st.one_of(good, good, good, odd)


def _entries(pools: dict):
    text = st.text(max_size=40)
    pick = lambda name: _mostly(st.sampled_from(pools[name]), st.one_of(text, st.none()))  # noqa: E731
    # Offsets from the time of drawing: the strategy itself must not change between draws.
    at = _mostly(st.floats(-3 * 86400, 600).map(lambda offset: time.time() + offset),
                 st.one_of(st.sampled_from([0, 1, 1e300, -1.0, 2**53]),
                           st.sampled_from([400 * 86400, -400 * 86400]).map(lambda offset: time.time() + offset)))
    key = _mostly(st.one_of(st.sampled_from(pools["key"]), st.uuids().map(lambda u: u.hex)), text)
    redemption = st.fixed_dictionaries(
        {"key": key, "at": at, "accepted": _mostly(st.just(True), st.just(False)),
         "method": _mostly(st.sampled_from(Method.ALL), st.just("x")),
         "decided": _mostly(st.just("offline"), st.sampled_from(["online", "??"]))},
        optional={"input": pick("input"), "reason": pick("code"),
                  "kind": st.sampled_from(["personal", "printed", None]),
                  "voucher_id": pick("voucher_id"), "jti": pick("jti"), "code": pick("code"),
                  "staff_id": pick("staff_id")})
    void = st.fixed_dictionaries(
        {"type": st.just("void"), "key": key, "at": at, "redemption_key": key,
         "void_reason": _mostly(st.just("wrong voucher"), text),
         "staff_id": _mostly(st.sampled_from(pools["staff_id"]), text)},
        optional={"staff_proof": st.one_of(text, st.text("0123456789abcdef", min_size=64, max_size=64))})
    return st.lists(_mostly(redemption, void), min_size=1, max_size=8)


def _online(pools: dict):
    return st.fixed_dictionaries(
        {"input": st.one_of(st.sampled_from(pools["input"]), st.text(max_size=60)),
         "method": st.sampled_from(list(Method.ALL))},
        optional={"staff_id": st.one_of(st.sampled_from(pools["staff_id"]), st.none()),
                  "at": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.none())})


def _note_proved(world: World, text) -> None:
    """The claims a scanned text proves: its token's, or its short code's."""
    for claim in world.shown + world.b_claims + world.unseen:
        if not isinstance(text, str):
            continue
        if text == claim["token"]:
            world.proved.add(claim["jti"])
        elif codes.looks_like_short_code(text) and codes.normalize(text) == codes.normalize(claim["short_code"]):
            world.proved.add(claim["jti"])


def _check_honest_till(world: World, store: TillStore, client: BackendClient, retailer_id: str) -> None:
    summary = sync_once(store, client)
    assert summary.error is None and store.outbox_size() == 0, summary
    conn = sqlite3.connect(f"file:{world.api.path / DB_NAME}?mode=ro", uri=True)
    try:
        last = conn.execute("SELECT coalesce(max(seq), 0) FROM events WHERE retailer_id = ?",
                            (retailer_id,)).fetchone()[0]
        outstanding = conn.execute("SELECT count(*) FROM claims WHERE retailer_id = ? AND revoked_at IS NULL "
                                   "AND expires_at > strftime('%s', 'now')", (retailer_id,)).fetchone()[0]
        vouchers = conn.execute("SELECT count(*) FROM vouchers WHERE retailer_id = ?", (retailer_id,)).fetchone()[0]
    finally:
        conn.close()
    assert store.feed_cursor == last
    assert store.conn.execute("SELECT count(*) FROM claims").fetchone()[0] == outstanding
    assert store.conn.execute("SELECT count(*) FROM vouchers").fetchone()[0] == vouchers


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_a_hostile_till_harms_nobody(world, data):
    pools = world.pools
    batch = data.draw(_entries(pools), label="sync batch")
    online = data.draw(st.lists(_online(pools), max_size=3), label="online bodies")
    for entry in batch:
        _note_proved(world, entry.get("input"))
    answer = world.http.post("/sync", headers={**world.hostile, "Content-Type": "application/json"},
                             content=json.dumps({"entries": batch}))
    assert answer.status_code < 500, answer.text
    for body in online:
        _note_proved(world, body["input"])
        answer = world.http.post("/redemptions", headers={**world.hostile, "Idempotency-Key": new_key()},
                                 json=body)
        assert answer.status_code < 500, answer.text
    # A's honest till redeems a fresh customer's code offline, then syncs: all of it whole.
    store, client = world.a_till
    fresh = world.api.claim(world.api.demo_voucher("personal")["id"], f"fresh-{new_key()}")
    _check_honest_till(world, store, client, world.api.retailer_id)
    verdict, _ = store.redeem_offline(fresh["token"], method=Method.CAMERA)
    world.proved.add(fresh["jti"])
    assert verdict.accepted, verdict
    _check_honest_till(world, store, client, world.api.retailer_id)
    # Retailer B: untouched, and its till syncs.
    assert world.b_rows() == world.b_snapshot
    _check_honest_till(world, *world.b_till, world.b_retailer)
    # No claim used that no entry proved.
    conn = sqlite3.connect(f"file:{world.api.path / DB_NAME}?mode=ro", uri=True)
    try:
        used = {r[0] for r in conn.execute("SELECT jti FROM attempts WHERE status = 'accepted' AND jti IS NOT NULL")}
    finally:
        conn.close()
    assert used <= world.proved, used - world.proved
    assert not used & {c["jti"] for c in world.unseen}


def test_after_the_hostile_till_retailer_b_redeems_its_whole_limit(world):
    accepted = 0
    for _ in range(6):
        answer = world.http.post("/redemptions", headers={**bearer(world.tokens["Caja B"]), "Idempotency-Key": new_key()},
                                 json={"input": "OTRA20", "method": "printed"})
        assert answer.status_code in (201, 422), answer.text
        accepted += answer.status_code == 201
    assert accepted == 4
