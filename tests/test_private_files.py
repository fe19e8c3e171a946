"""Files that hold secrets or personal data are their owner's only (issue "Run it for real", item 3).

A till's store holds its device token and its staff's PIN hashes; the
backend's database every till's token hash, PIN hashes and customers' ids;
the keys folder the signing key. Made 0600 (the folder 0700) from the start,
whatever the umask, and a store an earlier version left 0644 is made 0600
when it is next opened, with SQLite's side files.
"""

from __future__ import annotations

import os
import sqlite3

import pytest

from pos_app.store import TillStore
from server_stub.datadir import DataDir


def mode(path) -> int:
    return os.stat(path).st_mode & 0o777


@pytest.fixture(autouse=True)
def open_umask():
    """The most open umask a machine could have: nothing here may rely on a strict one."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_a_new_till_store_and_its_side_files_are_the_owners_only(tmp_path):
    path = tmp_path / "till.sqlite3"
    with TillStore(path):
        assert {p.name: mode(p) for p in tmp_path.iterdir() if p.name.startswith("till.sqlite3")} == {
            "till.sqlite3": 0o600, "till.sqlite3-wal": 0o600, "till.sqlite3-shm": 0o600}


def test_a_new_backend_keeps_its_database_key_and_config_private(tmp_path, backend_database):
    data = DataDir(tmp_path / "backend")
    data.init(backend_database)
    assert mode(data.keys_path) == 0o700
    assert [mode(key) for key in data.keys_path.glob("*.pem")] == [0o600]
    if backend_database is None:
        assert mode(data.db_path) == 0o600
    else:  # the folder names the database, and that is a secret too (its URL may carry a password)
        assert not data.db_path.exists() and mode(data.path / "config.json") == 0o600


def test_a_store_an_earlier_version_left_readable_is_made_private_when_opened(tmp_path):
    path = tmp_path / "till.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (a)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    for name in (path, path.with_name("till.sqlite3-wal"), path.with_name("till.sqlite3-shm")):
        os.chmod(name, 0o644)
    with TillStore(path):
        assert mode(path) == 0o600
        assert mode(path.with_name("till.sqlite3-wal")) == 0o600
        assert mode(path.with_name("till.sqlite3-shm")) == 0o600
    conn.close()
