"""The till's online-first redemption and sync round against the real backend,
in one process (httpx WSGITransport), with real store files."""

from __future__ import annotations

import time

import httpx
import pytest

from pos_app.sync.client import BackendClient
from pos_app.core.domain import Method
from pos_app.sync.redeem import redeem
from pos_app.store import TillStore
from pos_app.sync.round import sync_once
from server_stub.app import App
from server_stub.backend import Backend
from server_stub.datadir import DataDir
from server_stub.demo import add_demo_data


@pytest.fixture
def world(tmp_path, backend_database):
    DataDir(tmp_path / "backend").init(backend_database)
    backend = Backend(tmp_path / "backend")
    info = add_demo_data(backend)
    app = App(backend)
    tills = []

    def till(name: str, code_index: int):
        transport = httpx.WSGITransport(app=app)
        with BackendClient("http://t", transport=transport) as anonymous:
            answer = anonymous.enroll(info["enrollment_codes"][code_index], name)
        store = TillStore(tmp_path / f"{name}.sqlite3")
        store.save_enrollment(answer, "http://t")
        client = BackendClient("http://t", answer["device_token"], transport=transport)
        sync_once(store, client)
        tills.append((store, client))
        return store, client

    yield backend, info, till
    for store, client in tills:
        client.close()
        store.close()
    backend.close()


def personal(info, n=0):
    return [v for v in info["vouchers"] if v["kind"] == "personal"][n]["id"]


def test_online_first_then_offline_when_unreachable(world):
    backend, info, till = world
    store, client = till("Caja 1", 0)
    claim = backend.create_claim(personal(info), "c1")
    online = redeem(store, claim["token"], method=Method.CAMERA, client=client)
    assert online.verdict.accepted and online.decided == "online"
    assert store.outbox_size() == 0  # the backend has it already
    # The backend is unreachable (nothing listens on port 9): decided here, queued.
    second = backend.create_claim(personal(info, 1), "c2")
    sync_once(store, client)
    with BackendClient("http://127.0.0.1:9", "x", timeout=0.5) as dead:
        offline = redeem(store, second["token"], method=Method.CAMERA, client=dead)
    assert offline.verdict.accepted and offline.decided == "offline" and offline.note
    assert store.outbox_size() == 1
    summary = sync_once(store, client)
    assert summary.recorded == 1 and summary.outbox == 0
    # The offline one went up with its key: the backend knows it is redeemed.
    status, body = client.redeem("k" * 16, input=second["token"], method=Method.CAMERA, staff_id=None,
                                 at=time.time())
    assert status == 409 and body["verdict"]["reason"] == "already_redeemed"
    # And this till, knowing it, refuses it without a round trip.
    again = redeem(store, second["token"], method=Method.CAMERA, client=client)
    assert again.verdict.reason == "already_redeemed" and again.decided == "offline"


def test_crash_after_the_backend_answered_is_learned_by_key(world):
    backend, info, till = world
    store, client = till("Caja 1", 0)
    claim = backend.create_claim(personal(info), "c1")
    key = store.begin_online(claim["token"], method=Method.CAMERA)
    status, _ = client.redeem(key, input=claim["token"], method=Method.CAMERA, staff_id=None, at=time.time())
    assert status == 201
    # ... the till dies here, before recording the answer.
    assert [p["key"] for p in store.pending_online()] == [key]
    summary = sync_once(store, client)
    assert summary.pending_settled == 1 and store.pending_online() == []
    local = redeem(store, claim["token"], method=Method.CAMERA)  # offline
    assert local.verdict.reason == "already_redeemed"


def test_crash_before_the_backend_heard_makes_no_redemption(world):
    backend, info, till = world
    store, client = till("Caja 1", 0)
    claim = backend.create_claim(personal(info), "c1")
    store.begin_online(claim["token"], method=Method.CAMERA)  # ... and the till dies
    sync_once(store, client)
    assert store.pending_online() == [] and store.outbox_size() == 0
    accepted = redeem(store, claim["token"], method=Method.CAMERA, client=client)
    assert accepted.verdict.accepted


def test_outbox_drains_in_batches_of_at_most_500(world):
    backend, info, till = world
    store, client = till("Caja 1", 0)
    store.set("velocity_limit", 0)
    printed = next(v for v in info["vouchers"] if v["kind"] == "printed")["code"]
    for _ in range(1100):
        redeem(store, "garbage ☃", method=Method.TYPED)  # refusals are uploaded too
    for _ in range(150):
        redeem(store, printed, method=Method.PRINTED)
    assert store.outbox_size() == 1250
    sizes = []
    real_sync = client.sync
    client.sync = lambda entries, **extra: sizes.append(len(entries)) or real_sync(entries, **extra)
    summary = sync_once(store, client)
    assert sizes == [500, 500, 250]
    assert summary.recorded == 1250 and summary.outbox == 0
    # Pushing again sends nothing: the backend confirmed every entry.
    assert sync_once(store, client).pushed == 0


def test_two_tills_offline_conflict_first_wins(world):
    backend, info, till = world
    one, c1 = till("Caja 1", 0)
    two, c2 = till("Caja 2", 1)
    claim = backend.create_claim(personal(info), "c1")
    assert redeem(one, claim["token"], method=Method.CAMERA).verdict.accepted
    assert redeem(two, claim["token"], method=Method.CAMERA).verdict.accepted  # neither heard of the other
    assert sync_once(one, c1).recorded == 1
    summary = sync_once(two, c2)
    assert summary.conflicts == 1
    assert two.stats()["conflicts"] == 1
    assert backend.read().execute("SELECT count(*) FROM attempts WHERE status = 'accepted' AND jti = ?",
                                  (claim["jti"],)).fetchone()[0] == 1


