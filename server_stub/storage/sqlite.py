"""The backend's storage on SQLite: WAL, a read connection per thread, the group-commit writer.

Every read connection is remembered (weakly: one whose thread ended goes
away with it), so `close()` closes them all, not only the closing thread's.
They are opened without SQLite's same-thread check for that one call; each is
still used only by the thread that opened it.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from typing import Any, Callable, Sequence

import sqlite_utils

from pos_app.core.migrate import open_database

from .base import Storage, disk_full
from .schema import MIGRATIONS
from .writer import Writer


class SQLiteStorage(Storage):
    IntegrityError = sqlite3.IntegrityError
    SCHEMA_VERSION = len(MIGRATIONS)

    def __init__(self, path: str):
        self.path = path
        self.writer = Writer(path)
        self._local = threading.local()
        self._lock = threading.Lock()  # guards _reads and _closed
        self._reads: weakref.WeakSet[sqlite_utils.Database] = weakref.WeakSet()
        self._closed = False

    def read(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._open_read()
        return db

    def _open_read(self) -> sqlite_utils.Database:
        db = open_database(self.path, synchronous="NORMAL", check_same_thread=False)
        db.conn.execute("PRAGMA query_only=ON")
        with self._lock:
            if self._closed:
                db.conn.close()
                raise RuntimeError("the storage is closed")
            self._reads.add(db)
        self._local.db = db
        return db

    def submit(self, fn: Callable[[sqlite_utils.Database], Any]) -> Any:
        try:
            return self.writer.submit(fn)
        except sqlite3.OperationalError as exc:
            if disk_full(exc):  # the batch rolled back whole: nothing of it is written
                raise self.refused_full(exc) from exc
            raise

    def insert_row(self, table: str, columns: tuple[str, ...], row: Sequence[Any]) -> int:
        try:
            return self.writer.insert_row(table, columns, row)
        except sqlite3.OperationalError as exc:
            if disk_full(exc):
                raise self.refused_full(exc) from exc
            raise

    def write_queue(self) -> int:
        return self.writer.queued()

    def close(self) -> None:
        self.writer.close()
        with self._lock:
            self._closed = True
            opened = list(self._reads)
            self._reads.clear()
        for db in opened:
            db.conn.close()
