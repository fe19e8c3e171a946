"""The sync round's log step (pos_app/sync/log_push.py) with real till files and the real backend app in
process: a backend without POST /till-log (older than the log) is skipped quietly; in front of it, a stand-in
of the backend's half (it holds a seq and checks each batch with core/till_log, as the backend's own check
does) drives the till's side through ok, resend, flagged, refusals and garbage. Also the till's report's
parked entries, and enrolling with the log's key."""

from __future__ import annotations

import json
import logging
import sqlite3

import httpx
import pytest

from pos_app.core import till_log
from pos_app.store import TillStore
from pos_app.sync.client import BackendClient
from pos_app.sync.log_push import MAX_REQUESTS
from pos_app.sync.round import sync_once
from server_stub.app import App
from server_stub.backend import Backend
from server_stub.datadir import DB_NAME, DataDir
from server_stub.demo import add_demo_data

LOG_PATH = "/api/v1/till-log"


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    path = tmp_path_factory.mktemp("backend")
    DataDir(path).init(None)
    backend = Backend(path)
    info = add_demo_data(backend)
    yield backend, info, path
    backend.close()


class StandIn:
    """The real backend app, with POST /till-log answered here: `answer(body, held)` -> (status, json) or
    None for the default, which keeps what the records reach after checking them."""

    def __init__(self, app, answer=None):
        self.app, self.answer, self.requests = app, answer, []
        self.held = (0, till_log.GENESIS)

    def __call__(self, environ, start_response):
        if environ["PATH_INFO"] != LOG_PATH:
            return self.app(environ, start_response)
        body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        self.requests.append(body)
        made = self.answer(body, self.held) if self.answer else None
        if made is None:
            problems = till_log.verify_segment(body["records"], prev=self.held[1], after=self.held[0],
                                               head=body["head"], public_key=body["public_key"], device_id=DEVICE[0])
            assert body["after"] == self.held[0] and problems == [], problems
            if body["records"]:
                self.held = (body["records"][-1]["seq"], body["records"][-1]["hash"])
            made = 200, {"log": {"status": "ok", "seq": self.held[0], "hash": self.held[1], "findings": []},
                         "server_time": 1.0}
        status, answer = made
        raw = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        start_response(f"{status} X", [("Content-Type", "application/json"), ("Content-Length", str(len(raw)))])
        return [raw]


DEVICE = [""]  # the device the stand-in checks heads for (set as each till enrolls)


@pytest.fixture
def till(backend, tmp_path):
    """(store, make_client(answer=None) -> (client, stand-in)), a till enrolled with its log key."""
    be, info, _ = backend
    app = App(be)
    store = TillStore(tmp_path / "till.sqlite3")
    private = store.log_key_for_enrollment()
    with BackendClient("http://t", transport=httpx.WSGITransport(app=app)) as anonymous:
        answer = anonymous.enroll(be.create_enrollment_code(info["store_id"])["code"], "Caja log",
                                  log_key=till_log.public_key_of(private))
    store.save_enrollment(answer, "http://t", log_private_key=private)
    DEVICE[0] = answer["device_id"]
    clients = []

    def make_client(answer=None, *, real: bool = False):
        stand_in = StandIn(app, answer)
        client = BackendClient("http://t", store.device_token,
                               transport=httpx.WSGITransport(app=app if real else stand_in))
        clients.append(client)
        return client, stand_in

    yield store, make_client
    for client in clients:
        client.close()
    store.close()


def redeem_many(store: TillStore, n: int) -> None:
    for i in range(n):
        store.redeem_offline(f"nothing {i}", method="typed")


def test_an_older_backend_without_the_route_is_skipped_quietly(till, caplog):
    store, make_client = till
    redeem_many(store, 3)
    client, _ = make_client(lambda body, held: (404, {"error": {"code": "not_found", "message": "no route"}}))
    with caplog.at_level(logging.INFO):
        summary = sync_once(store, client)
    assert summary.error is None and summary.recorded == 3 and summary.catalog
    assert summary.log_status == "skipped" and summary.log_sent == 0 and store.log_acked() == 0
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and r.name.startswith("pos_app")]
    # The real backend of this checkout: its route, or none yet (then the same quiet skip).
    real, _ = make_client(real=True)
    assert sync_once(store, real).error is None


