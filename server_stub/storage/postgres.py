"""The backend's storage on PostgreSQL: a read connection per thread, a pool of writers, PostgreSQL's own commits.

Reads: `read()` hands a thread its connection and never hears back when the
thread is done with it, so a pool (check out, give back) cannot serve it; each
thread gets one autocommit connection of its own, remembered weakly as
sqlite.py does (one whose thread ended is closed with it), and `close()`
closes them all. Request threads are a fixed set (granian's), so that is a
bounded number.

Writes: SQLite needs the group-commit writer because it has one writer and a
commit costs an fsync; PostgreSQL takes many writers at once and groups
concurrent commits into one WAL flush itself. So each `submit(fn)` runs
`fn(db)` in a transaction of its own on a connection from a bounded pool
(connections renewed after `max_lifetime`), and returns once it has committed
with `synchronous_commit=on`: "201" still means "survives a power cut". A
failing fn rolls back alone, because it is alone in its transaction.

Writes that read, decide, then write call `hold(db, *names)` first: an
advisory lock per name (a 64-bit blake2b of it) held until the transaction
ends, so two such writes under one name take turns, and each statement after
the lock sees what the previous holder committed. `isolation="serializable"`
is the other way (each write SERIALIZABLE, run again on a serialization
failure; `hold` then does nothing), kept for bench/pg_code_race.py, which
measured both: docs/benchmarks.md.

The schema's migrations (pg_schema) are applied on open, once however many
processes open together (pg_migrate's advisory lock).
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
import weakref
from typing import Any, Callable, Sequence

import psycopg
from psycopg_pool import ConnectionPool

from . import pg_migrate, pg_schema
from .base import Storage, StorageUnavailable, shown_dsn
from .pg_connection import PgConnection

APPLICATION = "pika-backend"  # how this backend's sessions show in pg_stat_activity


class PostgresStorage(Storage):
    IntegrityError = psycopg.errors.IntegrityError
    # Read committed (the default) would take a new snapshot per statement; said here, not only by the
    # read connections' session default, so the block stays one snapshot whatever that default becomes.
    SNAPSHOT_BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

    CONCURRENT_WRITES = True
    SCHEMA_VERSION = len(pg_schema.MIGRATIONS)
    ISOLATIONS = ("read committed", "serializable")
    SERIALIZABLE_TRIES = 20  # a write run again this many times at most on a serialization failure
    DEADLOCK_TRIES = 3  # read committed: a write PostgreSQL aborted as a deadlock's victim, run again
    # Bounds, so one stuck session (an operator's open transaction holding the feed's counter, a lost
    # client) stalls writes for seconds, not until someone notices: a write waits for a lock this long, a
    # statement runs this long, a transaction left open idle is ended by the server.
    SESSION_BOUNDS = ("SET lock_timeout = '10s'; SET statement_timeout = '60s'; "
                      "SET idle_in_transaction_session_timeout = '60s'")

    def __init__(self, dsn: str, *, writers: int = 8, max_lifetime_s: float = 1800.0,
                 application_name: str = APPLICATION, isolation: str = "read committed"):
        if isolation not in self.ISOLATIONS:
            raise ValueError(f"isolation is one of {', '.join(self.ISOLATIONS)}")
        self.dsn = dsn
        self.isolation = isolation
        self.retries = 0  # writes run again: after a serialization failure, or as a deadlock's victim
        self._connect_kwargs = {"autocommit": True, "application_name": application_name, "connect_timeout": 10}
        try:
            conn = psycopg.connect(dsn, **self._connect_kwargs)
        except psycopg.OperationalError as exc:
            raise StorageUnavailable(f"cannot reach the database {shown_dsn(dsn)}: {str(exc).strip()}") from None
        with conn:
            pg_migrate.apply(conn, pg_schema.MIGRATIONS)
        self._pool = ConnectionPool(dsn, min_size=1, max_size=writers, max_lifetime=max_lifetime_s,
                                    kwargs=self._connect_kwargs, configure=self._configure, open=False,
                                    name="pika-writers")
        self._pool.open(wait=True, timeout=30.0)
        self._local = threading.local()
        self._lock = threading.Lock()  # guards _reads, _columns, _writing and _closed
        self._idle = threading.Condition(self._lock)  # no write under way (for close)
        self._writing = 0
        self._reads: weakref.WeakSet[PgConnection] = weakref.WeakSet()
        self._columns: dict[str, frozenset[str]] = {}
        self._closed = False

    def read(self) -> PgConnection:
        db = getattr(self._local, "db", None)
        if db is None or db.raw.closed:
            db = self._open_read()
        return db

    def _open_read(self) -> PgConnection:
        raw = psycopg.connect(self.dsn, **self._connect_kwargs)
        # Read-only, as SQLite's reads are (query_only). And a `with db.conn:` block on a read (the
        # catalog, a booklet) is one snapshot, as a SQLite read transaction is: repeatable read.
        raw.execute("SET default_transaction_read_only = on; "
                    "SET default_transaction_isolation = 'repeatable read'; " + self.SESSION_BOUNDS)
        db = PgConnection(raw)
        # The wrapper goes when its thread does; its connection must not linger on the server.
        weakref.finalize(db, raw.close)
        with self._lock:
            if self._closed:
                raw.close()
                raise RuntimeError("the storage is closed")
            self._reads.add(db)
        self._local.db = db
        return db

    def submit(self, fn: Callable[[PgConnection], Any], one_statement: bool = False) -> Any:
        """`fn(db)` in a write transaction of its own (`one_statement`: fn runs exactly one statement,
        which is then sent as its own transaction)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the storage is closed")
            self._writing += 1
        # Read committed: the holds' order leaves no deadlock we know of; one PostgreSQL still finds
        # (it aborts one of the two) is run again rather than answered as a 500.
        serializable = self.isolation == "serializable"
        tries = self.SERIALIZABLE_TRIES if serializable else self.DEADLOCK_TRIES
        again = ((psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected) if serializable
                 else psycopg.errors.DeadlockDetected)
        try:
            for attempt in range(1, tries + 1):
                try:
                    return self._run(fn, one_statement)
                except psycopg.errors.DiskFull as exc:  # rolled back: nothing of it is written
                    raise self.refused_full(exc) from exc
                except again:
                    if attempt == tries:
                        raise
                    with self._lock:
                        self.retries += 1
                    # Jittered and growing, so the writers that collided do not collide again at once.
                    time.sleep(random.uniform(0, 0.001 * 2 ** min(attempt, 6)))
        finally:
            with self._lock:
                self._writing -= 1
                if not self._writing:
                    self._idle.notify_all()

    def _run(self, fn: Callable[[PgConnection], Any], one_statement: bool = False) -> Any:
        with self._pool.connection() as raw:
            if one_statement:
                # In autocommit one statement is a transaction of its own, committed (durably, its
                # deferred triggers run) as it ends: no BEGIN and COMMIT to send and wait for.
                return fn(PgConnection(raw))
            with raw.transaction():  # committed (durably) on the way out, rolled back if fn raised
                return fn(PgConnection(raw))

    def write_queue(self) -> int:
        """Writes waiting for a connection of the pool (all of them busy)."""
        return int(self._pool.get_stats().get("requests_waiting", 0))

    def hold(self, db: PgConnection, *names: str) -> None:
        if self.isolation == "serializable" or not names:
            return  # serializable writes are checked by the database as a whole instead
        # Sorted by the lock's own key (not the name): one order in the space the locks live in.
        keys = sorted({_lock_key(name) for name in names})
        db.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(?::bigint[]) AS held(k)", (keys,)).fetchall()

    def insert_row(self, table: str, columns: tuple[str, ...], row: Sequence[Any]) -> int | None:
        known = self._table_columns(table)
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise ValueError(f"{table} has no column {', '.join(unknown)}")
        returning = " RETURNING id" if "id" in known else ""
        sql = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
               + returning)

        def insert(db: PgConnection) -> int | None:
            cursor = db.execute(sql, row)
            return cursor.fetchone()[0] if returning else None
        return self.submit(insert, one_statement=True)

    def _table_columns(self, table: str) -> frozenset[str]:
        """A table's columns, asked once (names come from code; unknown ones are refused, not spliced)."""
        columns = self._columns.get(table)
        if columns is None:
            rows = self.read().execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = ?", (table,)).fetchall()
            if not rows:
                raise ValueError(f"no table {table!r}")
            columns = frozenset(r[0] for r in rows)
            with self._lock:
                self._columns[table] = columns
        return columns

    def close(self) -> None:
        """Refuse new writes, let those under way commit, then close every connection, in any thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while self._writing:  # the pool's own close would leave them to close on their return
                self._idle.wait()
            opened = list(self._reads)
            self._reads.clear()
        self._pool.close()
        for db in opened:
            db.close()

    def _configure(self, conn: psycopg.Connection) -> None:
        # Whatever the server or the database defaults to: a commit returns only once it is on disk.
        conn.execute("SET synchronous_commit = on")
        conn.execute(self.SESSION_BOUNDS)
        conn.execute(f"SET default_transaction_isolation = '{self.isolation}'")  # one of ISOLATIONS


def _lock_key(name: str) -> int:
    """A name's advisory-lock key: the same in every process and release (Python's hash() is neither)."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                          "big", signed=True)
