"""Rate limits (issue 15, item 4): token buckets per device and per client address, over both engines,
shared by every backend over one folder or database; 429 rate_limited with Retry-After; the till backs off.

A till flooding refused redemptions once wrote ~1.4 GB an hour: a refused request here writes nothing.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from api_fixtures import BASE_URL, new_key
from pos_app.core.domain import Method
from pos_app.store import TillStore
from pos_app.sync.backoff import Backoff
from pos_app.sync.client import BackendClient, RateLimited
from pos_app.sync.engine import SyncEngine
from pos_app.sync.redeem import redeem
from pos_app.sync.round import sync_once
from server_stub.app import API, App
from server_stub.backend import Backend
from server_stub.datadir import DataDir
from server_stub.errors import Invalid
from server_stub.errors import RateLimited as RateLimited_
from server_stub.http import client_address
from server_stub.limits import buckets, limits_of, open_limiter
from server_stub.limits.config import trusted_networks
from server_stub.serving import EmbeddedServer

TILL_A, TILL_B = "203.0.113.10", "203.0.113.11"
LOOPBACK = trusted_networks(None)


def test_a_client_the_proxy_names_is_limited_even_inside_the_proxies_network(api):
    """A balancer at 10.0.0.1 trusted as 10.0.0.0/8, tills reaching it over a 10.x VPN: each till is still
    counted (by address and as a device), only the proxy's own requests are not."""
    backend = limited(api, address=(0.01, 2), device=(0.01, 3), trusted=["10.0.0.0/8"])
    try:
        till = api.enroll()
        app = App(backend)
        with client(app, "10.0.0.1", till.token) as balancer:
            named = [balancer.get("/catalog", headers={"X-Real-IP": "10.20.30.40"}) for _ in range(3)]
            assert [r.status_code for r in named] == [200, 200, 429]
            assert named[-1].json()["scope"] == "address"
            assert [balancer.get("/catalog", headers={"X-Real-IP": f"10.20.30.{n}"}).status_code
                    for n in (41, 42)] == [200, 429]  # the till's own bucket (3) is spent now
            assert balancer.get("/catalog", headers={"X-Real-IP": "10.20.30.43"}).json()["scope"] == "device"
        with client(app, "10.0.0.1") as own:
            assert {own.get("/health").status_code for _ in range(5)} == {200}
    finally:
        backend.close()


def limited(api, *, device=None, address=None, trusted=None, enabled=True, tarpit_s=0.0) -> Backend:
    """A second backend over the test's folder and database, with the limits given ((rate, burst) pairs);
    a client that does not wait is answered at once (`tarpit_s`) unless the test is about that."""
    limits: dict = {"enabled": enabled}
    if device:
        limits["device"] = {"rate_per_s": device[0], "burst": device[1]}
    if address:
        limits["address"] = {"rate_per_s": address[0], "burst": address[1]}
    extra = {} if trusted is None else {"trusted_proxies": trusted}
    DataDir(api.path).set_config(limits=limits, **extra)
    backend = Backend(api.path)
    backend.limiter.tarpit_s = tarpit_s
    return backend


