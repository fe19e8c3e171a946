"""What a hostile host on the shop's LAN, or a stolen till still in the roster, can make a till hold: links
and threads (announcements), log lines and what is remembered of refusals (answers), the time a closing
window waits (a peer answering a byte at a time), and records kept of a peer (store/lan.py). Each bound is
tried against real services and real sockets on loopback."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time

import pytest

from lan_helpers import STORE, make_tills, personal, printed, set_lan_peers, signed_page, wait_for
from pos_app.core import till_log, tokens
from pos_app.lan import link as link_module
from pos_app.lan import service as service_module
from pos_app.lan import wire
from pos_app.lan.peers import MAX_QUEUED_NAMES, Discovery
from pos_app.lan.service import MAX_LINKS, MAX_UNPROVEN_PER_DEVICE, LanService
from pos_app.store import TillStore
from pos_app.store import lan as store_lan
from test_lan_store import pair  # noqa: F401 - the fixture (two tills of one store), used by name


@pytest.fixture(scope="module")
def key():
    return tokens.generate_private_key()


def closed_ports(n: int) -> list[int]:
    """Loopback ports nothing listens on (each bound once, then let go)."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture
def running(tmp_path, key):
    """Till 1's service running (its keys and roster held), and the paths of the store's three tills."""
    paths = make_tills(tmp_path, key, 3)
    service = LanService(paths[0], pull_interval_s=0.2)
    service.start()
    assert service.wait_listening(10)
    assert wait_for(lambda: service.status()["state"] == "running", timeout=10)
    yield service, paths
    service.stop()


# --- announcements: links and threads ---------------------------------------------------------------


@pytest.mark.allow_log_warnings(r"LAN discovery: more than 64 tills announced")
def test_a_flood_of_announced_names_is_queued_once_each_and_at_most_a_bound():
    discovery = Discovery(device_id="dev-1", store_id=STORE, port=1, bind="127.0.0.1", found=lambda *_: None)
    assert discovery.queue_name("dev-2._pika-till._tcp.local.")
    assert not discovery.queue_name("dev-2._pika-till._tcp.local.")  # announced again: still once
    queued = sum(discovery.queue_name(f"x{i}._pika-till._tcp.local.") for i in range(10_000))
    assert queued == MAX_QUEUED_NAMES - 1 and discovery._names.qsize() == MAX_QUEUED_NAMES
    assert discovery.dropped == 10_000 - queued
    # Resolved names leave room for new ones.
    assert discovery._next_name() == "dev-2._pika-till._tcp.local."
    assert discovery.queue_name("dev-2._pika-till._tcp.local.")
    discovery.stop()
    assert not discovery.queue_name("late._pika-till._tcp.local.")


@pytest.mark.allow_log_warnings(r"LAN: 64 peer links already")
def test_found_tills_outside_the_roster_are_not_asked_and_links_are_bounded(running):
    service, paths = running
    ports = closed_ports(MAX_LINKS + 40)
    for i, port in enumerate(ports[:40]):  # a host announcing tills the backend never listed
        service.add_peer(("127.0.0.1", port), f"dev-stranger-{i}")
    service.add_peer(("127.0.0.1", ports[0]), "dev-store-lan-1")  # this till's own id, announced elsewhere
    assert service._links == {}
    for port in ports:  # listed in the settings: the operator's, yet bounded too
        service.add_peer(("127.0.0.1", port))
    assert len(service._links) == MAX_LINKS
    assert threading.active_count() < MAX_LINKS + 30


