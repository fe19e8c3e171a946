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
    """A WAL database with the durability the caller asks for."""
    import sqlite3

    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=check_same_thread)
    db = sqlite_utils.Database(conn)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return db
