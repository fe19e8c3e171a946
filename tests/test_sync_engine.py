"""The background sync engine against the real backend app (in-process WSGI),
with real store files: scheduling, back-off, status, hostile answers, stop."""

from __future__ import annotations

import json
import logging
import random
import threading
import time

import httpx
import pytest

from pos_app.sync.client import BackendClient
from pos_app.sync.backoff import Backoff
from pos_app.core.domain import Method
from pos_app.sync.redeem import redeem
from pos_app.store import TillStore
from pos_app.sync.round import sync_once
from pos_app.sync.engine import SyncEngine
from server_stub.app import App
from server_stub.backend import Backend
from server_stub.datadir import DataDir
from server_stub.demo import add_demo_data

STATUS_KEYS = {"state", "online", "running", "outbox", "parked", "parked_entries", "pending_online", "last_sync",
               "last_error", "error", "clock_skew_s", "clock_skew_flagged", "max_clock_skew_s", "conflicts",
               "conflict_rate", "offline_share", "over_limit", "sync_runs", "sync_success_rate", "delay_p50_s",
               "delay_p95_s", "next_retry_at", "backoff_failures", "runs", "last_round", "feed_cursor"}


class Switch:
    """A WSGI app in front of the real one: passes through, fails like a dead
    network, or answers what a test wants (hostile servers)."""

    def __init__(self, app):
        self.app = app
        self.mode = "up"
        self.answer: tuple[str, bytes] | None = None  # (path suffix, body) served instead of the real answer
        self.calls = 0

    def __call__(self, environ, start_response):
        self.calls += 1
        if self.answer is not None and environ["PATH_INFO"].endswith(self.answer[0]):
            start_response("200 OK", [("Content-Type", "application/json")])
            return [self.answer[1]]
        return self.app(environ, start_response)


class DownTransport(httpx.BaseTransport):
    """The real app through WSGI, or a connection error while `switch.mode == 'down'`."""

    def __init__(self, switch: Switch):
        self.switch = switch
        self.inner = httpx.WSGITransport(app=switch)

    def handle_request(self, request):
        if self.switch.mode == "down":
            self.switch.calls += 1
            raise httpx.ConnectError("connection refused", request=request)
        return self.inner.handle_request(request)


@pytest.fixture
def world(tmp_path):
    DataDir(tmp_path / "backend").init()
    backend = Backend(tmp_path / "backend")
    info = add_demo_data(backend)
    switch = Switch(App(backend))
    transport = DownTransport(switch)
    made = []

    def till(name="Caja 1", code_index=0):
        with BackendClient("http://t", transport=transport) as anonymous:
            answer = anonymous.enroll(info["enrollment_codes"][code_index], name)
        store = TillStore(tmp_path / f"{name}.sqlite3")
        store.save_enrollment(answer, "http://t")
        store.set("velocity_limit", 0)
        with BackendClient("http://t", answer["device_token"], transport=transport) as client:
            assert sync_once(store, client).error is None
        made.append(store)
        factory = lambda s: BackendClient("http://t", s.device_token, transport=transport)  # noqa: E731
        return store, factory

    yield backend, info, switch, till
    for store in made:
        store.close()
    backend.close()


def printed_code(info) -> str:
    return next(v for v in info["vouchers"] if v["kind"] == "printed")["code"]


def engine(store, factory, **kwargs) -> SyncEngine:
    kwargs.setdefault("feed_interval_s", 60)
    kwargs.setdefault("backoff", Backoff(base_s=0.05, cap_s=0.2, rng=random.Random(4)))
    return SyncEngine(store.path, client_factory=factory, **kwargs)


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_queued_redemptions_are_pushed_at_once_and_status_is_published_off_the_gui_thread(world):
    backend, info, switch, till = world
    store, factory = till()
    published = []
    eng = engine(store, factory, on_status=lambda s: published.append((threading.current_thread().name, s)))
    eng.start()
    try:
        wait_for(lambda: eng.status().runs >= 1)
        for _ in range(3):
            redeem(store, printed_code(info), method=Method.PRINTED)  # offline: queued
        eng.notify_queued()
        wait_for(lambda: eng.status().outbox == 0 and eng.status().runs >= 2)
        status = eng.status()
        assert STATUS_KEYS <= set(status.to_json())
        assert status.state == "online" and status.online is True and status.parked == 0
        assert status.sync_success_rate == 1.0 and status.offline_share == 1.0
        assert status.delay_p50_s is not None and status.clock_skew_flagged is False
        assert {name for name, _ in published} == {"sync-engine"}
    finally:
        eng.stop()
    assert eng.status().state == "stopped"
    count = backend.read().execute("SELECT count(*) FROM attempts WHERE kind = 'printed'").fetchone()[0]
    assert count == 3


