"""A full disk is `503 storage_full` on every write, with nothing half-written, and the backend works again
once there is room: SQLite made really full (its page limit on the write connection; a tiny tmpfs when the
suite runs as root) and PostgreSQL's tablespace on a tiny tmpfs (root only)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from api_fixtures import copy_backend, drop_backend, new_key
from server_stub import errors
from server_stub.http import Router, serve_request
from server_stub.storage.base import disk_full

FULL_LOG = r"^the disk is full: \d+ writes refused"


def sync_entry(**overrides) -> dict:
    entry = {"key": new_key(), "at": time.time() - 5, "accepted": False, "reason": "expired", "method": "typed",
             "decided": "offline"}
    entry.update(overrides)
    return entry


def recorded(api, keys) -> int:
    return api.rows(f"SELECT count(*) FROM attempts WHERE key IN ({', '.join('?' * len(keys))})", tuple(keys))[0][0]


def assert_refused_full(response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "storage_full"
    assert response.headers["Retry-After"] == "60"


def until_refused(send, limit: int = 400):
    """Call `send()` (a new request each time) until the backend answers 503 storage_full; the refused
    request's own result of `send`. A disk is full for one write and not yet for a smaller one: a page
    may still have room for a short row."""
    for _ in range(limit):
        response, *what = send()
        if response.status_code >= 300:
            assert_refused_full(response)
            return what
    raise AssertionError(f"{limit} writes and the disk is not full yet")


def prepare(api, claims: int = 60):
    api.till = api.enroll()
    api.claims = [api.claim(customer_id=f"cust-{i}") for i in range(claims)]
    api.backend.readiness.probe_every_s = 0  # every ask probes afresh
    api.backend.config["ready_full_memory_s"] = 0.3


def refused_whole_then_recovers(api, make_room) -> None:
    """With the disk full: a redemption, a sync batch and an admin write are refused whole and /health/ready
    is 503; after `make_room()` the same requests succeed and readiness comes back."""
    def redeem():
        key, token = new_key(), api.claims.pop()["token"]
        return api.redeem(api.till, token, key=key), key, token

    def sync():
        batch = [sync_entry() for _ in range(3)]
        return api.client.post("/sync", headers=api.till.auth, json={"entries": batch}), batch

    def retailer():
        name = new_key()
        return api.client.post("/retailers", headers=api.admin, json={"name": name}), name
    key, token = until_refused(redeem)
    [batch] = until_refused(sync)
    [name] = until_refused(retailer)
    assert recorded(api, [key] + [e["key"] for e in batch]) == 0  # nothing of the refused ones
    assert name not in {r["name"] for r in api.ok(api.client.get("/retailers", headers=api.admin))["retailers"]}
    ready = api.client.get("/health/ready")
    assert ready.status_code == 503 and ready.json()["checks"]["database"]["ok"] is False

    make_room()
    time.sleep(0.4)  # past ready_full_memory_s
    assert api.redeem(api.till, token, key=key).status_code == 201  # the key was not taken by the refusal
    results = api.ok(api.client.post("/sync", headers=api.till.auth, json={"entries": batch}))["results"]
    assert [r["status"] for r in results] == ["recorded"] * 3
    assert recorded(api, [key] + [e["key"] for e in batch]) == 4
    assert api.client.post("/retailers", headers=api.admin, json={"name": name}).status_code == 201
    assert api.client.get("/health/ready").status_code == 200


# --- SQLite, really full: its page limit ------------------------------------------------------


@pytest.mark.allow_log_warnings(FULL_LOG)
def test_sqlite_at_its_page_limit_refuses_every_write_whole_and_recovers(api_template, tmp_path):
    api = copy_backend(api_template, tmp_path / "backend")
    try:
        prepare(api)
        conn = api.backend.writer._conn  # the one write connection: every write of this process
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        refused_whole_then_recovers(api, lambda: conn.execute("PRAGMA max_page_count = 1073741823"))
    finally:
        drop_backend(api)


@pytest.mark.allow_log_warnings(FULL_LOG)
def test_a_batch_the_full_disk_ends_fails_whole_and_the_writer_goes_on(api_template, tmp_path):
    """SQLite rolls the whole transaction back on SQLITE_FULL (no savepoint is left): every write of the
    group commit is refused with the cause, none half-written, and the next batch commits."""
    api = copy_backend(api_template, tmp_path / "backend")
    try:
        storage, conn = api.backend.storage, api.backend.writer._conn
        conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")

        def small_then_big(db):
            db.execute("INSERT INTO backend_meta (key, value) VALUES ('small', 'x')")
            db.execute("INSERT INTO backend_meta (key, value) VALUES ('big', ?)", ("x" * 500_000,))
        with pytest.raises(errors.StorageFull):
            storage.submit(small_then_big)
        assert not api.rows("SELECT key FROM backend_meta WHERE key IN ('small', 'big')")
        assert storage.full_at is not None
        conn.execute("PRAGMA max_page_count = 1073741823")
        batches = api.backend.writer.batches
        storage.submit(small_then_big)
        assert api.backend.writer.batches == batches + 1
        assert len(api.rows("SELECT key FROM backend_meta WHERE key IN ('small', 'big')")) == 2
    finally:
        drop_backend(api)


# --- a real full disk: a tiny tmpfs (root only) ---------------------------------------------------


@contextlib.contextmanager
def tiny_disk(path: Path, size_mb: int, owner: str | None = None):
    """A tmpfs of `size_mb` mounted at `path` (made), unmounted after; skips unless root may mount."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root (the page-limit test covers SQLite without it)")
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        if owner:
            import pwd
            user = pwd.getpwnam(owner)
            os.chown(path, user.pw_uid, user.pw_gid)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill_disk(folder: Path) -> Path:
    """Write a file into `folder` until the disk is full; the file (remove it to make room)."""
    filler = folder / "filler"
    chunk = b"\0" * (256 * 1024)
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