def test_records_go_in_batches_with_a_signed_head_at_each_batchs_end(till):
    store, make_client = till
    redeem_many(store, 2500)
    client, stand_in = make_client()
    summary = sync_once(store, client)
    assert summary.error is None and summary.log_status == "ok" and summary.log_sent == 2500
    assert [(b["after"], len(b["records"]), b["head"]["seq"]) for b in stand_in.requests] == [
        (0, 1000, 1000), (1000, 1000, 2000), (2000, 500, 2500)]
    assert store.log_acked() == 2500
    redeem_many(store, 2)
    assert sync_once(store, client).log_sent == 2 and stand_in.requests[-1]["after"] == 2500
    requests = len(stand_in.requests)
    assert sync_once(store, client).log_status is None and len(stand_in.requests) == requests  # nothing new


def test_a_round_sends_at_most_its_requests_and_the_next_goes_on(till):
    store, make_client = till
    redeem_many(store, MAX_REQUESTS * 1000 + 10)
    client, stand_in = make_client()
    assert sync_once(store, client).log_sent == MAX_REQUESTS * 1000
    assert len(stand_in.requests) == MAX_REQUESTS and store.log_acked() == MAX_REQUESTS * 1000
    assert sync_once(store, client).log_sent == 10


def test_a_resend_answer_sends_again_from_what_the_backend_holds(till):
    store, make_client = till
    redeem_many(store, 30)
    client, stand_in = make_client()
    sync_once(store, client)
    assert store.log_acked() == 30
    redeem_many(store, 5)
    restored = {"done": False}

    def lost_some(body, held):  # a backend restored from a backup holds up to 10
        if restored["done"]:
            return None
        restored["done"] = True
        rows = store.log_since(9, 1)
        stand_in.held = (10, rows[0]["hash"])
        return 200, {"log": {"status": "resend", "seq": 10, "hash": rows[0]["hash"], "findings": []}}

    stand_in.answer = lost_some
    summary = sync_once(store, client)
    assert summary.log_status == "ok" and summary.log_sent == 5 + 25 and store.log_acked() == 35
    assert [b["after"] for b in stand_in.requests[-2:]] == [30, 10]


@pytest.mark.allow_log_warnings("flagged this till's log")
def test_flagged_is_a_warning_and_the_till_goes_on_from_the_seq_held(till, caplog):
    store, make_client = till
    redeem_many(store, 4)
    head = store.log_head()
    client, _ = make_client(lambda body, held: (200, {"log": {"status": "flagged", "seq": head[0], "hash": head[1],
                                                             "findings": ["log_row_missing", 7]}}))
    with caplog.at_level(logging.WARNING):
        summary = sync_once(store, client)
    assert summary.error is None and summary.log_status == "flagged" and store.log_acked() == 4
    assert any("flagged" in r.getMessage() and "log_row_missing" in r.getMessage() for r in caplog.records)


GARBAGE = [
    (200, b"not json"), (200, b"[]"), (200, {"log": "ok"}), (200, {"log": {"status": "fine", "seq": 1, "hash": "0" * 64}}),
    (200, {"log": {"status": "ok", "seq": -1, "hash": "0" * 64}}), (200, {"log": {"status": "ok", "seq": True,
                                                                                   "hash": "0" * 64}}),
    (200, {"log": {"status": "ok", "seq": 2 ** 60, "hash": "0" * 64}}),
    (200, {"log": {"status": "ok", "seq": 1, "hash": "Ω" * 64}}), (200, {"log": {"status": "ok", "seq": 1.5,
                                                                                  "hash": "0" * 64}}),
]