def client(app, address: str, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(transport=httpx.WSGITransport(app=app, remote_addr=address), base_url=f"{BASE_URL}{API}",
                        headers=headers)


def feeds(http: httpx.Client, times: int, **kw) -> list[int]:
    return [http.get("/feed", **kw).status_code for _ in range(times)]


def test_a_flooding_till_is_refused_while_another_is_not_and_a_refusal_writes_nothing(api):
    a, b = api.enroll("Caja A"), api.enroll("Caja B")
    backend = limited(api, device=(0.5, 5))
    app = App(backend)
    try:
        with client(app, TILL_A, a.token) as flood, client(app, TILL_B, b.token) as quiet:
            assert feeds(flood, 8) == [200] * 5 + [429] * 3
            before = api.counts()
            refused = flood.post("/redemptions", headers={"Idempotency-Key": new_key()},
                                 json={"input": api.printed_code, "method": "typed"})
            assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
            assert refused.json()["scope"] == "device"
            assert api.counts() == before  # no attempt, no event: the flood costs no write
            assert feeds(quiet, 5) == [200] * 5
    finally:
        backend.close()


def test_retry_after_is_the_wait_for_one_token_in_header_and_body(api):
    till = api.enroll()
    backend = limited(api, device=(0.1, 2))
    now = [time.time()]
    backend.limiter.clock = lambda: now[0]
    try:
        with client(App(backend), TILL_A, till.token) as http:
            assert feeds(http, 2) == [200, 200]
            answer = http.get("/feed")
            assert answer.status_code == 429
            assert answer.headers["Retry-After"] == "10" and answer.json()["retry_after_s"] == 10
            now[0] += 6.5  # 0.65 of a token back: 3.5 s to go, said as 4
            answer = http.get("/feed")
            assert (answer.status_code, answer.headers["Retry-After"], answer.json()["retry_after_s"]) == (429, "4", 4)
            now[0] += 4  # 1.05 tokens: one request, not two
            assert feeds(http, 2) == [200, 429]
    finally:
        backend.close()


def test_a_till_that_does_not_wait_is_answered_later_from_two_threads_at_most(api):
    till = api.enroll()
    backend = limited(api, device=(0.01, 1), tarpit_s=0.4)
    app = App(backend)
    try:
        with client(app, TILL_A, till.token) as http:
            assert feeds(http, 2) == [200, 429]  # the first refusal: at once, with its Retry-After
            started = time.perf_counter()
            assert feeds(http, 1) == [429]  # asked again meanwhile: 0.4 s later
            assert time.perf_counter() - started >= 0.39
        answered = []

        def ask():
            with client(app, TILL_A, till.token) as http:
                t0 = time.perf_counter()
                assert http.get("/feed").status_code == 429
                answered.append(time.perf_counter() - t0)
        threads = [threading.Thread(target=ask) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Two held, two answered at once: a flood over many connections cannot hold every thread.
        assert sorted(answered)[1] < 0.3 and sorted(answered)[-1] >= 0.39
    finally:
        backend.close()


def test_two_backends_over_one_folder_or_database_draw_on_one_bucket(api):
    till = api.enroll()
    first, second = limited(api, device=(0.01, 6)), Backend(api.path)
    try:
        with client(App(first), TILL_A, till.token) as one, client(App(second), TILL_A, till.token) as two:
            statuses = [http.get("/feed").status_code for _ in range(4) for http in (one, two)]
        assert statuses == [200] * 6 + [429] * 2
    finally:
        first.close()
        second.close()


# A worker process of its own: at `start`, takes 30 tokens of one device's bucket; prints how many it got.
_TAKER = """
import sys, time
from server_stub.datadir import DataDir
from server_stub.errors import RateLimited
from server_stub.limits import open_limiter
folder, start = sys.argv[1], float(sys.argv[2])
limiter = open_limiter(folder, DataDir(folder).database(), DataDir(folder).config())
limiter.tarpit_s = 0
time.sleep(max(0.0, start - time.time()))
passed = 0
for _ in range(30):
    try:
        limiter.check_device("the-same-till")
        passed += 1
    except RateLimited:
        pass
limiter.close()
print(passed)
"""


def test_two_processes_draw_on_one_bucket(api):
    """Two processes at once (granian's workers): the buckets are in the shared store, not in memory."""
    limited(api, device=(0.01, 40)).close()
    start = time.time() + 1.5  # both started and connected by then, so their takes overlap
    root = Path(__file__).resolve().parents[1]
    workers = [subprocess.Popen([sys.executable, "-c", _TAKER, str(api.path), str(start)], cwd=root,
                                stdout=subprocess.PIPE, text=True) for _ in range(2)]
    results = [int(worker.communicate(timeout=60)[0]) for worker in workers]
    assert sum(results) == 40 and max(results) <= 30  # neither had a bucket of its own


def test_sixteen_threads_share_the_store_and_over_postgresql_two_connections(api):
    backend = limited(api, address=(0.01, 400))
    refused = []

    def ask(n):
        for _ in range(50):
            try:
                backend.limiter.check_address("198.51.100.77")
            except RateLimited_ as exc:
                refused.append(exc.extra["retry_after_s"])
    try:
        threads = [threading.Thread(target=ask, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(refused) == 16 * 50 - 400  # every check counted once, none let in by a failure
        if api.database is not None:
            held = api.rows("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pika-limits'")[0][0]
            assert held <= buckets.PostgresBuckets.SIZE
    finally:
        backend.close()


def test_the_address_is_checked_before_the_route_or_the_body(api):
    backend = limited(api, address=(0.01, 3))
    try:
        with client(App(backend), "198.51.100.7") as http:
            garbage = {"content": b"{not json", "headers": {"Content-Type": "application/json"}}
            statuses = [http.post("/devices/enroll", **garbage).status_code for _ in range(3)]
            assert statuses == [400] * 3
            late = http.post("/devices/enroll", **garbage)
            assert late.status_code == 429 and late.json()["error"]["code"] == "rate_limited"
            assert late.json()["scope"] == "address"
            assert http.get("/no-such-route").status_code == 429
        with client(App(backend), "198.51.100.8") as other:
            assert other.get("/health").status_code == 200
    finally:
        backend.close()


def test_a_trusted_proxys_x_real_ip_names_the_client_and_garbage_or_an_untrusted_ones_is_ignored(api):
    backend = limited(api, address=(0.01, 2))
    try:
        app = App(backend)
        with client(app, "127.0.0.1") as proxy:
            assert [proxy.get("/health", headers={"X-Real-IP": "192.0.2.1"}).status_code for _ in range(3)] == \
                [200, 200, 429]
            assert proxy.get("/health", headers={"X-Real-IP": "192.0.2.2"}).status_code == 200
            # This host's own requests (no X-Real-IP) and garbage the proxy passes on: the proxy's, not limited.
            assert {proxy.get("/health").status_code for _ in range(5)} == {200}
            assert {proxy.get("/health", headers={"X-Real-IP": "1.2.3.4, 5.6.7.8"}).status_code
                    for _ in range(5)} == {200}
        with client(app, "203.0.113.99") as stranger:  # not a proxy: its X-Real-IP is anyone's to write
            statuses = [stranger.get("/health", headers={"X-Real-IP": f"192.0.2.{n}"}).status_code
                        for n in range(10, 13)]
            assert statuses == [200, 200, 429]
    finally:
        backend.close()


@pytest.mark.parametrize("environ, address", [
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_REAL_IP": "192.0.2.5"}, "192.0.2.5"),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_REAL_IP": " 2001:db8::1 "}, "2001:db8::1"),
    ({"REMOTE_ADDR": "::ffff:127.0.0.1", "HTTP_X_REAL_IP": "192.0.2.5"}, "192.0.2.5"),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_REAL_IP": "not-an-ip"}, "127.0.0.1"),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_REAL_IP": "192.0.2.5, 192.0.2.6"}, "127.0.0.1"),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_REAL_IP": "x" * 10_000}, "127.0.0.1"),
    ({"REMOTE_ADDR": "203.0.113.5", "HTTP_X_REAL_IP": "192.0.2.5"}, "203.0.113.5"),
    ({"REMOTE_ADDR": "garbage", "HTTP_X_REAL_IP": "192.0.2.5"}, "garbage"),
    ({"HTTP_X_REAL_IP": "192.0.2.5"}, "unknown"),
])
def test_client_address(environ, address):
    assert client_address(environ, LOOPBACK) == address