def test_unreachable_backend_keeps_everything(world):
    backend, info, till = world
    store, client = till("Caja 1", 0)
    claim = backend.create_claim(personal(info), "c1")
    sync_once(store, client)
    redeem(store, claim["token"], method=Method.CAMERA)
    with BackendClient("http://127.0.0.1:9", "x", timeout=0.5) as dead:
        summary = sync_once(store, dead)
    assert summary.error and summary.outbox == 1
    assert store.get("last_error")["error"]


def test_offline_overshoot_of_a_printed_limit_is_recorded_and_reported(world):
    backend, info, till = world
    one, c1 = till("Caja 1", 0)
    two, c2 = till("Caja 2", 1)
    voucher = backend.create_voucher({"retailer_id": info["retailer_id"], "kind": "printed", "total_limit": 2,
                                      "texts": {"es": {"title": "Dos nada más"}},
                                      "discount": {"kind": "percent", "value": 10}})
    backend.change_voucher(voucher["id"], "publish")
    code = backend.create_printed_code(voucher["id"], "DOSNADA")["code"]
    for store, client in ((one, c1), (two, c2)):
        assert sync_once(store, client).catalog  # the feed showed the new voucher: catalog downloaded
        for _ in range(2):  # each till alone stays within the limit
            assert redeem(store, code, method=Method.PRINTED).verdict.accepted
    assert sync_once(one, c1).over_limit == 0
    assert sync_once(two, c2).over_limit == 2  # both kept at the backend, and reported
    assert two.sync_figures()["over_limit"] == 2
    assert backend.read().execute("SELECT count(*) FROM attempts WHERE voucher_id = ? AND status = 'accepted'",
                                  (voucher["id"],)).fetchone()[0] == 4
    # Heard through the feed, the limit is reached at the first till too.
    sync_once(one, c1)
    assert redeem(one, code, method=Method.PRINTED).verdict.reason == "limit_reached"


def _printed(backend, info, code_text, **limits):
    voucher = backend.create_voucher({"retailer_id": info["retailer_id"], "kind": "printed", **limits,
                                      "texts": {"es": {"title": "Con límite"}},
                                      "discount": {"kind": "percent", "value": 10}})
    backend.change_voucher(voucher["id"], "publish")
    return voucher, backend.create_printed_code(voucher["id"], code_text)["code"]


@pytest.mark.parametrize("limits", [{"total_limit": 2}, {"store_day_limit": 2}, {"store_day_limit": 5, "total_limit": 2}])
def test_a_limit_the_backend_answered_is_kept_offline(world, limits):
    backend, info, till = world
    one, c1 = till("Caja 1", 0)
    two, c2 = till("Caja 2", 1)  # the demo's enrollment codes are all of one store
    voucher, code = _printed(backend, info, "LIMITADO", **limits)
    for store, client in ((one, c1), (two, c2)):
        sync_once(store, client)
    assert one.store_id == two.store_id
    for _ in range(2):
        assert redeem(one, code, method=Method.PRINTED, client=c1).verdict.accepted
    # Caja 2 has not heard of Caja 1's uses (no sync since): the backend says no.
    online = redeem(two, code, method=Method.PRINTED, client=c2)
    assert online.decided == "online" and online.verdict.reason == "limit_reached"
    # One second later the network is gone: the till must not accept what the backend just refused.
    with BackendClient("http://127.0.0.1:9", "x", timeout=0.5) as dead:
        offline = redeem(two, code, method=Method.PRINTED, client=dead, clock=lambda: time.time() + 1)
    assert offline.decided == "offline" and offline.verdict.reason == "limit_reached"
    # Reopened (a restart), it still knows.
    path = two.path
    two.close()
    again = TillStore(path)
    try:
        assert redeem(again, code, method=Method.PRINTED).verdict.reason == "limit_reached"
    finally:
        again.close()


def test_a_raised_limit_passes_the_remembered_one(world):
    backend, info, till = world
    one, c1 = till("Caja 1", 0)
    two, c2 = till("Caja 2", 1)
    voucher, code = _printed(backend, info, "SUBIDO", total_limit=1)
    for store, client in ((one, c1), (two, c2)):
        sync_once(store, client)
    assert redeem(one, code, method=Method.PRINTED, client=c1).verdict.accepted
    assert redeem(two, code, method=Method.PRINTED, client=c2).verdict.reason == "limit_reached"
    assert [(r["voucher_id"], r["scope"], r["bound"]) for r in two.printed_limits()] == [(voucher["id"], "total", 1)]
    # The catalog now says the limit is 3: the backend's count (1) is below it, so offline it accepts
    # up to the new limit, counting from the remembered 1.
    catalog = c2.catalog()
    for v in catalog["vouchers"]:
        if v["id"] == voucher["id"]:
            v["total_limit"] = 3
    two.apply_catalog(catalog)
    assert redeem(two, code, method=Method.PRINTED).verdict.accepted
    assert redeem(two, code, method=Method.PRINTED).verdict.accepted
    assert redeem(two, code, method=Method.PRINTED).verdict.reason == "limit_reached"
    # The feed then brings Caja 1's use: counted once, not on top of the remembered bound.
    sync_once(two, c2)
    assert two.printed_uses(voucher["id"], two.store_id, two.context().day) == (3, 3)
