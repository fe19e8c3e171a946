"""A till the backend withdrew (`device_revoked`) or gave a new token (`device_rolled`): it stops
redeeming, online and offline, keeps its records, stops asking, exports its outbox, and a rolled one
enrolled again as the same device carries on. Real stores, the real backend (both engines) through
httpx's WSGI transport or on a loopback port, the devices withdrawn by the backend's own operations."""

from __future__ import annotations

import json
import os
import stat
import time

import httpx
import pytest

from pos_app import __version__
from pos_app.cli.commands import main
from pos_app.core.domain import Method
from pos_app.store import TillStore, standing
from pos_app.store.outbox_export import ExportError, export_outbox
from pos_app.sync.client import BackendClient
from pos_app.sync.engine import SyncEngine
from pos_app.sync.redeem import redeem
from pos_app.sync.round import sync_once
from server_stub.app import App
from server_stub.backend import Backend
from server_stub.datadir import DataDir
from server_stub.demo import add_demo_data
from server_stub.serving import EmbeddedServer

# Being withdrawn, and enrolled again, are each one WARNING in till.log: expected here.
pytestmark = pytest.mark.allow_log_warnings(r"the backend answered device_(revoked|rolled)",
                                            r"enrolled again as the same device")


class Seen(httpx.BaseTransport):
    """The WSGI transport, keeping each request's headers and body (what the till sent)."""

    def __init__(self, app):
        self.inner = httpx.WSGITransport(app=app)
        self.requests: list[httpx.Request] = []

    def handle_request(self, request):
        self.requests.append(request)
        return self.inner.handle_request(request)


@pytest.fixture
def world(tmp_path, backend_database):
    DataDir(tmp_path / "backend").init(backend_database)
    backend = Backend(tmp_path / "backend")
    info = add_demo_data(backend)
    app = App(backend)
    opened = []

    def till(name: str = "Caja 1", code_index: int = 0):
        transport = Seen(app)
        with BackendClient("http://t", transport=transport) as anonymous:
            answer = anonymous.enroll(info["enrollment_codes"][code_index], name)
        store = TillStore(tmp_path / f"{name}.sqlite3")
        store.save_enrollment(answer, "http://t")
        client = BackendClient("http://t", answer["device_token"], transport=transport)
        assert sync_once(store, client).error is None
        opened.append((store, client))
        return store, client, transport

    yield backend, info, till, app
    for store, client in opened:
        client.close()
        store.close()
    backend.close()


def personal(backend, info, n=0):
    voucher = [v for v in info["vouchers"] if v["kind"] == "personal"][n]["id"]
    return backend.create_claim(voucher, f"customer-{time.time_ns()}")["token"]


def printed(info):
    return next(v for v in info["vouchers"] if v["kind"] == "printed")["code"]


