"""Numbered migrations applied to a PostgreSQL database, as pos_app.core.migrate applies them to SQLite.

Each migration runs once, in order, in a transaction of its own, and is
recorded in `_migrations` (the same table, the same numbers as SQLite's).
Several backend processes may start at once over one database: a
transaction-scoped advisory lock makes them take turns, so each migration is
applied by exactly one of them and the others find it done.
"""

from __future__ import annotations

import time
from typing import Sequence

from .pg_schema import Migration

# pg_advisory_xact_lock's key for "migrating the Pika backend's schema" (any fixed 64-bit number).
_LOCK_KEY = 0x50494B41_4D494752  # "PIKA" "MIGR"


def apply(conn, migrations: Sequence[Migration]) -> int:
    """Apply what is missing over a psycopg connection (not in a transaction); the version now in force."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute("CREATE TABLE IF NOT EXISTS _migrations "
                     "(version integer PRIMARY KEY, name text, applied_at double precision)")
    for version, migration in enumerate(migrations, start=1):
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            if conn.execute("SELECT 1 FROM _migrations WHERE version = %s", (version,)).fetchone():
                continue
            migration(conn)
            conn.execute("INSERT INTO _migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                         (version, migration.__name__, time.time()))
    return len(migrations)


def version(conn) -> int:
    """The highest migration applied (0 for a database that has none)."""
    if conn.execute("SELECT to_regclass('_migrations')").fetchone()[0] is None:
        return 0
    return conn.execute("SELECT coalesce(max(version), 0) FROM _migrations").fetchone()[0]