def test_unreachable_backs_off_with_a_cap_then_drains_when_back(world):
    backend, info, switch, till = world
    store, factory = till()
    for _ in range(700):
        redeem(store, printed_code(info), method=Method.PRINTED)
    switch.mode = "down"
    switch.calls = 0
    eng = engine(store, factory, feed_interval_s=0.02,
                 backoff=Backoff(base_s=0.1, cap_s=0.4, floor_s=0.1, rng=random.Random(4)))
    eng.start()
    try:
        time.sleep(1.5)
        status = eng.status()
        assert status.state == "offline" and status.online is False and status.outbox == 700
        assert status.next_retry_at is not None and status.backoff_failures >= 3
        # Feed ticks every 20 ms and queued notices do not bypass the back-off:
        # at most one try per 0.1 s (the floor), against 75 ticks.
        for _ in range(20):
            eng.notify_queued()
        assert 3 <= switch.calls <= 1.5 / 0.1 + 1
        switch.mode = "up"
        status = eng.sync_now(wait_s=10)
        assert status.outbox == 0 and status.state == "online" and status.backoff_failures == 0
        assert status.last_error["error"]  # the outage stays visible as the last error
    finally:
        eng.stop()
    ats = [at for (at,) in backend.read().execute("SELECT at FROM attempts ORDER BY id")]
    assert len(ats) == 700 and ats == sorted(ats)  # FIFO: in the order they were redeemed


@pytest.mark.parametrize("path, body", [
    ("/feed", b"not json at all"),
    ("/feed", b'{"events": "x", "cursor": 5}'),
    ("/feed", b'{"events": [{"seq": 1, "type": "redemption", "data": {"jti": 5}}], "cursor": 9}'),
    ("/feed", b'{"events": [], "cursor": -1}'),
    ("/feed", b'[1, 2, 3]'),
    ("/catalog", b'{"retailer": 1, "store": {"id": "s"}}'),
    ("/catalog", b'{"retailer": {"id": "r"}, "store": {"id": "s"}, "vouchers": [{"id": 5}]}'),
    ("/sync", b'{"results": [{"key": "somebody-else", "status": "recorded"}]}'),
    ("/sync", b'{"results": "all fine"}'),
    ("/sync", b'{"results": [], "server_time": "yesterday"}'),
])
def test_hostile_answers_change_nothing_and_the_engine_goes_on(world, path, body):
    backend, info, switch, till = world
    store, factory = till()
    redeem(store, printed_code(info), method=Method.PRINTED)
    before = (store.outbox_size(), store.feed_cursor, len(store.vouchers()))
    switch.answer = (path, body)
    store.set("catalog_at", None)  # so this round downloads the catalog too
    eng = engine(store, factory)
    eng.start()
    try:
        status = eng.sync_now(wait_s=10)
    finally:
        eng.stop()
    assert status.error and status.state in ("error", "offline")
    if path == "/sync":
        assert store.outbox_size() == before[0]
    else:
        assert store.outbox_size() == 0  # the push went through before the feed was refused
    assert (store.feed_cursor, len(store.vouchers())) == before[1:]


def test_oversize_answer_is_refused_unread(world, monkeypatch):
    backend, info, switch, till = world
    store, factory = till()
    monkeypatch.setattr("pos_app.sync.client.MAX_ANSWER_BYTES", 1000)
    switch.answer = ("/feed", json.dumps({"events": [], "cursor": 0, "pad": "x" * 5000}).encode())
    with factory(store) as client:
        summary = sync_once(store, client)
    assert "over 1000 bytes" in summary.error