def test_a_revoked_till_stops_redeeming_online_and_offline_and_keeps_its_records(world, caplog):
    backend, info, till, _ = world
    store, client, _ = till()
    assert redeem(store, personal(backend, info), method=Method.CAMERA, client=client).verdict.accepted
    offline = redeem(store, printed(info), method=Method.PRINTED)  # queued, not yet sent
    assert offline.verdict.accepted and store.outbox_size() == 1
    backend.revoke_device(store.device_id, "stolen")

    code = personal(backend, info, 1)
    with pytest.raises(standing.Withdrawn) as online:
        redeem(store, code, method=Method.CAMERA, client=client)
    assert online.value.state == standing.REVOKED
    assert store.pending_online() == []  # the attempt begun online became no redemption
    # From now on nothing is decided, not even offline, and nothing is recorded.
    attempts = len(store.attempts())
    for method, text in ((Method.CAMERA, code), (Method.PRINTED, printed(info)), (Method.TYPED, "garbage")):
        with pytest.raises(standing.Withdrawn):
            redeem(store, text, method=method)
    assert len(store.attempts()) == attempts
    # Its records stay, readable: the report's rows, the outbox waiting.
    assert sum(len(rows) for rows in store.report_rows(0, time.time() + 60)) == 2 and store.outbox_size() == 1
    assert any("device_revoked" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    # Over a restart, too.
    store.close()
    with TillStore(store.path) as again:
        with pytest.raises(standing.Withdrawn):
            redeem(again, printed(info), method=Method.PRINTED)


def test_a_sync_round_learns_it_parks_nothing_and_the_next_rounds_ask_nothing(world):
    backend, info, till, _ = world
    store, client, _ = till()
    for _ in range(3):
        redeem(store, printed(info), method=Method.PRINTED)
    backend.revoke_device(store.device_id)
    summary = sync_once(store, client)
    assert summary.error and "device_revoked" in summary.error and summary.parked == 0
    assert standing.withdrawn(store) == standing.REVOKED
    assert store.outbox_size() == 3 and store.parked() == []  # kept to send or export, never parked
    before = client.requests
    again = sync_once(store, client)
    assert "device_revoked" in again.error and client.requests == before  # no request at all


def test_a_feed_pull_alone_tells_a_till_it_was_rolled(world):
    backend, info, till, _ = world
    store, client, _ = till()
    backend.roll_device(store.device_id)
    summary = sync_once(store, client)  # nothing to push: the report or the feed meets the 401
    assert "device_rolled" in summary.error
    assert standing.withdrawn(store) == standing.ROLLED
    with pytest.raises(standing.Withdrawn) as caught:
        redeem(store, printed(info), method=Method.PRINTED)
    assert "enroll it again" in str(caught.value)


def test_the_engine_stops_asking_once_withdrawn(world):
    backend, info, till, app = world
    store, client, transport = till()
    backend.revoke_device(store.device_id)
    clients = []

    def factory(engine_store):
        clients.append(BackendClient("http://t", engine_store.device_token, transport=transport))
        return clients[-1]
    engine = SyncEngine(store.path, client_factory=factory, feed_interval_s=0.05)
    engine.start()
    try:
        deadline = time.monotonic() + 10
        while standing.withdrawn(store) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert standing.withdrawn(store) == standing.REVOKED
        sent = len(transport.requests)
        time.sleep(1.0)  # twenty ticks
        status = engine.sync_now(wait_s=5)
        assert len(transport.requests) == sent  # not one request more, even asked by hand
        assert "device_revoked" in status.error and status.withdrawn == standing.REVOKED
    finally:
        engine.stop()


def test_a_running_engine_takes_the_new_token_once_the_till_is_enrolled_again(world):
    backend, info, till, app = world
    store, client, transport = till()
    rolled = backend.roll_device(store.device_id)
    engine = SyncEngine(store.path, client_factory=lambda s: BackendClient("http://t", s.device_token,
                                                                           transport=transport), feed_interval_s=0.05)
    engine.start()
    try:
        assert "device_rolled" in engine.sync_now(wait_s=5).error
        with BackendClient("http://t", transport=transport) as anonymous:
            store.save_enrollment(anonymous.enroll(rolled["code"], store.device_name), "http://t")  # another connection
        redeem(store, printed(info), method=Method.PRINTED)
        status = engine.sync_now(wait_s=5)
        assert status.error is None and status.withdrawn is None and status.outbox == 0
    finally:
        engine.stop()


def test_a_rolled_till_enrolled_again_as_itself_keeps_everything_and_redeems(world, tmp_path, capsys):
    backend, info, till, app = world
    server = EmbeddedServer(App(backend)).start()
    try:
        data = tmp_path / "till"
        assert main(["enroll", "--data", str(data), "--server", server.url, "--code", info["enrollment_codes"][1],
                     "--name", "Caja 2"]) == 0
        first = json.loads(capsys.readouterr().out)
        with TillStore(data / "till.sqlite3") as store:
            redeem(store, printed(info), method=Method.PRINTED)  # offline, queued
        rolled = backend.roll_device(first["device_id"])
        assert main(["sync", "--data", str(data)]) == 1
        assert "device_rolled" in json.loads(capsys.readouterr().out)["error"]
        # Enrolled already, and not withdrawn: a second enroll is refused; withdrawn, the new code is taken.
        assert main(["redeem", "--data", str(data), "--printed", printed(info)]) == 1
        assert json.loads(capsys.readouterr().out)["error"]["code"] == "device_rolled"
        assert main(["enroll", "--data", str(data), "--server", server.url, "--code", rolled["code"]]) == 0
        again = json.loads(capsys.readouterr().out)
        assert again["device_id"] == first["device_id"] and again["enrolled_again"] and again["name"] == "Caja 2"
        assert again["sync"]["recorded"] == 1  # the queued redemption went up with the new token
        with TillStore(data / "till.sqlite3") as store:
            assert standing.withdrawn(store) is None and len(store.attempts()) == 1
        assert main(["redeem", "--data", str(data), "--printed", printed(info)]) == 0
        assert json.loads(capsys.readouterr().out)["decided"] == "online"
        assert main(["enroll", "--data", str(data), "--server", server.url, "--code",
                     info["enrollment_codes"][2]]) == 2
        assert "enrolled already" in capsys.readouterr().err
    finally:
        server.stop()


def test_a_code_that_enrolls_another_device_changes_nothing_here(world):
    backend, info, till, _ = world
    store, client, transport = till()
    redeem(store, printed(info), method=Method.PRINTED)
    backend.roll_device(store.device_id)
    sync_once(store, client)
    with BackendClient("http://t", transport=transport) as anonymous:
        other = anonymous.enroll(info["enrollment_codes"][1], "Caja 9")  # a first enrollment: a new device
    device_id, token = store.device_id, store.device_token
    with pytest.raises(ValueError, match="another device"):
        store.save_enrollment(other, "http://t")
    assert (store.device_id, store.device_token) == (device_id, token)
    assert standing.withdrawn(store) == standing.ROLLED and store.outbox_size() == 1


def test_export_outbox_writes_a_private_file_once_with_parked_entries_marked(world, tmp_path, capsys):
    backend, info, till, _ = world
    store, client, _ = till()
    redeem(store, printed(info), method=Method.PRINTED)
    redeem(store, "garbage", method=Method.TYPED)
    manager = next(s for s in info["staff"] if s["role"] == "manager")
    accepted = next(a for a in store.attempts() if a["accepted"])
    store.void(accepted["key"], reason="customer changed their mind", staff_id=manager["id"])
    store.outbox_park(store.outbox_batch()[0]["key"], "400 invalid_value")
    backend.revoke_device(store.device_id)
    sync_once(store, client)
    unsent = store.outbox_rows()
    out = tmp_path / "export" / "outbox.json"
    out.parent.mkdir()
    assert main(["export-outbox", "--data", str(tmp_path), "--out", str(out)]) == 2  # no till store there
    assert "holds no till store" in capsys.readouterr().err
    summary = export_outbox(store, out, now=1_800_000_000.0)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    data = json.loads(out.read_text())
    assert data["count"] == len(unsent) == len(data["entries"]) == 3 and data["parked"] == 1 and data["voids"] == 1
    assert data["device_id"] == store.device_id and data["store_id"] == store.store_id
    assert data["withdrawn"] == "device_revoked" and data["exported_at"] == 1_800_000_000.0
    assert [e["key"] for e in data["entries"]] == [e["key"] for e in unsent]
    assert data["entries"][0]["parked"] and data["entries"][0]["parked_reason"] == "400 invalid_value"
    assert summary["file"] == str(out) and "entries" not in summary
    with pytest.raises(ExportError, match="exists already"):
        export_outbox(store, out)
    assert json.loads(out.read_text()) == data  # untouched
    with pytest.raises(ExportError, match="cannot be created"):
        export_outbox(store, tmp_path / "no-such-folder" / "x.json")


def test_export_outbox_command(world, tmp_path, capsys):
    backend, info, till, _ = world
    data = tmp_path / "till"
    data.mkdir()
    store, client, _ = till()
    redeem(store, printed(info), method=Method.PRINTED)
    store.close()
    os.replace(store.path, data / "till.sqlite3")
    out = tmp_path / "outbox.json"
    assert main(["export-outbox", "--data", str(data), "--out", str(out)]) == 0
    printed_summary = json.loads(capsys.readouterr().out)
    assert printed_summary["count"] == 1 and printed_summary["withdrawn"] is None
    assert main(["export-outbox", "--data", str(data), "--out", str(out)]) == 1
    assert "exists already" in capsys.readouterr().err


def test_every_sync_reports_the_till_and_every_request_names_its_version(world):
    backend, info, till, _ = world
    store, client, transport = till()
    assert all(r.headers["user-agent"] == f"pika-till/{__version__}" for r in transport.requests)
    syncs = [json.loads(r.content) for r in transport.requests if r.url.path.endswith("/sync")]
    assert syncs and syncs[-1]["till"] == {"app_version": __version__, "outbox": 0, "outbox_oldest_at": None,
                                          "parked": 0, "parked_oldest_at": None}
    for _ in range(2):
        redeem(store, printed(info), method=Method.PRINTED)
    oldest = store.unsynced()[1]
    store.outbox_park(store.outbox_batch()[0]["key"], "400 invalid_value")
    sync_once(store, client)
    last = json.loads([r for r in transport.requests if r.url.path.endswith("/sync")][-1].content)
    # The parked one stays unconfirmed: said with the batch that took the other.
    assert len(last["entries"]) == 1 and last["till"]["outbox"] == 1 and last["till"]["outbox_oldest_at"] == oldest
    assert last["till"]["parked"] == 1 and last["till"]["parked_oldest_at"] is not None
    device = backend.get_device(store.device_id)
    assert device["app_version"] == __version__ and device["outbox_size"] == 1
    # A round with nothing to push does not report again what it just did.
    before = len(transport.requests)
    sync_once(store, client)
    assert not any(r.url.path.endswith("/sync") for r in transport.requests[before:])