@pytest.mark.allow_log_warnings(r"^enrollment refused from ")
def test_the_enrollment_guard_counts_the_client_a_trusted_proxy_names(api):
    with client(api.app, "127.0.0.1") as proxy:
        answer = proxy.post("/devices/enroll", json={"code": "K7QF-3M2X-TA", "name": "Caja"},
                            headers={"X-Real-IP": "192.0.2.44"})
    assert answer.status_code == 403
    assert api.rows("SELECT address FROM enrollment_failures") == [("192.0.2.44",)]


@pytest.mark.allow_log_warnings(r"^rate limits off: ", r"^rate limits on again: ")
def test_a_store_that_cannot_be_reached_lets_requests_in_and_says_so_once(api, caplog):
    till = api.enroll()
    backend = limited(api, device=(0.01, 1))
    try:
        # A real failure either way: PostgreSQL refusing the connection (nobody listens on port 1).
        working = backend.limiter.store
        backend.limiter.store = buckets.PostgresBuckets("postgresql://pika@127.0.0.1:1/none", connect_timeout_s=1)
        now = [time.time()]
        backend.limiter.clock = lambda: now[0]
        with client(App(backend), TILL_A, till.token) as http:
            assert feeds(http, 5) == [200] * 5
            now[0] += 10  # past the pause: the store is tried again, and fails again
            assert feeds(http, 2) == [200] * 2
            offs = [r for r in caplog.records if r.getMessage().startswith("rate limits off")]
            assert len(offs) == 1 and "OperationalError" in offs[0].getMessage()
            backend.limiter.store = working
            now[0] += 10
            assert feeds(http, 2) == [200, 429]  # working again: limited again, and said
        assert any(r.getMessage().startswith("rate limits on again") for r in caplog.records)
    finally:
        backend.limiter.store = working
        backend.close()


