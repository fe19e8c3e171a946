"""What tills say to each other on the LAN (pos_app/lan/wire.py): every proof checked, every body bounded,
and a real till's LAN server answering hostile requests with a stable code and keeping nothing."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

from lan_helpers import STORE, make_tills, new_secret, printed, signed_page, wait_for
from pos_app.core import till_log, tokens
from pos_app.lan import wire
from pos_app.lan.server import Answer, LanServer
from pos_app.lan.service import LanService
from pos_app.store import TillStore
from pos_app.store.lan import SELF

NOW = 1_800_000_000.0


def keys_for(device: str, private: dict, secret: str, kid: str = "lan_k1", roster: dict | None = None) -> wire.Keys:
    roster = private if roster is None else roster
    config = {"keys": [{"kid": kid, "secret": secret, "active": True}],
              "peers": [{"device_id": d, "name": d.upper(), "public_key": till_log.public_key_of(p)}
                        for d, p in roster.items()]}
    return wire.Keys.of(config, device, private[device])


@pytest.fixture(scope="module")
def tills():
    private = {"dev-a": till_log.new_private_key(), "dev-b": till_log.new_private_key()}
    secret = new_secret()
    return keys_for("dev-a", private, secret), keys_for("dev-b", private, secret), private, secret


def refused(call) -> str:
    with pytest.raises(wire.LanRefused) as caught:
        call()
    return caught.value.code


def test_a_signed_request_and_its_answer_check(tills):
    a, b, _, _ = tills
    body = b'{"records":[],"head":{}}'
    headers = wire.sign_request(a, "POST", wire.RECORDS, body, NOW, "dev-b")
    sender = wire.verify_request(b, "POST", wire.RECORDS, headers, body, NOW + 299)
    assert (sender.device_id, sender.name) == ("dev-a", "DEV-A")
    answer = wire.sign_answer(b, 200, sender.mac, b'{"held":0}', NOW)
    assert wire.verify_answer(a, 200, headers[wire.MAC], answer, b'{"held":0}', NOW).device_id == "dev-b"
    assert "secret" not in repr(a) and a.private_key not in repr(a)


def test_each_part_of_a_request_is_proven(tills):
    a, b, private, secret = tills
    body = b"{}"
    headers = wire.sign_request(a, "GET", f"{wire.LOG}?after=0&limit=5", body, NOW, "dev-b")
    ok = dict(headers)
    check = lambda h=ok, method="GET", target=f"{wire.LOG}?after=0&limit=5", data=body, now=NOW, keys=b: \
        wire.verify_request(keys, method, target, h, data, now)  # noqa: E731
    check()
    assert refused(lambda: check(data=b"{ }")) == wire.BAD_MAC
    assert refused(lambda: check(target=f"{wire.LOG}?after=1&limit=5")) == wire.BAD_MAC
    assert refused(lambda: check(method="POST")) == wire.BAD_MAC
    assert refused(lambda: check(now=NOW + 301)) == wire.CLOCK
    assert refused(lambda: check(now=NOW - 301)) == wire.CLOCK
    assert refused(lambda: check(h={**ok, wire.TIME: f"{NOW + 1:.3f}"})) == wire.BAD_MAC
    assert refused(lambda: check(h={**ok, wire.DEVICE: "dev-b"})) == wire.BAD_MAC
    assert refused(lambda: check(keys=None)) == wire.NOT_CONFIGURED
    # Another store's key (same kid, another secret); a kid this till does not hold.
    from_ = lambda keys: wire.verify_request(  # noqa: E731 - a request by `keys` to dev-b, checked by dev-b
        b, "GET", "/x", wire.sign_request(keys, "GET", "/x", body, NOW, "dev-b"), body, NOW)
    assert refused(lambda: from_(keys_for("dev-a", private, new_secret()))) == wire.BAD_MAC
    assert refused(lambda: from_(keys_for("dev-a", private, secret, kid="lan_k2"))) == wire.UNKNOWN_KEY
    # A till that knows the store key but is not in the roster (revoked), or signs as another till.
    outsider = {**private, "dev-x": till_log.new_private_key()}
    assert refused(lambda: from_(keys_for("dev-x", outsider, secret))) == wire.NOT_IN_ROSTER
    impostor = wire.Keys.of({"keys": [{"kid": "lan_k1", "secret": secret, "active": True}], "peers": []}, "dev-b",
                            outsider["dev-x"])
    assert refused(lambda: from_(impostor)) == wire.BAD_SIGNATURE


def test_a_request_is_for_the_till_it_names(tills):
    """A push recorded on the LAN works only at the till it was for: not at another, not at its sender."""
    a, b, _, _ = tills
    body = b'{"records":[],"head":{}}'
    for_b = wire.sign_request(a, "POST", wire.RECORDS, body, NOW, "dev-b")
    assert wire.verify_request(b, "POST", wire.RECORDS, for_b, body, NOW).device_id == "dev-a"
    assert refused(lambda: wire.verify_request(a, "POST", wire.RECORDS, for_b, body, NOW)) == wire.MISDIRECTED
    assert refused(lambda: wire.verify_request(b, "POST", wire.RECORDS, {**for_b, wire.TO: "dev-a"}, body, NOW)) \
        == wire.BAD_MAC
    assert refused(lambda: wire.verify_request(b, "POST", wire.RECORDS, {**for_b, wire.TO: "dev b"}, body, NOW)) \
        == wire.UNSIGNED
    # Naming no till is only for a hello (asked before knowing who answers at an address).
    anyone = wire.sign_request(a, "POST", wire.RECORDS, body, NOW, "")
    assert refused(lambda: wire.verify_request(b, "POST", wire.RECORDS, anyone, body, NOW)) == wire.MISDIRECTED
    log = f"{wire.LOG}?after=0&limit=5"
    assert refused(lambda: wire.verify_request(b, "GET", log, wire.sign_request(a, "GET", log, b"", NOW, ""), b"",
                                               NOW)) == wire.MISDIRECTED
    hello = wire.sign_request(a, "GET", wire.HELLO, b"", NOW, "")
    assert wire.verify_request(b, "GET", wire.HELLO, hello, b"", NOW).device_id == "dev-a"


@pytest.mark.parametrize("damage", [
    {}, {wire.MAC: ""}, {wire.SIG: "!!"}, {wire.TIME: "soon"}, {wire.TIME: "1e9"}, {wire.TIME: "NaN"},
    {wire.DEVICE: "dev a"}, {wire.DEVICE: "dév-a"}, {wire.KID: "\u202elan_k1"}, {wire.KID: "k" * 65},
    {wire.MAC: "A" * 500}, {wire.DEVICE: "\x00"}])
def test_proofs_missing_or_misshapen_are_unsigned(tills, damage):
    a, b, _, _ = tills
    headers = wire.sign_request(a, "GET", wire.HELLO, b"", NOW, "dev-b") if damage else {}
    headers.update(damage)
    assert refused(lambda: wire.verify_request(b, "GET", wire.HELLO, headers, b"", NOW)) == wire.UNSIGNED


def test_an_answer_is_bound_to_its_request(tills):
    a, b, _, _ = tills
    first = wire.sign_request(a, "GET", wire.HELLO, b"", NOW, "dev-b")
    second = wire.sign_request(a, "GET", wire.HELLO, b"", NOW + 1, "dev-b")
    answer = wire.sign_answer(b, 200, first[wire.MAC], b"{}", NOW)
    assert refused(lambda: wire.verify_answer(a, 200, second[wire.MAC], answer, b"{}", NOW)) == wire.BAD_MAC
    assert refused(lambda: wire.verify_answer(a, 409, first[wire.MAC], answer, b"{}", NOW)) == wire.BAD_MAC


def test_oversize_and_odd_targets_are_refused(tills):
    a, b, _, _ = tills
    big = b" " * (wire.MAX_BODY_BYTES + 1)
    assert refused(lambda: wire.verify_request(b, "POST", "/x", {}, big, NOW)) == wire.TOO_LARGE
    assert refused(lambda: wire.loads(big)) == wire.TOO_LARGE
    assert refused(lambda: wire.verify_request(b, "GET", "/é", {}, b"", NOW)) == wire.MALFORMED
    assert refused(lambda: wire.verify_request(b, "GET", "/" + "x" * 600, {}, b"", NOW)) == wire.MALFORMED


RECORD = {"seq": 1, "body": '["void","k1",1.0,"r","x",null,"s","t"]', "hash": "a" * 64}
HEAD = {"seq": 1, "hash": "a" * 64, "sig": "c2ln"}


@pytest.mark.parametrize("page", [
    b"", b"not json", b"\xff\xfe", b'{"records": [], "head": {"seq": NaN, "hash": "", "sig": ""}}',
    b"[" * 100_000 + b"]" * 100_000, b'{"records": [], "records": [], "head": {}}',
    json.dumps({"records": [], "head": HEAD, "more": 1}).encode(),
    json.dumps({"records": {}, "head": HEAD}).encode(),
    json.dumps({"records": [RECORD], "head": {**HEAD, "seq": True}}).encode(),
    json.dumps({"records": [RECORD], "head": {**HEAD, "seq": -1}}).encode(),
    json.dumps({"records": [RECORD], "head": {**HEAD, "hash": "A" * 64}}).encode(),
    json.dumps({"records": [{**RECORD, "seq": 0}], "head": HEAD}).encode(),
    json.dumps({"records": [{**RECORD, "seq": 1.0}], "head": HEAD}).encode(),
    json.dumps({"records": [{**RECORD, "seq": 2 ** 60}], "head": HEAD}).encode(),
    json.dumps({"records": [{**RECORD, "body": "x" * 5000}], "head": HEAD}).encode(),
    json.dumps({"records": [{**RECORD, "body": 7}], "head": HEAD}).encode(),
    json.dumps({"records": [{**RECORD, "extra": 1}], "head": HEAD}).encode(),
    b'{"records": [{"seq": 1, "body": "[\\"void\\", \\"\\ud800\\"]", "hash": "' + b"a" * 64 + b'"}], "head": '
    + json.dumps(HEAD).encode() + b"}",
    json.dumps({"records": [RECORD, RECORD], "head": HEAD}).encode(),
    json.dumps({"records": [{**RECORD, "seq": i} for i in range(1, wire.MAX_RECORDS + 2)], "head": HEAD}).encode(),
])
def test_pages_not_of_their_shape_are_malformed(page):
    assert refused(lambda: wire.parse_page(page)) == wire.MALFORMED


def test_a_page_of_its_shape_parses():
    records, head = wire.parse_page(json.dumps({"records": [RECORD], "head": HEAD}).encode())
    assert records == [RECORD] and head == HEAD
    assert wire.parse_hello(b'{"head": {"seq": 0, "hash": "' + b"0" * 64 + b'", "sig": "c2ln"}, "held": 3}')[1] == 3


@pytest.mark.parametrize("query", ["", "after=1", "after=1&limit=0", "after=1&limit=201", "after=-1&limit=5",
                                   "after=1&limit=5&x=1", "after=١&limit=5", "after=1e3&limit=5",
                                   f"after={2 ** 60}&limit=5", "after=" + "9" * 20 + "&limit=5"])
def test_log_queries_not_of_their_shape_are_malformed(query):
    assert refused(lambda: wire.parse_log_query(query)) == wire.MALFORMED


# --- a real till's LAN server, hostile requests -------------------------------------------------


@pytest.fixture
def served(tmp_path):
    key = tokens.generate_private_key()
    path = make_tills(tmp_path, key, 1)[0]
    service = LanService(path)
    service.start()
    port = service.wait_listening(10)
    assert port
    yield path, port
    service.stop()


def kept(path) -> tuple[int, int]:
    with TillStore(path, asset_keys_dir=None) as store:
        return (store.conn.execute("SELECT count(*) FROM lan_records").fetchone()[0],
                store.conn.execute("SELECT count(*) FROM used_tokens").fetchone()[0])


@pytest.mark.allow_log_warnings(r"LAN: .* refused")
def test_the_server_answers_hostile_requests_with_a_code_and_keeps_nothing(served):
    path, port = served
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(trust_env=False, timeout=5) as client:
        assert client.get(url + "/nothing").status_code == 404
        for method, target, body, headers in [
                ("GET", wire.HELLO, b"", {}),
                ("POST", wire.RECORDS, json.dumps({"records": [RECORD], "head": HEAD}).encode(), {}),
                ("POST", wire.RECORDS, b"\xff" * 1000, {wire.KID: "lan_k1", wire.DEVICE: "dev-x",
                                                        wire.TIME: "1", wire.MAC: "AAAA", wire.SIG: "AAAA"}),
                ("GET", wire.LOG + "?after=0&limit=5", b"", {wire.KID: "ключ".encode("utf-8")})]:
            answer = client.request(method, url + target, content=body, headers=headers)
            assert answer.status_code == 403, answer.text
            assert answer.json()["error"]["code"] in wire.REFUSALS
        big = client.post(url + wire.RECORDS, content=b"x" * (wire.MAX_BODY_BYTES + 1))
        assert big.status_code == 413 and big.json()["error"]["code"] == wire.TOO_LARGE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:  # not HTTP at all
        raw.sendall(b"\x00\xff garbage \r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.0 400")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:  # a length it never sends
        raw.sendall(b"POST /lan/v1/records HTTP/1.0\r\nContent-Length: 999999999999\r\n\r\n")
        assert b"400" in raw.recv(100)
    assert kept(path) == (0, 0)
    with httpx.Client(trust_env=False, timeout=5) as client:  # still serving
        assert client.get(url + wire.HELLO).json()["error"]["code"] == wire.UNSIGNED


@pytest.mark.allow_log_warnings(r"LAN: .* refused \(lan_misdirected\)")
def test_a_push_played_back_to_its_sender_is_refused_and_counts_nothing(tmp_path):
    """Anyone on the LAN may record till A's push to B and play it back to A within the 300 s: A refuses
    it (it is for B), and refuses its own even signed for it, so its printed uses count once."""
    key = tokens.generate_private_key()
    path_a, path_b = make_tills(tmp_path, key, 2)
    service = LanService(path_a)
    service.start()
    port = service.wait_listening(10)
    with TillStore(path_a, asset_keys_dir=None) as a:
        code = printed(key)
        assert a.redeem_offline(code, method="camera")[0].accepted
        day = a.context().day
        keys = wire.Keys.of(a.lan_config(), a.device_id, a.get("log_private_key"))
        with TillStore(path_b, asset_keys_dir=None) as b:
            b_id = b.device_id
        body = wire.dumps(dict(zip(("records", "head"), signed_page(a))))
        url = f"http://127.0.0.1:{port}{wire.RECORDS}"
        try:
            with httpx.Client(trust_env=False, timeout=5) as client:
                to_b = client.post(url, content=body, headers=wire.sign_request(keys, "POST", wire.RECORDS, body,
                                                                                  time.time(), b_id))
                assert (to_b.status_code, to_b.json()["error"]["code"]) == (403, wire.MISDIRECTED)
                to_a = client.post(url, content=body, headers=wire.sign_request(keys, "POST", wire.RECORDS, body,
                                                                                  time.time(), a.device_id))
                assert (to_a.status_code, to_a.json()["error"]["code"]) == (403, SELF)
                assert to_a.headers.get(wire.MAC)  # signed: a till listing itself in lan_peers learns so
        finally:
            service.stop()
        assert kept(path_a) == (0, 0)
        assert a.printed_uses("v-print", STORE, day) == (1, 1)
        assert a.redeem_offline(code, method="camera")[0].accepted  # store_day limit 2: this till's second


# --- the server against slow and many connections (real sockets) ---------------------------------


@pytest.fixture
def plain_server():
    """A LAN server whose app answers {} at once, with a request deadline of 1 s."""
    server = LanServer("127.0.0.1", 0, lambda request: Answer(200, b"{}", {}), deadline_s=1.0)
    port = server.start()
    yield port
    server.stop()


def slow_client(port: int, source: str = "127.0.0.1") -> socket.socket:
    """A connection from `source` (any of 127/8 on loopback) that has sent a request line and no more."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    conn.sendall(b"GET /lan/v1/hello HTTP/1.0\r\n")
    return conn


