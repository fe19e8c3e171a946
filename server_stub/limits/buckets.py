"""Where the token buckets live, so every worker process draws on the same ones.

Over PostgreSQL the UNLOGGED table `rate_buckets` (migration 6): no WAL per
request, and a crash that forgets the buckets only forgives a client. Over
SQLite a side file in the data folder, `limits.sqlite3` (0600, WAL,
synchronous OFF): it is not the ledger, so it never goes through the
database's group-commit writer and never waits for a disk flush.

A check is one atomic statement on either engine: the upsert refills the
bucket by the time since its last use, takes one token if one is there and
returns what is left; no row back means refused (nothing changed). Only a
refusal reads again, to say how long to wait.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from pos_app.core.migrate import make_private

FILE_NAME = "limits.sqlite3"
MAX_WAIT_S = 3600  # a Retry-After is never longer than this, whatever the config says

_SQLITE_TAKE = """
INSERT INTO rate_buckets (key, tokens, at) VALUES (:key, :burst - 1, :now)
ON CONFLICT (key) DO UPDATE SET
    tokens = min(:burst, rate_buckets.tokens + max(0, :now - rate_buckets.at) * :rate) - 1,
    at = max(rate_buckets.at, :now)
WHERE min(:burst, rate_buckets.tokens + max(0, :now - rate_buckets.at) * :rate) >= 1
RETURNING tokens"""

# The same statement in PostgreSQL's words (LEAST/GREATEST, psycopg's named placeholders).
_PG_TAKE = """
INSERT INTO rate_buckets (key, tokens, at) VALUES (%(key)s, %(burst)s - 1, %(now)s)
ON CONFLICT (key) DO UPDATE SET
    tokens = LEAST(%(burst)s, rate_buckets.tokens + GREATEST(0, %(now)s - rate_buckets.at) * %(rate)s) - 1,
    at = GREATEST(rate_buckets.at, %(now)s)