@pytest.mark.allow_log_warnings(r"^rate limits off: cannot open their file")
def test_a_limits_file_that_is_no_database_does_not_stop_the_backend(tmp_path):
    (tmp_path / buckets.FILE_NAME).write_bytes(b"this is not an SQLite database, nor any" * 100)
    limiter = open_limiter(tmp_path, None, {"limits": {"device": {"rate_per_s": 1, "burst": 1}}})
    for _ in range(5):
        limiter.check_device("d")  # never refused: no store, no limit
    limiter.close()


def test_old_buckets_are_pruned_so_the_store_stays_small(tmp_path):
    now = [1_000_000.0]
    limiter = open_limiter(tmp_path, None, {}, clock=lambda: now[0])
    try:
        for n in range(300):
            limiter.check_address(f"198.51.100.{n % 250}")
            limiter.check_address(f"2001:db8:{n:x}::1")
        assert limiter.store.count() == 550
        limiter.check_address("2001:db8:1::99")  # the same /64 as one seen: no new bucket
        assert limiter.store.count() == 550
        now[0] += 60
        limiter.check_device("still-here")
        assert limiter.store.count() == 1
    finally:
        limiter.close()


def test_the_limits_file_is_private_and_only_sqlites(api):
    side = api.path / buckets.FILE_NAME
    if api.database is None:
        assert side.stat().st_mode & 0o777 == 0o600
    else:  # PostgreSQL: the UNLOGGED table, shared by every host
        assert not side.exists()
        api.enroll()
        with client(api.app, TILL_A) as http:
            http.get("/health")
        assert api.rows("SELECT key FROM rate_buckets") == [(f"addr:{TILL_A}",)]


def test_limits_switched_off_refuse_nothing(api):
    till = api.enroll()
    backend = limited(api, device=(0.01, 1), address=(0.01, 1), enabled=False)
    try:
        with client(App(backend), TILL_A, till.token) as http:
            assert set(feeds(http, 20)) == {200}
    finally:
        backend.close()