def answered(port: int, source: str = "127.0.0.1") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2, source_address=(source, 0)) as conn:
        conn.sendall(b"GET /lan/v1/hello HTTP/1.0\r\n\r\n")
        try:
            return conn.recv(100)
        except OSError:
            return b""


def closed_within(conn: socket.socket, seconds: float) -> bool:
    """The server closed `conn` (or reset it) within `seconds`."""
    conn.settimeout(seconds)
    try:
        return conn.recv(100) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_slow_connections_from_everywhere_hold_the_server_for_their_deadline_only():
    """Eight hosts each sending a header line now and then (every read in time) would hold all eight
    threads for ever: each connection has one deadline for its request line, headers and body."""
    # A deadline long enough that the eight are surely all held when the ninth comes, on a loaded machine.
    server = LanServer("127.0.0.1", 0, lambda request: Answer(200, b"{}", {}), deadline_s=3.0)
    port = server.start()
    slow = [slow_client(port, f"127.0.0.{n}") for n in range(2, 10)]
    opened = time.monotonic()
    stop = threading.Event()

    def drip():
        while not stop.wait(0.2):
            for conn in slow:
                try:
                    conn.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    pass

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        # Every thread held: the ninth is closed, not queued (asked again until the eight are all served).
        assert wait_for(lambda: answered(port, "127.0.0.20") == b"", timeout=1.5, every=0.1)
        assert time.monotonic() - opened < 3.0
        assert wait_for(lambda: answered(port, "127.0.0.20").startswith(b"HTTP/1.0 200"), timeout=8, every=0.1)
        assert time.monotonic() - opened < 6.0  # their deadline (3 s), not for ever
        assert all(closed_within(conn, 1) for conn in slow)
    finally:
        stop.set()
        dripper.join()
        for conn in slow:
            conn.close()
        server.stop()


def test_one_address_gets_two_connections_and_a_third_is_closed_at_once(plain_server):
    port = plain_server
    held = [slow_client(port), slow_client(port)]
    try:
        time.sleep(0.1)
        third = slow_client(port)
        started = time.monotonic()
        assert closed_within(third, 0.5) and time.monotonic() - started < 0.5
        third.close()
        assert answered(port, "127.0.0.2").startswith(b"HTTP/1.0 200")  # other addresses still served
        assert not closed_within(held[0], 0.1)  # the first two wait for their deadline
        assert closed_within(held[0], 2) and closed_within(held[1], 1)
        assert answered(port).startswith(b"HTTP/1.0 200")
    finally:
        for conn in held:
            conn.close()
