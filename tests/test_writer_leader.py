"""The group-commit writer without a thread of its own: the lead passes from
request to request, a failing write stays its own, and close() is clean."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from server_stub.storage.writer import Writer


@pytest.fixture
def writer(tmp_path):
    db = sqlite3.connect(tmp_path / "t.db")
    db.execute("CREATE TABLE t (k TEXT UNIQUE, v INTEGER)")
    db.commit()
    db.close()
    w = Writer(str(tmp_path / "t.db"))
    yield w
    w.close()


def test_many_threads_each_get_their_own_outcome(writer):
    results: dict[int, object] = {}
    start = threading.Barrier(24)

    def go(i):
        start.wait()
        try:
            if i % 6 == 5:
                results[i] = writer.submit(lambda db: 1 / 0)
            else:
                results[i] = writer.insert_row("t", ("k", "v"), (f"k{i}", i))
        except ZeroDivisionError:
            results[i] = "failed"

    threads = [threading.Thread(target=go, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert sorted(i for i, r in results.items() if r == "failed") == sorted(i for i in range(24) if i % 6 == 5)
    rowids = [r for r in results.values() if r != "failed"]
    assert len(set(rowids)) == 20
    assert writer.writes == 24 and writer.batches <= 24


def test_writes_continue_after_a_failed_batch_start(writer, tmp_path):
    # BEGIN IMMEDIATE fails while another connection holds the write lock:
    # that batch is refused, the lead falls free, the next write succeeds.
    blocker = sqlite3.connect(tmp_path / "t.db", timeout=0, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    writer._conn.execute("PRAGMA busy_timeout=0")
    with pytest.raises(sqlite3.OperationalError):
        writer.insert_row("t", ("k", "v"), ("x", 1))
    blocker.execute("ROLLBACK")
    blocker.close()
    assert writer.insert_row("t", ("k", "v"), ("x", 1)) >= 1


def test_close_refuses_new_writes(writer, tmp_path):
    assert writer.submit(lambda db: db.execute("INSERT INTO t (k) VALUES ('a')").lastrowid) == 1
    writer.close()
    writer.close()  # twice is fine
    with pytest.raises(RuntimeError):
        writer.insert_row("t", ("k",), ("b",))
    assert sqlite3.connect(tmp_path / "t.db").execute("SELECT count(*) FROM t").fetchone()[0] == 1
