"""One writer thread that commits concurrent requests together (group commit).

SQLite has one writer, and a durable commit costs an fsync. Requests hand
their write as a function to this thread; it runs every function waiting in
one transaction, each inside its own savepoint, and commits once. A request
is answered only after the commit that holds its write is on disk, so "201"
still means "survives a power cut", at one fsync per batch, not per request.
A failing function rolls back to its savepoint alone: nothing half-written.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable

import sqlite_utils

from pos_app.core.migrate import open_database

log = logging.getLogger(__name__)

WriteFn = Callable[[sqlite_utils.Database], Any]
_STOP = object()
MAX_BATCH = 256
BUSY_WAIT_S = 30.0


class Writer:
    def __init__(self, path: str):
        self._path = path
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.batches = 0
        self.writes = 0
        self._thread = threading.Thread(target=self._run, name="db-writer", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def submit(self, fn: WriteFn) -> Any:
        """Run `fn(db)` in the writer's transaction; return its result once durable."""
        future: Future = Future()
        self._queue.put((fn, future))
        return future.result()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            db = open_database(self._path, synchronous="FULL")
        except BaseException as exc:  # reported to the constructor's caller
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        conn = db.conn
        conn.execute("PRAGMA busy_timeout=0")  # _begin waits instead
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP:
                    stopping = True
                    break
                batch.append(job)
            self._commit(db, conn, batch)
        conn.close()

    @staticmethod
    def _begin(conn) -> None:
        """BEGIN IMMEDIATE, waiting for another process's writer in short steps.

        SQLite's own busy handler sleeps 1, 2, 5, 10 … ms; a commit takes a
        fraction of a millisecond, so polling every 0.2 ms keeps latency low
        when a second server process shares the file.
        """
        deadline = time.monotonic() + BUSY_WAIT_S
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.0002)

    def _commit(self, db, conn, batch) -> None:
        results = []
        try:
            self._begin(conn)
        except Exception as exc:
            for _, future in batch:
                future.set_exception(exc)
            return
        for fn, future in batch:
            conn.execute("SAVEPOINT job")
            try:
                result = fn(db)
            except BaseException as exc:
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                results.append((future, False, exc))
            else:
                conn.execute("RELEASE job")
                results.append((future, True, result))
        try:
            conn.execute("COMMIT")
        except Exception as exc:
            log.exception("commit failed; %d writes refused", len(batch))
            try:
                conn.execute("ROLLBACK")
            except Exception:
                pass
            for future, _, _ in results:
                future.set_exception(exc)
            return
        self.batches += 1
        self.writes += len(batch)
        for future, ok, value in results:
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