def test_a_host_announcing_another_tills_id_cannot_hide_it(running, tmp_path, key):
    service, paths = running
    with TillStore(paths[1], asset_keys_dir=None) as two:
        victim = two.device_id
    liars = closed_ports(6)
    for port in liars:  # nothing answers there: each fails its hello
        service.add_peer(("127.0.0.1", port), victim)
    unproven = [link for link in service._links.values() if link.announced == victim]
    assert len(unproven) == MAX_UNPROVEN_PER_DEVICE
    assert wait_for(lambda: all(link.error for link in unproven), timeout=10)
    real = LanService(paths[1])
    real.start()
    try:
        port = real.wait_listening(10)
        service.add_peer(("127.0.0.1", port), victim)  # the real till's own announcement
        assert wait_for(lambda: any(link.device_id == victim for link in service._links.values()), timeout=10)
        assert sum(link.announced == victim for link in service._links.values()) <= MAX_UNPROVEN_PER_DEVICE
        with TillStore(paths[1], asset_keys_dir=None) as two:
            two.redeem_offline(personal(key, "jti-hidden"), method="typed")
        with TillStore(paths[0], asset_keys_dir=None) as one:
            assert wait_for(lambda: one.used("jti-hidden"), timeout=10)
        # Once proven, more announcements of it at other addresses are not asked.
        before = set(service._links)
        for port in closed_ports(3):
            service.add_peer(("127.0.0.1", port), victim)
        assert set(service._links) == before
    finally:
        real.stop()


# --- answers: the words logged and what is remembered ------------------------------------------------


class Hostile(threading.Thread):
    """A plain TCP server on loopback answering every connection with `answer(n)` bytes, or with `script`
    (a function given the socket)."""

    def __init__(self, answer=None, script=None):
        super().__init__(daemon=True)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer, self.script, self.served = answer, script, 0
        self.stopping = threading.Event()

    def run(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.served += 1
            threading.Thread(target=self._serve, args=(conn, self.served), daemon=True).start()

    def _serve(self, conn: socket.socket, n: int) -> None:
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)
                if self.script is not None:
                    self.script(conn, self.stopping)
                else:
                    conn.sendall(self.answer(n))
            except OSError:
                pass

    def close(self) -> None:
        self.stopping.set()
        self.sock.close()


def error_answer(n: int) -> bytes:
    body = json.dumps({"error": {"code": f"lan_words_of_its_own_{n}", "message": "x"}}).encode()
    return b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" \
           b"Connection: close\r\n\r\n%s" % (len(body), body)


@pytest.mark.parametrize("code, said", [
    ("lan_bad_mac", "lan_bad_mac"), ("lan_self", "lan_self"), ("log_gap", "log_gap"), ("lan_busy", "lan_busy"),
    ("lan_words_of_its_own", wire.MALFORMED), ("x" * 40, wire.MALFORMED), ("lan_ünïcode", wire.MALFORMED),
    (7, wire.MALFORMED), (["lan_bad_mac"], wire.MALFORMED), ("LAN_BAD_MAC", wire.MALFORMED)])
def test_an_answers_code_is_one_a_till_answers_with_or_malformed(code, said):
    assert link_module._code_of(json.dumps({"error": {"code": code}}).encode()) == said


@pytest.mark.allow_log_warnings(r"LAN: the till at .* refused")
def test_a_host_answering_a_new_code_each_time_is_one_line_a_minute(tmp_path, key, caplog):
    hostile = Hostile(answer=error_answer)
    hostile.start()
    [path] = make_tills(tmp_path, key, 1)
    set_lan_peers(path, [hostile.port])
    service = LanService(path, pull_interval_s=0.05)
    caplog.set_level(logging.WARNING, logger="pos_app.lan")
    service.start()
    try:
        assert wait_for(lambda: hostile.served >= 10, timeout=15)
    finally:
        service.stop()
        hostile.close()
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 1 and f"({wire.MALFORMED})" in lines[0]
    assert len(service._refusals) == 1


@pytest.mark.allow_log_warnings(r"LAN: (.* refused|more than 256 hosts)")
def test_refusals_remembered_are_bounded_and_forgotten_after_a_minute(tmp_path, caplog):
    service = LanService(tmp_path / "unused.sqlite3")
    caplog.set_level(logging.WARNING, logger="pos_app.lan")
    for i in range(5_000):
        service.refused(f"a request from 10.0.{i // 256}.{i % 256}", wire.LanRefused(wire.BAD_MAC, "no"))
    assert len(service._refusals) <= service_module.MAX_REFUSALS_KEPT + 1
    assert len(caplog.records) == service_module.MAX_REFUSALS_KEPT + 1  # then one line for the rest
    # A minute on, they are forgotten as room is needed, and a host is heard of again.
    service._refusals = {k: at - 61 for k, at in service._refusals.items()}
    service.refused("a request from 10.9.9.9", wire.LanRefused(wire.BAD_MAC, "no"))
    assert list(service._refusals) == [("a request from 10.9.9.9", wire.BAD_MAC)]