@pytest.mark.parametrize("config, wrong", [
    ({"limits": {"device": {"rate_per_s": 0}}}, "limits.device.rate_per_s"),
    ({"limits": {"device": {"burst": 0.5}}}, "limits.device.burst"),
    ({"limits": {"address": {"rate_per_s": "fast"}}}, "limits.address.rate_per_s"),
    ({"limits": {"address": {"rate": 5}}}, "limits.address"),
    ({"limits": {"enabled": "yes"}}, "limits.enabled"),
    ({"limits": {"devices": {}}}, "limits"),
    ({"limits": []}, "limits"),
    ({"trusted_proxies": ["nginx"]}, "trusted_proxies"),
    ({"trusted_proxies": "127.0.0.1"}, "trusted_proxies"),
])
def test_a_wrong_setting_is_named(config, wrong):
    with pytest.raises(Invalid) as refused:
        limits_of(config)
    assert refused.value.code == "invalid_config" and f"config.json: {wrong} " in refused.value.message


def test_the_defaults_take_a_whole_unpaced_sync_round_and_a_shop_behind_one_address():
    limits = limits_of({})
    # A round of `python -m pos_app sync`: 50 feed pages, the catalog, a few outbox batches, pending lookups.
    assert limits.device.burst >= 50 + 1 + 20 + 20
    assert limits.device.rate_per_s >= 20  # the sync engine's own pace (DEFAULT_MAX_REQUESTS_PER_S)
    assert limits.address.burst >= 10 * limits.device.burst and limits.address.rate_per_s >= 10 * 20


# --- the till ----------------------------------------------------------------------------------------------


class Counting:
    """The app behind a loopback port, counting the requests that reach it."""

    def __init__(self, app):
        self.app, self.calls = app, 0
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            self.calls += 1
        return self.app(environ, start_response)


def test_a_till_told_429_decides_offline_at_once_waits_retry_after_and_loses_nothing(api, tmp_path):
    printed = api.printed_code
    # Loopback is an ordinary client here (no trusted proxy), so the till on this host is limited.
    backend = limited(api, device=(0.5, 4), trusted=[])
    counting = Counting(App(backend))
    server = EmbeddedServer(counting).start()
    store = TillStore(tmp_path / "till.sqlite3")
    engine = None
    try:
        with BackendClient(server.url) as anonymous:
            answer = anonymous.enroll(api.demo["enrollment_codes"][0], "Caja 9")
        store.save_enrollment(answer, server.url)
        store.set("velocity_limit", 0)
        with BackendClient(server.url, answer["device_token"]) as http:
            assert sync_once(store, http).error is None  # the catalog: 1 request, maybe 2
            outcomes = [redeem(store, printed, method=Method.PRINTED, client=http) for _ in range(6)]
            calls = counting.calls
            # Online while the bucket lasts, then offline at once: the 429 and the wait it asked for.
            decided = [o.decided for o in outcomes]
            assert "online" in decided and decided[-1] == "offline" and "429" in outcomes[decided.index("offline")].note
            assert 0 < http.retry_after_s() <= 2
            with pytest.raises(RateLimited):
                http.feed(0)
            assert counting.calls == calls  # asked to wait: nothing was sent
        queued = store.outbox_size()
        assert queued == decided.count("offline") >= 2
        rounds = []
        engine = SyncEngine(store.path, feed_interval_s=0.05, backoff=Backoff(base_s=0.01, cap_s=0.02),
                            on_status=lambda status: rounds.append((time.time(), status)))
        calls = counting.calls
        engine.start()
        deadline = time.monotonic() + 15
        while store.outbox_size() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.outbox_size() == 0
        limited_rounds = [(at, s) for at, s in rounds if s.last_round and s.last_round.get("retry_after_s")]
        assert limited_rounds  # the engine's first push met the empty bucket
        for at, status in limited_rounds:  # the engine's own back-off is 10-20 ms; it waited Retry-After
            assert status.next_retry_at - at >= status.last_round["retry_after_s"] - 0.1 >= 0.9
        # Ticks every 50 ms for seconds, yet a few requests: it never spun.
        assert counting.calls - calls < 15
    finally:
        if engine is not None:
            engine.stop()
        store.close()
        server.stop()
        backend.close()
    attempts = api.rows("SELECT decided, count(*) FROM attempts WHERE kind = 'printed' GROUP BY decided")
    assert sum(n for _, n in attempts) == 6  # every redemption once: online or sent from the outbox
