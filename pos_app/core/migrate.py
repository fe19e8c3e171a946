"""Numbered schema migrations for the till's store and the backend's database.

Each migration is a function of a sqlite-utils Database, applied once, in
order, inside a transaction, and recorded in `_migrations`, so a store made
by any earlier version is brought up to date on open.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]


def apply(db: sqlite_utils.Database, migrations: Sequence[Migration]) -> int:
    """Apply what is missing; returns the schema version now in force."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at REAL)"
    )
    done = {row[0] for row in db.execute("SELECT version FROM _migrations").fetchall()}
    for version, migration in enumerate(migrations, start=1):
        if version in done:
            continue
        # One transaction: a migration applies whole or not at all. The
        # connection is in autocommit mode, so the transaction is begun here.
        db.execute("BEGIN IMMEDIATE")
        try:
            migration(db)
            db.execute(
                "INSERT INTO _migrations (version, name, applied_at) VALUES (?, ?, ?)",
                [version, migration.__name__, time.time()],
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return len(migrations)


def open_database(path: str, *, synchronous: str = "FULL", check_same_thread: bool = True) -> sqlite_utils.Database:
    """A WAL database with the durability the caller asks for, readable by its owner only (`make_private`)."""
    import sqlite3

    make_private(path)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=check_same_thread)
    db = sqlite_utils.Database(conn)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return db


PRIVATE = 0o600
SIDE_FILES = ("-wal", "-shm", "-journal")  # SQLite's own, made with the database file's mode


def make_private(path: str) -> None:
    """A database file made 0600 before SQLite first opens it, and one made readable to others by an earlier
    version (0644: the umask's) made 0600, with its side files: a till's store holds its device token and
    its staff's PIN hashes, the backend's database every till's token hash and customers' ids."""
    import os

    if path == ":memory:" or path.startswith("file:"):
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))  # an empty file is an empty database
        return
    except FileExistsError:
        pass
    for name in (path, *(path + side for side in SIDE_FILES)):
        try:
            if os.stat(name).st_mode & 0o077:
                os.chmod(name, PRIVATE)
        except FileNotFoundError:
            pass
        except PermissionError:  # someone else's file, opened read-only by us: not ours to change
            pass
