"""The backend's storage: closing it closes every connection it opened, in every thread."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from server_stub.datadir import DataDir
from server_stub.storage.base import Storage
from server_stub.storage.sqlite import SQLiteStorage


@pytest.fixture
def db_path(tmp_path) -> str:
    data = DataDir(tmp_path / "backend")
    data.init()
    return str(data.db_path)


def reads_in_threads(storage: Storage, count: int) -> tuple[list[sqlite3.Connection], threading.Event, list]:
    """The read connection of each of `count` threads, alive until the event is set (then join the threads)."""
    conns: list[sqlite3.Connection] = []
    opened, release = threading.Barrier(count + 1), threading.Event()

    def reader():
        db = storage.read()
        db.execute("SELECT count(*) FROM retailers").fetchone()
        conns.append(db.conn)
        opened.wait()
        release.wait()
    threads = [threading.Thread(target=reader) for _ in range(count)]
    for thread in threads:
        thread.start()
    opened.wait()
    return conns, release, threads


def test_close_closes_every_threads_read_connection_and_the_writers(db_path):
    storage = SQLiteStorage(db_path)
    conns, release, threads = reads_in_threads(storage, 4)
    own = storage.read().conn
    storage.submit(lambda db: db.execute("INSERT INTO retailers (id, name, created_at) VALUES ('r', 'R', 0)"))
    assert len({id(c) for c in conns + [own]}) == 5  # one connection per thread
    storage.close()
    try:
        for conn in conns + [own]:
            with pytest.raises(sqlite3.ProgrammingError, match="closed"):
                conn.execute("SELECT 1")
    finally:
        release.set()
        for thread in threads:
            thread.join()
    with pytest.raises(RuntimeError, match="writer is closed"):
        storage.submit(lambda db: None)


def test_after_close_no_thread_opens_another_connection(db_path):
    storage = SQLiteStorage(db_path)
    storage.close()
    with pytest.raises(RuntimeError, match="closed"):
        storage.read()


def test_each_thread_keeps_its_own_connection_and_sees_the_writers_commits(db_path):
    storage = SQLiteStorage(db_path)
    try:
        first = storage.read()
        assert storage.read() is first
        storage.submit(lambda db: db.execute("INSERT INTO retailers (id, name, created_at) VALUES ('r', 'R', 0)"))
        seen = []
        thread = threading.Thread(target=lambda: seen.append(
            (storage.read() is first, storage.read().execute("SELECT name FROM retailers").fetchall())))
        thread.start()
        thread.join()
        assert seen == [(False, [("R",)])]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):  # reads are reads only
            first.execute("INSERT INTO retailers (id, name, created_at) VALUES ('s', 'S', 0)")
    finally:
        storage.close()


def test_a_clash_is_the_storages_integrity_error(db_path):
    storage = SQLiteStorage(db_path)
    try:
        row = ("r", "R", 0.0)
        storage.insert_row("retailers", ("id", "name", "created_at"), row)
        with pytest.raises(storage.IntegrityError):
            storage.insert_row("retailers", ("id", "name", "created_at"), row)
    finally:
        storage.close()


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # PostgreSQL's: test_pg_storage.py
def test_backend_close_closes_the_connections_of_its_request_threads(api):
    backend = api.backend
    conns, release, threads = reads_in_threads(backend.storage, 3)
    try:
        assert api.client.get("/health").status_code == 200  # this thread's read, through the app
        backend.close()
        for conn in conns + [backend.read().conn]:
            with pytest.raises(sqlite3.ProgrammingError):
                conn.execute("SELECT 1")
    finally:
        release.set()
        for thread in threads:
            thread.join()