# --- a peer answering a byte at a time ---------------------------------------------------------------


def trickle(conn: socket.socket, stopping: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
    while not stopping.wait(0.3):
        conn.sendall(b" ")


def test_a_peer_answering_a_byte_at_a_time_holds_a_request_for_its_deadline_only(tmp_path, key):
    hostile = Hostile(script=trickle)
    hostile.start()
    [path] = make_tills(tmp_path, key, 1)
    set_lan_peers(path, [hostile.port])
    service = LanService(path, request_timeout_s=1.0)
    service.start()
    try:
        started = time.monotonic()
        assert wait_for(lambda: any("no whole answer" in (p["error"] or "") for p in service.status()["peers"]),
                        timeout=10)
        assert time.monotonic() - started < 4.5  # its deadline: 2 × the 1 s per-read timeout, and the start
    finally:
        service.stop()
        hostile.close()


def test_stopping_with_a_peer_trickling_takes_its_deadline_not_the_peers(tmp_path, key):
    hostiles = [Hostile(script=trickle) for _ in range(4)]
    for hostile in hostiles:
        hostile.start()
    [path] = make_tills(tmp_path, key, 1)
    set_lan_peers(path, [hostile.port for hostile in hostiles])
    service = LanService(path, request_timeout_s=5.0)
    service.start()
    try:
        assert wait_for(lambda: all(h.served for h in hostiles), timeout=10)
        time.sleep(0.5)  # every link now in the middle of reading an answer
        started = time.monotonic()
        service.stop()
        took = time.monotonic() - started
    finally:
        for hostile in hostiles:
            hostile.close()
    assert took < service_module.STOP_TIMEOUT_S + 0.7
    assert service.status()["state"] == "stopped"


# --- what is kept of a peer --------------------------------------------------------------------------


def kept(store: TillStore, device_id: str) -> tuple[int, int, int]:
    return store.conn.execute("SELECT count(*), min(seq), max(seq) FROM lan_records WHERE device_id = ?",
                              (device_id,)).fetchone()


def test_of_a_peers_log_the_last_records_are_kept_and_what_they_used_stays(pair, key, monkeypatch):
    sender, receiver, peer = pair
    monkeypatch.setattr(store_lan, "RECORDS_KEPT", 5)
    for i in range(12):
        sender.redeem_offline(personal(key, f"jti-{i}"), method="typed")
    assert receiver.apply_lan_records(peer, *signed_page(sender)).held == 12
    assert kept(receiver, sender.device_id) == (5, 8, 12)
    for i in range(12, 15):
        sender.redeem_offline(personal(key, f"jti-{i}"), method="typed")
    applied = receiver.apply_lan_records(peer, *signed_page(sender, after=12))
    assert (applied.held, applied.stored, applied.problems) == (15, 3, ())
    assert kept(receiver, sender.device_id) == (5, 11, 15)
    assert receiver.used("jti-0").till == "Caja 1" and receiver.used("jti-14").till == "Caja 1"
    # Sent again whole, what is no longer kept is taken as held; an edit of what is kept is still refused.
    assert receiver.apply_lan_records(peer, *signed_page(sender)).problems == ()


def test_printed_uses_the_feed_counts_are_forgotten_after_the_retention_period(pair, key):
    sender, receiver, peer = pair
    assert sender.redeem_offline(printed(key), method="camera")[0].accepted
    receiver.apply_lan_records(peer, *signed_page(sender))
    day = receiver.context().day
    now = time.time()
    receiver.apply_feed([{"seq": 3, "type": "redemption", "data": {
        "voucher_id": "v-print", "at": now, "kind": "printed", "store_id": STORE, "key": "k" * 20}}], 3)
    with receiver.transaction():
        assert receiver.forget_lan_printed(now) == 0
    counted = receiver.printed_uses("v-print", STORE, day)
    with receiver.transaction():  # 31 days on: the feed's row goes, the LAN's own use (not brought) stays
        assert receiver.forget_lan_printed(now + 31 * 86_400) == 1
    assert receiver.printed_uses("v-print", STORE, day) == counted
    assert receiver.conn.execute("SELECT count(*) FROM lan_printed WHERE counted_by_feed = 0").fetchone()[0] == 1


def test_a_peers_printed_use_older_than_the_retention_period_counts_nothing(pair, key):
    sender, receiver, peer = pair
    assert sender.redeem_offline(printed(key), method="camera")[0].accepted
    day = receiver.context().day
    before = receiver.printed_uses("v-print", STORE, day)
    receiver.apply_lan_records(peer, *signed_page(sender), now=time.time() + 31 * 86_400)
    assert receiver.printed_uses("v-print", STORE, day) == before
    assert receiver.apply_lan_records(peer, *signed_page(sender)).held == 1  # kept, and counted nothing


# --- a peer's rate ----------------------------------------------------------------------------------


def test_a_peer_is_kept_at_most_records_per_hour_and_the_rest_taken_later(pair, key, monkeypatch):
    sender, receiver, peer = pair
    monkeypatch.setattr(store_lan, "RECORDS_PER_HOUR", 5)
    for i in range(12):
        sender.redeem_offline(personal(key, f"jti-{i}"), method="typed")
    now = time.time()
    applied = receiver.apply_lan_records(peer, *signed_page(sender), now=now)
    assert (applied.held, applied.stored, [p.code for p in applied.problems]) == (5, 5, [store_lan.FLOOD])
    assert receiver.used("jti-4").till == "Caja 1" and receiver.used("jti-5") is None
    applied = receiver.apply_lan_records(peer, *signed_page(sender, after=5), now=now + 60)
    assert (applied.held, applied.stored, [p.code for p in applied.problems]) == (5, 0, [store_lan.FLOOD])
    assert receiver.used("jti-5") is None and kept(receiver, sender.device_id) == (5, 1, 5)
    # An hour on the next five, then the rest; a chain still checked whole.
    assert receiver.apply_lan_records(peer, *signed_page(sender, after=5), now=now + 3601).held == 10
    applied = receiver.apply_lan_records(peer, *signed_page(sender, after=10), now=now + 7300)
    assert (applied.held, applied.stored, applied.problems) == (12, 2, ())
    assert receiver.used("jti-11").till == "Caja 1"
    # A record held, sent again edited, is refused whole as before, whatever room is left.
    sender.conn.execute("UPDATE log_chain SET body = replace(body, 'typed', 'camera') WHERE seq = 12")
    records, head = signed_page(sender, after=10)
    assert [p.code for p in receiver.apply_lan_records(peer, records, head, now=now + 7400).problems] == [
        till_log.EDITED]


@pytest.mark.allow_log_warnings(r"LAN: .* refused \(lan_flood\)")
def test_a_till_pushing_past_its_hour_is_refused_over_the_lan_and_the_first_kept(tmp_path, key, monkeypatch):
    monkeypatch.setattr(store_lan, "RECORDS_PER_HOUR", 3)
    paths = make_tills(tmp_path, key, 2)
    receiver = LanService(paths[1], pull_interval_s=0.2)
    receiver.start()
    set_lan_peers(paths[0], [receiver.wait_listening(10)])
    sender = LanService(paths[0], pull_interval_s=0.2)
    sender.start()
    stores = [TillStore(path, asset_keys_dir=None) for path in paths]
    try:
        for i in range(5):
            stores[0].redeem_offline(personal(key, f"flood-{i}"), method="typed")
        assert wait_for(lambda: stores[1].used("flood-2") is not None, timeout=10)
        assert wait_for(lambda: any(p.get("error") and "lan_flood" in p["error"]
                                    for p in sender.status()["peers"]), timeout=10)
        assert stores[1].used("flood-3") is None and stores[1].lan_held(stores[0].device_id)[0] == 3
    finally:
        sender.stop()
        receiver.stop()
        for store in stores:
            store.close()
