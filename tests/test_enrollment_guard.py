"""Enrollment codes against guessing (issue 14, finding 9): wrong codes counted per client address in the
database, `429 too_many_attempts` after ten, each logged with the address; codes expire within a day.

Found on loopback (856 guesses a second, unthrottled, unlogged), so the main case runs on a real port.
"""

from __future__ import annotations

import logging
import time

import httpx
import pytest

from api_fixtures import BASE_URL
from server_stub.app import API, App
from server_stub.backend import Backend
from server_stub.operations import enrollment_guard
from server_stub.serving import EmbeddedServer

WRONG = "K7QF-3M2X-TA"  # well formed; no store has it
GUARD_LOG = r"^enrollment refused from "


def _client(app, address: str) -> httpx.Client:
    """The app in-process, as a client at `address` would reach it."""
    return httpx.Client(transport=httpx.WSGITransport(app=app, remote_addr=address), base_url=f"{BASE_URL}{API}")


def _enroll(client, code: str, **kw) -> httpx.Response:
    return client.post("/devices/enroll", json={"code": code, "name": "Caja"}, **kw)


def _code(api) -> str:
    return api.ok(api.client.post("/enrollment-codes", headers=api.admin, json={"store_id": api.store_id}), 201)["code"]


def _guess(client, times: int, **kw) -> list[int]:
    return [_enroll(client, WRONG, **kw).status_code for _ in range(times)]


@pytest.mark.allow_log_warnings(GUARD_LOG)
def test_eleven_wrong_codes_from_one_address_are_429_even_for_a_right_code(api, caplog):
    right = _code(api)
    devices = api.rows("SELECT count(*) FROM devices")
    server = EmbeddedServer(App(api.backend)).start()
    try:
        with httpx.Client(base_url=f"{server.url}{API}", timeout=5) as client:
            with caplog.at_level(logging.WARNING, logger="server_stub"):
                assert _guess(client, enrollment_guard.LIMIT) == [403] * enrollment_guard.LIMIT
                locked = _enroll(client, WRONG)
                assert locked.status_code == 429
                assert locked.json()["error"]["code"] == "too_many_attempts"
                assert 0 < int(locked.headers["Retry-After"]) <= enrollment_guard.LOCK_S
                refused = _enroll(client, right)  # a right code too, while the address is locked
                assert (refused.status_code, refused.json()["error"]["code"]) == (429, "too_many_attempts")
    finally:
        server.stop()
    assert api.rows("SELECT count(*) FROM devices") == devices  # the right code was not used
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("server_stub")]
    assert len([line for line in lines if "127.0.0.1" in line]) == enrollment_guard.LIMIT  # one per failure
    assert any("locked" in line for line in lines)
    assert not any(WRONG.replace("-", "") in line.replace("-", "") or right in line for line in lines)
    # another address is not affected: the same right code enrolls from there
    with _client(api.app, "10.0.0.2") as elsewhere:
        assert _enroll(elsewhere, right).status_code == 201


@pytest.mark.allow_log_warnings(GUARD_LOG)
def test_the_count_is_shared_by_two_backends_over_one_folder(api):
    with _client(api.app, "10.1.1.1") as first:
        assert _guess(first, enrollment_guard.LIMIT) == [403] * enrollment_guard.LIMIT
    second = Backend(api.path)  # another worker process's, or the backend after a restart
    try:
        with _client(App(second), "10.1.1.1") as client:
            assert _enroll(client, _code(api)).status_code == 429
        with _client(App(second), "10.1.1.2") as client:
            assert _enroll(client, WRONG).status_code == 403
    finally:
        second.close()


@pytest.mark.allow_log_warnings(GUARD_LOG)
def test_x_forwarded_for_is_not_believed(api):
    with _client(api.app, "10.2.2.2") as client:
        statuses = [_enroll(client, WRONG, headers={"X-Forwarded-For": f"192.0.2.{n}"}).status_code
                    for n in range(enrollment_guard.LIMIT + 1)]
    assert statuses == [403] * enrollment_guard.LIMIT + [429]


@pytest.mark.allow_log_warnings(GUARD_LOG)
def test_the_lock_ends_and_the_count_starts_again(api):
    now = time.time()
    api.backend.clock = lambda: now
    with _client(api.app, "10.3.3.3") as client:
        assert _guess(client, enrollment_guard.LIMIT + 1)[-1] == 429
        now += enrollment_guard.LOCK_S + 1
        assert _enroll(client, _code(api)).status_code == 201  # the lock is over: a right code works
        assert _guess(client, enrollment_guard.LIMIT - 1) == [403] * (enrollment_guard.LIMIT - 1)


@pytest.mark.allow_log_warnings(GUARD_LOG)
def test_failures_count_within_the_window_and_a_right_code_clears_them(api):
    now = time.time()
    api.backend.clock = lambda: now
    with _client(api.app, "10.4.4.4") as client:
        _guess(client, enrollment_guard.LIMIT - 1)
        now += enrollment_guard.WINDOW_S + 1  # the window passed: those failures are old
        assert _guess(client, enrollment_guard.LIMIT - 1) == [403] * (enrollment_guard.LIMIT - 1)
        assert _enroll(client, _code(api)).status_code == 201
        assert _guess(client, enrollment_guard.LIMIT - 1) == [403] * (enrollment_guard.LIMIT - 1)
        assert _enroll(client, WRONG).status_code == 403  # the tenth since the right code: now locked
        assert _enroll(client, WRONG).status_code == 429


@pytest.mark.allow_log_warnings(GUARD_LOG)
def test_the_table_is_bounded(api, monkeypatch):
    monkeypatch.setattr(enrollment_guard, "MAX_ROWS", 5)
    now = time.time()
    api.backend.clock = lambda: now
    for n in range(12):
        now += 1  # the oldest go first
        with _client(api.app, f"10.5.0.{n}") as client:
            assert _enroll(client, WRONG).status_code == 403
    assert api.rows("SELECT count(*) FROM enrollment_failures") == [(5,)]
    assert {a for (a,) in api.rows("SELECT address FROM enrollment_failures")} == {f"10.5.0.{n}" for n in range(7, 12)}
    now += enrollment_guard.WINDOW_S + 1  # stale rows go when the next address is counted
    with _client(api.app, "10.5.1.1") as client:
        _enroll(client, WRONG)
    assert api.rows("SELECT address FROM enrollment_failures") == [("10.5.1.1",)]


def test_enrollment_codes_expire_within_a_day_by_default(api):
    before = time.time()
    made = api.ok(api.client.post("/enrollment-codes", headers=api.admin, json={"store_id": api.store_id}), 201)
    assert made["expires_at"] <= before + 24 * 3600 + 5
    assert api.backend.create_enrollment_code(api.store_id)["expires_at"] <= time.time() + 24 * 3600


@pytest.mark.allow_log_warnings(GUARD_LOG)
def test_the_till_hears_a_lockout_as_a_refusal_not_as_no_network(api):
    from pos_app.sync.client import BackendClient, Refused

    transport = httpx.WSGITransport(app=App(api.backend), remote_addr="10.9.8.7")
    with BackendClient(BASE_URL, transport=transport) as till:
        for _ in range(enrollment_guard.LIMIT):
            with pytest.raises(Refused) as wrong:
                till.enroll(WRONG, "Caja")
            assert wrong.value.status == 403
        with pytest.raises(Refused) as locked:
            till.enroll(_code(api), "Caja")
    assert (locked.value.status, locked.value.code) == (429, "too_many_attempts")