def test_permanent_refusal_parks_only_the_bad_entry(world):
    backend, info, switch, till = world
    store, factory = till()
    for _ in range(9):
        redeem(store, printed_code(info), method=Method.PRINTED)
    # An entry the backend refuses for good (a reason longer than it takes: 400).
    bad = store.outbox_batch(9)[4]["key"]
    payload = json.loads(store._conn.execute("SELECT payload FROM outbox WHERE key = ?", (bad,)).fetchone()[0])
    payload["reason"] = "x" * 100
    store._conn.execute("UPDATE outbox SET payload = ? WHERE key = ?", (json.dumps(payload), bad))
    with factory(store) as client:
        summary = sync_once(store, client)
        assert summary.parked == 1 and summary.recorded == 8 and summary.error is None
        assert client.requests <= 10  # narrowed down by halves, not one request per entry
        assert sync_once(store, client).pushed == 0  # parked: not retried for ever
    (parked,) = store.parked()
    assert parked["key"] == bad and parked["parked_reason"].startswith("400")
    assert store.outbox_unpark() == 1 and store.outbox_size() == 1  # shown, never dropped


def test_unauthorized_till_parks_nothing(world):
    backend, info, switch, till = world
    store, factory = till()
    redeem(store, printed_code(info), method=Method.PRINTED)
    with BackendClient("http://t", "not-a-token", transport=DownTransport(switch)) as client:
        summary = sync_once(store, client)
    assert summary.error.startswith("401") and summary.reached
    assert store.outbox_size() == 1 and store.parked() == []


def test_stop_is_prompt_and_joins(world):
    backend, info, switch, till = world
    store, factory = till()
    eng = engine(store, factory, feed_interval_s=0.05)
    eng.start()
    wait_for(lambda: eng.status().runs >= 3)
    started = time.monotonic()
    eng.stop()
    assert time.monotonic() - started < 2
    assert not any(t.name == "sync-engine" for t in threading.enumerate())


def test_skew_is_measured_flagged_and_used_for_token_times(world):
    backend, info, switch, till = world
    store, factory = till()
    store.set("max_clock_skew_s", 60)
    with factory(store) as client:
        sync_once(store, client, clock=lambda: time.time() + 600)  # this till's clock runs 10 minutes fast
    assert 599 < store.get("clock_skew_s") < 601
    eng = engine(store, factory, clock=lambda: time.time() + 600)
    eng.start()
    try:
        status = eng.sync_now(wait_s=10)
    finally:
        eng.stop()
    assert status.clock_skew_flagged is True
    # A token valid for 5 more minutes on the backend's clock is not expired here.
    personal = next(v for v in info["vouchers"] if v["kind"] == "personal")["id"]
    claim = backend.create_claim(personal, "c1")
    ctx = store.context(time.time() + 600)
    assert abs(ctx.now - time.time()) < 5
    assert redeem(store, claim["token"], method=Method.CAMERA, clock=lambda: time.time() + 600).verdict.accepted


def test_stopping_while_a_back_off_ends_raises_nowhere(tmp_path):
    """Stopped at any moment of quick back-offs, no thread dies of an error (a
    fired one-shot scheduler job removed during shutdown once did)."""
    store = TillStore(tmp_path / "till.sqlite3")  # not enrolled: every round fails and backs off
    store.close()
    died = []
    before = threading.excepthook
    threading.excepthook = lambda args: died.append(args.exc_value)
    try:
        for i in range(300):
            eng = SyncEngine(store.path, feed_interval_s=60,
                             backoff=Backoff(base_s=0.001, cap_s=0.001, floor_s=0.001))
            eng.start()
            time.sleep(0.002 + (i % 7) * 0.001)
            eng.stop()
    finally:
        threading.excepthook = before
    assert died == []


@pytest.mark.allow_log_warnings(r"^Run time of job")
def test_a_tick_still_pending_is_no_warning_in_the_tills_log_but_other_scheduler_warnings_are(caplog):
    """A busy machine can starve the scheduler's one pool thread; the tick it then skips is only a
    wake-up (one is still pending), so the engine drops apscheduler's warning about it, and only it."""
    scheduler_log = logging.getLogger("apscheduler.scheduler")
    with caplog.at_level(logging.WARNING, logger="apscheduler.scheduler"):
        scheduler_log.warning('Execution of job "%s" skipped: maximum number of running instances reached (%d)',
                              "SimpleQueue.put (trigger: interval[0:00:02])", 1)
        scheduler_log.warning('Run time of job "%s" was missed by %s', "SimpleQueue.put", "0:00:05")
    assert [r.getMessage()[:15] for r in caplog.records] == ["Run time of job"]