@pytest.mark.parametrize("status, answer", GARBAGE)
@pytest.mark.allow_log_warnings("answer to this till's log makes no sense")
def test_a_garbage_answer_ends_the_step_not_the_round_and_moves_nothing(till, caplog, status, answer):
    store, make_client = till
    redeem_many(store, 3)
    client, _ = make_client(lambda body, held: (status, answer))
    with caplog.at_level(logging.WARNING):
        summary = sync_once(store, client)
    assert summary.error is None and summary.catalog and summary.log_status == "bad_answer"
    assert store.log_acked() == 0 and summary.log_sent == 0
    assert any("makes no sense" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("status, code", [(400, "invalid_value"), (413, "too_large"), (409, "conflict")])
@pytest.mark.allow_log_warnings("refused this till's log")
def test_a_refusal_of_the_log_is_a_warning_and_the_round_goes_on(till, caplog, status, code):
    store, make_client = till
    redeem_many(store, 2)
    client, _ = make_client(lambda body, held: (status, {"error": {"code": code, "message": "no"}}))
    with caplog.at_level(logging.WARNING):
        summary = sync_once(store, client)
    assert summary.error is None and summary.catalog and summary.log_status == "refused"
    assert any("refused this till's log" in r.getMessage() for r in caplog.records)


def test_a_refusal_of_the_till_itself_ends_the_round(till):
    store, make_client = till
    redeem_many(store, 2)
    client, _ = make_client(lambda body, held: (403, {"error": {"code": "not_a_till", "message": "web till"}}))
    summary = sync_once(store, client)
    assert summary.error and "not_a_till" in summary.error and not summary.catalog


def test_an_answer_without_progress_is_not_asked_again_in_the_round(till):
    store, make_client = till
    redeem_many(store, 3)
    client, stand_in = make_client(lambda body, held: (200, {"log": {"status": "ok", "seq": 0, "hash": "0" * 64}}))
    sync_once(store, client)
    assert len(stand_in.requests) == 1


def test_what_the_self_check_finds_goes_with_the_records(till):
    store, make_client = till
    redeem_many(store, 6)
    client, stand_in = make_client()
    sync_once(store, client)
    gone = store.log_since(2, 1)[0]
    conn = sqlite3.connect(store.path)
    conn.execute("DELETE FROM attempts WHERE key = (SELECT key FROM log_chain WHERE seq = 3)")
    conn.commit()
    conn.close()
    redeem_many(store, 1)
    sync_once(store, client, clock=lambda: 2e9)  # the rotating check is due
    sent = stand_in.requests[-1]
    assert [(t["seq"], t["problem"]) for t in sent["tampered"]] == [(3, "row_missing")]
    assert sent["tampered"][0]["key"] == json.loads(gone["body"])[1] and len(sent["records"]) == 1


@pytest.mark.allow_log_warnings("flagged this till's log: log_rewound")
def test_a_log_cut_short_by_hand_is_said_once_a_minute(till):
    store, make_client = till
    redeem_many(store, 5)
    client, stand_in = make_client(lambda body, held: None if body["records"] else (200, {"log": {
        "status": "flagged", "seq": 5, "hash": "0" * 64, "findings": ["log_rewound"]}}))
    sync_once(store, client)
    conn = sqlite3.connect(store.path)
    conn.execute("DELETE FROM log_chain WHERE seq >= 4")
    conn.commit()
    conn.close()
    for now in (1e9, 1e9 + 10, 1e9 + 20):
        sync_once(store, client, clock=lambda: now)
    cut = [b for b in stand_in.requests if not b["records"]]
    assert len(cut) == 1 and cut[0]["head"]["seq"] == 3 and cut[0]["after"] == 5
    assert {(t["seq"], t["problem"]) for t in cut[0]["tampered"]} == {(4, "chain_missing"), (5, "chain_missing")}
    sync_once(store, client, clock=lambda: 1e9 + 100)
    assert len([b for b in stand_in.requests if not b["records"]]) == 2


def test_the_tills_report_carries_its_parked_entries(till, backend):
    store, make_client = till
    redeem_many(store, 2)
    key = store.outbox_batch(10)[0]["key"]
    store.outbox_park(key, "400 invalid_value")
    parked_at = store.parked_unsynced()[1]
    client, _ = make_client(lambda body, held: (404, {}))
    summary = sync_once(store, client)
    assert summary.error is None
    conn = sqlite3.connect(backend[2] / DB_NAME)
    try:
        row = conn.execute("SELECT parked_size, parked_oldest_at FROM devices WHERE id = ?", (store.device_id,)).fetchone()
    finally:
        conn.close()
    assert row == (1, parked_at)
