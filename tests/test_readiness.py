"""`/health/ready`: each check with its own ok, 503 when any is not, values for an admin token only, on both
engines; `/health` stays the liveness check."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from api_fixtures import bearer
from server_stub.operations import credentials

CHECKS = {"database", "disk", "write_queue", "signing_key", "schema", "events_head"}


def ready(api, headers=None):
    response = api.client.get("/health/ready", headers=headers or {})
    return response.status_code, response.json()


def test_ready_says_each_check_and_its_value_only_to_an_admin_token(api):
    status, body = ready(api)
    assert status == 200 and body["status"] == "ok"
    assert set(body["checks"]) == CHECKS
    assert all(check == {"ok": True} for check in body["checks"].values())  # anyone: ok, nothing more
    assert ready(api, bearer("not-a-token-" + "x" * 20)) == (200, {**body, "server_time": pytest.approx(
        body["server_time"], abs=60)})  # a wrong token is no token, not a 401 for the load balancer
    claims_token = credentials.create_token(api.backend.ctx, "claims", "customer app")["token"]
    assert ready(api, bearer(claims_token))[1]["checks"]["database"] == {"ok": True}  # another scope: no values
    metrics_token = credentials.create_token(api.backend.ctx, "metrics", "prometheus")["token"]
    for headers in (api.admin, bearer(metrics_token)):
        status, body = ready(api, headers)
        checks = body["checks"]
        assert status == 200 and all(check["ok"] for check in checks.values())
        assert checks["database"]["value"] == "writable"
        assert checks["schema"]["value"]["database"] == checks["schema"]["value"]["program"] >= 6
        assert checks["signing_key"]["value"] == api.backend.kid
        assert checks["write_queue"]["value"] == 0
        assert checks["disk"]["value"]["data_folder"]["free_mb"] > 0
        head = api.rows("SELECT coalesce(max(seq), 0) FROM events")[0][0]
        assert checks["events_head"]["value"] == head
        if api.database is None:
            assert checks["disk"]["value"]["database_folder"]["free_mb"] > 0
        else:  # PostgreSQL's disk is the database host's
            assert "PostgreSQL" in checks["disk"]["value"]["database_folder"]
    assert api.client.get("/health").status_code == 200


def test_the_probe_really_writes_and_the_head_follows_the_feed(api):
    api.backend.readiness.probe_every_s = 0
    ready(api)
    first = api.rows("SELECT value FROM backend_meta WHERE key = 'ready_probe'")[0][0]
    time.sleep(0.01)
    ready(api)
    assert api.rows("SELECT value FROM backend_meta WHERE key = 'ready_probe'")[0][0] != first
    till, claim = api.enroll(), api.claim()
    head = ready(api, api.admin)[1]["checks"]["events_head"]["value"]
    assert api.redeem(till, claim["token"]).status_code == 201  # its feed event
    assert ready(api, api.admin)[1]["checks"]["events_head"]["value"] == head + 1


def test_the_probe_writes_at_most_once_a_second_whoever_asks(api):
    ready(api)
    stamp = api.rows("SELECT value FROM backend_meta WHERE key = 'ready_probe'")[0][0]
    for _ in range(20):
        assert ready(api)[0] == 200
    assert api.rows("SELECT value FROM backend_meta WHERE key = 'ready_probe'")[0][0] == stamp


def test_low_disk_is_not_ready_with_the_same_body(api, monkeypatch):
    monkeypatch.setitem(api.backend.config, "ready_min_free_mb", 10**12)
    status, body = ready(api)
    assert status == 503 and body["status"] == "unavailable"
    assert body["checks"]["disk"]["ok"] is False and "data_folder" in body["checks"]["disk"]["why"]
    assert body["checks"]["database"] == {"ok": True}


def test_a_schema_other_than_the_programs_is_not_ready(api, monkeypatch):
    monkeypatch.setattr(type(api.backend.storage), "SCHEMA_VERSION", api.backend.storage.SCHEMA_VERSION + 1)
    status, body = ready(api, api.admin)
    assert status == 503 and body["checks"]["schema"]["ok"] is False
    assert "this program at" in body["checks"]["schema"]["why"]


def test_a_signing_key_missing_on_this_host_is_not_ready(api):
    kid = api.backend.kid
    key_file = api.path / "keys" / f"{kid}.pem"
    kept = key_file.read_bytes()
    key_file.unlink()
    api.backend.keys._private.clear()  # as a process that has not signed yet (a new worker)
    try:
        status, body = ready(api)
        assert status == 503 and body["checks"]["signing_key"] == {"ok": False, "why": "signing_key_missing"}
    finally:
        key_file.write_bytes(kept)
    assert ready(api)[0] == 200


def test_a_write_that_waits_too_long_is_not_ready_and_one_probe_waits_at_a_time(api):
    """Another writer holds the lock the probe needs: the answer comes after the probe's 2 s, not ok, and
    asking again meanwhile starts no second probe; once the lock is let go, ready again."""
    api.backend.readiness.probe_every_s = 0
    ready(api)  # the probe's row exists: over PostgreSQL it is the row locked below
    release = threading.Event()
    holding = threading.Event()

    def hold_sqlite():
        conn = sqlite3.connect(api.db_path, timeout=10)
        conn.execute("BEGIN IMMEDIATE")
        holding.set()
        release.wait(10)
        conn.rollback()
        conn.close()

    def hold_postgres():
        import psycopg
        with psycopg.connect(api.database) as conn:
            conn.execute("SELECT value FROM backend_meta WHERE key = 'ready_probe' FOR UPDATE")
            holding.set()
            release.wait(10)
            conn.rollback()
    holder = threading.Thread(target=hold_sqlite if api.database is None else hold_postgres)
    holder.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        status, body = ready(api)
        assert 1.9 < time.monotonic() - started < 5
        assert status == 503 and "waited" in body["checks"]["database"]["why"]
        started = time.monotonic()
        status, body = ready(api)  # the first probe still waits: said at once, no second one
        assert time.monotonic() - started < 1
        assert status == 503 and "a write has waited" in body["checks"]["database"]["why"]
    finally:
        release.set()
        holder.join()
    deadline = time.monotonic() + 15
    while ready(api)[0] != 200:
        assert time.monotonic() < deadline, ready(api)
        time.sleep(0.1)
