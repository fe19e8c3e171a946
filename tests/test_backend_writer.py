"""The backend's write path under concurrency: group commit, the multi-row
insert and its fallback, and two server processes sharing one database."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from server_stub.backend import Backend
from server_stub.datadir import DB_NAME, DataDir
from server_stub.demo import add_demo_data
from server_stub.storage.writer import Writer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def backend(tmp_path):
    DataDir(tmp_path).init()
    DataDir(tmp_path).set_config(velocity_limit=0)
    backend = Backend(tmp_path)
    info = add_demo_data(backend)
    yield backend, info, tmp_path
    backend.close()


def _device(backend, info, n=0):
    answer = backend.enroll(info["enrollment_codes"][n], f"Caja {n + 1}")
    return backend.require_device(answer["device_token"])


def _personal(info, n=0):
    return [v for v in info["vouchers"] if v["kind"] == "personal"][n]["id"]


def test_concurrent_redemptions_of_one_code_accept_exactly_one(backend):
    b, info, _ = backend
    devices = [_device(b, info, 0), _device(b, info, 1)]
    claim = b.create_claim(_personal(info), "c1")
    answers = []
    barrier = threading.Barrier(16)

    def go(i):
        barrier.wait()
        answers.append(b.redeem(devices[i % 2], uuid.uuid4().hex, {"input": claim["token"], "method": "camera"}))

    threads = [threading.Thread(target=go, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] + [409] * 15
    assert all(body["verdict"]["used"]["jti"] == claim["jti"] for status, body in answers if status == 409)
    rows = b.read().execute("SELECT count(*) FROM attempts WHERE jti = ? AND status = 'accepted'",
                            (claim["jti"],)).fetchone()[0]
    assert rows == 1


def test_many_codes_at_once_are_all_recorded_in_few_commits(backend):
    b, info, _ = backend
    device = _device(b, info)
    claims = [b.create_claim(_personal(info, i % 2), f"c{i}") for i in range(64)]
    batches_before = b.writer.batches
    answers = []

    def go(claim):
        answers.append(b.redeem(device, uuid.uuid4().hex, {"input": claim["token"], "method": "camera"}))

    threads = [threading.Thread(target=go, args=(c,)) for c in claims]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [status for status, _ in answers] == [201] * 64
    assert len({body["redemption_id"] for _, body in answers}) == 64
    assert b.writer.batches - batches_before <= 64
    events = b.read().execute("SELECT count(*) FROM events WHERE type = 'redemption'").fetchone()[0]
    assert events == 64


def test_insert_row_reports_a_broken_constraint_for_that_row_only(tmp_path):
    db = sqlite3.connect(tmp_path / "t.db")
    db.execute("CREATE TABLE t (k TEXT UNIQUE, v INTEGER)")
    db.commit()
    db.close()
    writer = Writer(str(tmp_path / "t.db"))
    try:
        assert writer.insert_row("t", ("k", "v"), ("a", 1)) == 1
        results = []

        def go(key):
            try:
                results.append((key, writer.insert_row("t", ("k", "v"), (key, 2))))
            except sqlite3.IntegrityError:
                results.append((key, "refused"))

        threads = [threading.Thread(target=go, args=(k,)) for k in ("b", "a", "c", "d")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        writer.close()
    assert dict(results)["a"] == "refused"
    assert sorted(k for k, r in results if r != "refused") == ["b", "c", "d"]
    rows = sqlite3.connect(tmp_path / "t.db").execute("SELECT k FROM t ORDER BY rowid").fetchall()
    assert sorted(r[0] for r in rows) == ["a", "b", "c", "d"]


SECOND_PROCESS = """
import sys, uuid
from server_stub.backend import Backend
b = Backend(sys.argv[1])
device = b.require_device(sys.argv[2])
accepted = 0
for token in sys.argv[3:]:
    status, _ = b.redeem(device, uuid.uuid4().hex, {"input": token, "method": "camera"})
    accepted += status == 201
b.close()
print(accepted)
"""


def test_two_server_processes_share_the_database_first_wins(backend):
    b, info, data = backend
    tokens = [b.create_claim(_personal(info), f"c{i}")["token"] for i in range(40)]
    answer = b.enroll(info["enrollment_codes"][1], "Caja 2")
    device = _device(b, info, 0)
    proc = subprocess.Popen([sys.executable, "-c", SECOND_PROCESS, str(data), answer["device_token"], *tokens],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    here = sum(b.redeem(device, uuid.uuid4().hex, {"input": t, "method": "camera"})[0] == 201 for t in tokens)
    there = int(proc.communicate(timeout=120)[0])
    assert proc.returncode == 0
    assert here + there == 40
    accepted = sqlite3.connect(data / DB_NAME).execute(
        "SELECT count(DISTINCT jti), count(*) FROM attempts WHERE status = 'accepted'").fetchone()
    assert accepted == (40, 40)