WHERE LEAST(%(burst)s, rate_buckets.tokens + GREATEST(0, %(now)s - rate_buckets.at) * %(rate)s) >= 1
RETURNING tokens"""


def wait_s(row: Any, rate: float, burst: float, now: float) -> float:
    """Seconds until the bucket in `row` (tokens, at) holds one token again, if nobody else takes one."""
    if row is None:  # pruned between the two statements: it is full again
        return 1.0 / rate
    tokens, at = row
    available = min(burst, tokens + max(0.0, now - at) * rate)
    return max(0.001, min(float(MAX_WAIT_S), (1.0 - available) / rate))


class _PerThread:
    """One connection per request thread (a file's connections cost nothing elsewhere), all closed by
    `close()`."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list = []  # request threads are a fixed set (granian's), so this stays small
        self._closed = False

    def conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the rate limiter is closed")
            conn = self._local.conn = self._open()
            with self._lock:
                self._all.append(conn)
        return conn

    def drop(self) -> None:
        """Forget this thread's connection (it failed): the next check opens a new one."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)
            try:
                conn.close()
            except Exception:  # already broken: nothing more to do
                pass

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, self._all = self._all, []
        for conn in conns:
            try:
                conn.close()
            except Exception:  # another thread's, or already broken: closing is best effort
                pass

    def _open(self):
        raise NotImplementedError


class SQLiteBuckets(_PerThread):
    """The buckets in `limits.sqlite3` beside the backend's database, shared by its worker processes."""

    def __init__(self, folder: str | Path, busy_ms: int = 200):
        super().__init__()
        self.path = str(Path(folder) / FILE_NAME)
        self.busy_ms = busy_ms
        # Every worker process makes it as it starts, at once: the first change to WAL and the table wait
        # their turn (seconds if need be), where a check waits at most `busy_ms`.
        db = self._open(timeout_s=10.0)
        try:
            db.execute("CREATE TABLE IF NOT EXISTS rate_buckets (key TEXT PRIMARY KEY, tokens REAL NOT NULL, "
                       "at REAL NOT NULL) WITHOUT ROWID")
        finally:
            db.close()

    def _open(self, timeout_s: float | None = None) -> sqlite3.Connection:
        make_private(self.path)  # 0600 before SQLite first opens it, as every backend file
        db = sqlite3.connect(self.path, timeout=self.busy_ms / 1000 if timeout_s is None else timeout_s,
                             isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")
        return db

    def take(self, key: str, rate: float, burst: float, now: float) -> float | None:
        """None if a token was taken; else the seconds to wait before one is there."""
        db = self.conn()
        params = {"key": key, "rate": rate, "burst": burst, "now": now}
        if db.execute(_SQLITE_TAKE, params).fetchone() is not None:
            return None
        return wait_s(db.execute("SELECT tokens, at FROM rate_buckets WHERE key = ?", (key,)).fetchone(),
                      rate, burst, now)

    def prune(self, before: float) -> int:
        return self.conn().execute("DELETE FROM rate_buckets WHERE at < ?", (before,)).rowcount

    def count(self) -> int:
        return self.conn().execute("SELECT count(*) FROM rate_buckets").fetchone()[0]


class PostgresBuckets:
    """The buckets in PostgreSQL's UNLOGGED `rate_buckets`, shared by every process on every host.

    A check is a round trip of a fraction of a millisecond, so a process's request threads share a few
    connections (`size`, made as needed) instead of holding one each: the database's connections are
    counted per process (docs/operating.md). A thread that finds them all busy for `wait_s` lets its
    request in, as when the database is away."""

    # A check that cannot be answered quickly is not worth waiting for: the limiter lets the request in.
    SESSION = ("SET synchronous_commit = off; SET statement_timeout = '500ms'; SET lock_timeout = '500ms'; "
               "SET idle_in_transaction_session_timeout = '10s'")
    SIZE = 2

    def __init__(self, dsn: str, connect_timeout_s: int = 2, size: int = SIZE, wait_s: float = 0.5):
        self.dsn = dsn
        self.connect_timeout_s = connect_timeout_s
        self.size = size
        self.wait_s = wait_s
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._lock = threading.Lock()
        self._made = 0
        self._closed = False

    def _open(self):
        import psycopg  # only where PostgreSQL is used

        conn = psycopg.connect(self.dsn, autocommit=True, application_name="pika-limits",
                               connect_timeout=self.connect_timeout_s)
        conn.execute(self.SESSION)
        return conn

    @contextmanager
    def _conn(self) -> Iterator[Any]:
        conn = self._acquire()
        try:
            yield conn
        except BaseException:
            self._discard(conn)  # it may be broken: the next check makes a new one
            raise
        with self._lock:
            closed = self._closed
        if closed:
            self._discard(conn)
        else:
            self._idle.put(conn)

    def _acquire(self):
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._closed:
                raise RuntimeError("the rate limiter is closed")
            make = self._made < self.size
            if make:
                self._made += 1
        if not make:
            try:
                return self._idle.get(timeout=self.wait_s)
            except queue.Empty:
                raise TimeoutError(f"the limits' {self.size} connections stayed busy for {self.wait_s} s") from None
        try:
            return self._open()
        except BaseException:
            with self._lock:
                self._made -= 1
            raise

    def _discard(self, conn) -> None:
        with self._lock:
            self._made -= 1
        try:
            conn.close()
        except Exception:  # already broken: nothing more to do
            pass

    def drop(self) -> None:
        """Nothing to forget: a connection that failed was discarded as it failed."""

    def close(self) -> None:
        with self._lock:
            self._closed = True
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return
            self._discard(conn)

    def take(self, key: str, rate: float, burst: float, now: float) -> float | None:
        params = {"key": key, "rate": float(rate), "burst": float(burst), "now": float(now)}
        with self._conn() as conn:
            if conn.execute(_PG_TAKE, params).fetchone() is not None:
                return None
            return wait_s(conn.execute("SELECT tokens, at FROM rate_buckets WHERE key = %s", (key,)).fetchone(),
                          rate, burst, now)

    def prune(self, before: float) -> int:
        with self._conn() as conn:
            return conn.execute("DELETE FROM rate_buckets WHERE at < %s", (before,)).rowcount

    def count(self) -> int:
        with self._conn() as conn:
            return conn.execute("SELECT count(*) FROM rate_buckets").fetchone()[0]