# The rate limits' own store is on the full disk too: it says so and lets requests in (server_stub/limits).
@pytest.mark.allow_log_warnings(FULL_LOG, r"^rate limits off: their store fails")
def test_sqlite_on_a_full_disk_refuses_writes_and_recovers(api_template, tmp_path):
    with tiny_disk(tmp_path / "disk", 24) as disk:
        api = copy_backend(api_template, disk / "backend")
        try:
            prepare(api)
            api.backend.config["ready_min_free_mb"] = 1
            filler = fill_disk(disk)
            assert api.client.get("/health/ready", headers=api.admin).json()["checks"]["disk"]["ok"] is False
            refused_whole_then_recovers(api, filler.unlink)
        finally:
            drop_backend(api)


@pytest.mark.allow_log_warnings(r"^rate limits off: their store fails")
def test_postgresql_with_its_tables_on_a_full_disk_refuses_writes_and_recovers(pg_api_template, pg_cluster,
                                                                              tmp_path):
    # Not under pytest's folder, private to root: the server's own user must reach and own the tablespace.
    mount = Path(tempfile.mkdtemp(prefix="pika-full-"))
    mount.chmod(0o755)
    with tiny_disk(mount, 8, pg_cluster.as_user) as disk:
        api = copy_backend(pg_api_template, tmp_path / "backend", pg_cluster)
        name = api.database.rsplit("/", 1)[1]
        try:
            pg_cluster.sql(f"CREATE TABLESPACE tiny_{name} LOCATION '{disk}'")
            # The tables a redemption, a sync and a new retailer write go to the tiny disk, with every index.
            for table in ("attempts", "events", "retailers"):
                pg_cluster.sql(f"ALTER TABLE {table} SET TABLESPACE tiny_{name}", name)
            pg_cluster.sql(f"ALTER INDEX ALL IN TABLESPACE pg_default SET TABLESPACE tiny_{name}", name)
            prepare(api)
            filler = fill_disk(disk)
            refused_whole_then_recovers(api, filler.unlink)
        finally:
            drop_backend(api, pg_cluster)
            pg_cluster.sql(f"DROP TABLESPACE IF EXISTS tiny_{name}")
    mount.rmdir()


# --- the mapping itself --------------------------------------------------------------------------


def answer(exc: Exception) -> tuple[int, dict, dict]:
    router = Router()

    def handler(request):
        raise exc
    router.add("GET", "/x", handler)
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = int(status.split()[0]), dict(headers)
    body = b"".join(serve_request(router, {"REQUEST_METHOD": "GET", "PATH_INFO": "/x"}, start_response))
    return seen["status"], json.loads(body), seen["headers"]


def test_a_file_written_on_a_full_disk_is_storage_full_not_a_bug():
    status, body, headers = answer(OSError(errno.ENOSPC, "No space left on device"))
    assert (status, body["error"]["code"], headers["Retry-After"]) == (503, "storage_full", "60")
    assert answer(errors.StorageFull())[:2] == (503, {"error": {"code": "storage_full", "message": errors.StorageFull().message},
                                                      "retry_after_s": 60})


def test_disk_full_is_recognised_from_each_engine_and_nothing_else():
    import sqlite3

    import psycopg

    assert disk_full(psycopg.errors.DiskFull("could not extend file"))
    assert disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert disk_full(sqlite3.OperationalError("database or disk is full"))
    assert not disk_full(sqlite3.OperationalError("database is locked"))
    assert not disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not disk_full(psycopg.errors.UniqueViolation("duplicate key"))
